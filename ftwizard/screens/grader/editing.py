"""The grader step's editing panel: style, example, judge form, script and spec editors."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input, RadioButton, RadioSet, Select, TextArea

from ftwizard.graders.workbench import STARTERS, gallery, read_spec_file
from ftwizard.screens.grader.fitting import FitMixin
from ftwizard.screens.grader.sandbox_note import SandboxNoteMixin
from ftwizard.screens.grader.specs import judge_yaml, parse_spec, script_yaml, style_of
from ftwizard.session import assign


class EditingMixin(FitMixin, SandboxNoteMixin):
    """Keeps the forms, the spec editor and the session's spec text in step."""

    # Set while the screen writes the editors itself, so those writes are not decisions.
    _filling: bool

    def _show_style(self, style: str | None) -> None:
        for widget in self.query(".judge-only"):
            widget.display = style == "judge"
        for widget in self.query(".script-only"):
            widget.display = style == "script"
        if style == "script":
            self.show_sandbox_note()

    def _fill_forms(self, text: str) -> None:
        """Put a spec's rubric or script into the form for its style, when it has one."""
        spec = parse_spec(text)
        if spec.get("type") == "score_model":
            self.query_one("#judge-model", Input).value = str(spec.get("model", ""))
            system = next(
                (
                    m.get("content", "")
                    for m in spec.get("input", [])
                    if isinstance(m, dict) and m.get("role") in ("system", "developer")
                ),
                "",
            )
            self.query_one("#judge-rubric", TextArea).load_text(str(system))
        elif spec.get("type") == "python" and isinstance(spec.get("source"), str):
            self.query_one("#grader-source", TextArea).load_text(spec["source"])

    def set_spec_text(self, text: str, *, journal: bool = True) -> None:
        """Replace the whole spec; journaled as the spec editor's text unless ``journal`` is
        false (a loaded file: the replay loads the same file)."""
        if journal:
            self._set_spec(text, widget_id="grader-spec", value=text)
            return
        if assign(self.session.grader, "spec_text", text):
            self.wizard.save_session()
        editor = self.query_one("#grader-spec", TextArea)
        if editor.text != text:
            self._filling = True
            editor.load_text(text)
            self._filling = False
        self.refresh_frame()

    def fill_from_spec(self, text: str) -> None:
        """Show the style and the forms that edit this spec, without journaling them."""
        style = style_of(parse_spec(text))
        self._filling = True
        self.query_one(f"#grader-style-{style}", RadioButton).value = True
        self._fill_forms(text)
        self._filling = False
        self.session.grader.style = style
        self._show_style(style)

    def _set_spec(self, text: str, *, widget_id: str, value: Any) -> None:
        self.decide(
            widget_id,
            value,
            lambda session: assign(session.grader, "spec_text", text),
        )
        editor = self.query_one("#grader-spec", TextArea)
        if editor.text != text:
            self._filling = True
            editor.load_text(text)
            self._filling = False

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        style = (event.pressed.id or "").removeprefix("grader-style-")
        self._show_style(style)
        if self._filling:
            return

        self.decide(
            "grader-style",
            style,
            lambda session: assign(session.grader, "style", style),
        )
        if (
            not (self.session.grader.spec_text or "").strip()
            or style_of(parse_spec(self.session.grader.spec_text or "")) != style
        ):
            starter = STARTERS[style]
            self._filling = True
            self._fill_forms(starter)
            self._filling = False
            self._set_spec(starter, widget_id="grader-spec", value=starter)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if not isinstance(event.value, str):
            return
        if event.select.id == "grader-map-field":
            if not self._filling:
                self.map_missing_field(event.value)
            return
        if event.select.id != "grader-example":
            return
        path = gallery().get(event.value)
        if path is None:
            return
        # The spec is copied into the session, so a script's source_file is copied in with it.
        text = read_spec_file(path)
        example = event.value

        self.decide(
            "grader-example",
            example,
            lambda session: assign(session.grader, "example", example),
        )
        self.fill_from_spec(text)
        self._set_spec(text, widget_id="grader-spec", value=text)

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        if widget_id not in ("judge-model", "judge-base-url"):
            return
        event.stop()
        if self._filling:
            return
        if widget_id == "judge-base-url":
            url = event.value.strip() or None

            self.decide(
                widget_id,
                event.value,
                lambda session: assign(session.grader, "judge_base_url", url),
            )
            return
        self._regenerate_judge(widget_id, event.value)

    def _regenerate_judge(self, widget_id: str, value: Any) -> None:
        model = self.query_one("#judge-model", Input).value.strip()
        rubric = self.query_one("#judge-rubric", TextArea).text
        self._set_spec(judge_yaml(model, rubric), widget_id=widget_id, value=value)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._filling:
            return
        widget_id = event.text_area.id or ""
        text = event.text_area.text
        if widget_id == "judge-rubric":
            self._regenerate_judge(widget_id, text)
        elif widget_id == "grader-source":
            self._set_spec(script_yaml(text), widget_id=widget_id, value=text)
        elif widget_id == "grader-spec":
            self._set_spec(text, widget_id=widget_id, value=text)
