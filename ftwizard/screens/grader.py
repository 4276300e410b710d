"""The grader step: choose how answers are scored, edit it, test it on samples, confirm it."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import yaml
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    RadioButton,
    RadioSet,
    Select,
    Static,
    TextArea,
)

from ftwizard.errors import FtwizardError
from ftwizard.flow import grader_problem
from ftwizard.graders.workbench import SAMPLES_PER_TEST, STARTERS, gallery, spec_digest
from ftwizard.screens.step import StepScreen
from ftwizard.session import Backend, GraderTest, Session, StepId, assign
from ftwizard.widgets.text import one_line

HELP = """\
# Grader

The grader decides what "better" means for the whole run: the dry run, the RFT reward and the
final judge all use it. ftwizard never invents the criteria: you write them, and you check them
on real samples before anyone trusts them.

- **LLM-as-judge**: a model scores each answer against your rubric. Write the rubric in the
  form; the judge's key comes from the environment (OPENAI_API_KEY or ANTHROPIC_API_KEY), or
  give the base URL of an OpenAI-compatible server.
- **Script**: Python `grade(sample, item) -> float` between 0 and 1. `sample["output_text"]` is
  the answer; `item` is the dataset row, with `reference_answer` holding its own answer.
- **Built-in check**: exact or fuzzy match, numbers, regex, JSON fields, ranking metrics. Edit
  the spec (OpenAI grader JSON, as YAML) directly.
- **Examples**: start from one of the gallery's graders.

**Test on 5 samples** grades five records, with the base model's answers when it can be called,
otherwise the dataset's own answers (the table says which). Then confirm the scores look right,
adjust the grader, or test five more. Nothing moves on without that confirmation.
"""

STYLE_LABELS: dict[str, str] = {
    "judge": "LLM-as-judge - a model scores answers against your rubric",
    "script": "Script - Python grade(sample, item) returns a score from 0 to 1",
    "builtin": "Built-in check - exact answer, numbers, regex, JSON, ranking",
}

_JUDGE_USER_TEMPLATE = (
    "Reference answer: {{item.reference_answer}}\nAnswer to grade: {{sample.output_text}}"
)
_MODEL_TYPES = ("score_model", "label_model")


def _style_of(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind in _MODEL_TYPES:
        return "judge"
    if kind == "python":
        return "script"
    return "builtin"


def _judge_yaml(model: str, rubric: str) -> str:
    spec = {
        "type": "score_model",
        "name": "rubric judge",
        "model": model,
        "range": [0, 1],
        "sampling_params": {"temperature": 0},
        "input": [
            {"role": "system", "content": rubric},
            {"role": "user", "content": _JUDGE_USER_TEMPLATE},
        ],
    }
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def _script_yaml(source: str) -> str:
    return yaml.safe_dump(
        {"type": "python", "name": "my script", "source": source},
        sort_keys=False,
        allow_unicode=True,
    )


def _parse(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


class GraderScreen(StepScreen):
    """Style, spec editor, test on samples, confirmation."""

    STEP: ClassVar[StepId] = StepId.grader
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "grader-tested": lambda screen: not screen.busy and screen.session.grader.test is not None,
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self._tested_records = 0
        # Set while the screen writes the editors itself, so those writes are not decisions.
        self._filling = False

    def compose_body(self) -> ComposeResult:
        yield Label("How should answers be scored?", classes="field-label")
        with RadioSet(id="grader-style"):
            for style, label in STYLE_LABELS.items():
                yield RadioButton(label, id=f"grader-style-{style}")
        yield Select[str](
            [(name.replace("_", " "), name) for name in gallery()],
            id="grader-example",
            prompt="or start from an example",
        )
        yield Label("Judge", classes="field-label judge-only")
        with Horizontal(classes="row judge-only"):
            yield Input(placeholder="judge model, e.g. gpt-4.1-mini-2025-04-14", id="judge-model")
            yield Input(
                placeholder="base URL of an OpenAI-compatible judge (optional)", id="judge-base-url"
            )
        yield Label("Rubric (what a good answer does)", classes="field-label judge-only")
        yield TextArea(id="judge-rubric", classes="judge-only")
        yield Label("Script", classes="field-label script-only")
        yield TextArea.code_editor(language="python", id="grader-source", classes="script-only")
        yield Label("Grader spec (OpenAI grader JSON as YAML)", classes="field-label")
        yield TextArea.code_editor(language="yaml", id="grader-spec")
        yield Static("", id="grader-problems")
        with Horizontal(classes="row"):
            yield Button("Check", id="grader-check")
            yield Button(f"Test on {SAMPLES_PER_TEST} samples", id="grader-test", variant="primary")
            yield Button(f"Test {SAMPLES_PER_TEST} more", id="grader-more")
        yield Static("", id="grader-source-label")
        yield DataTable(id="grader-results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="grader-mean")
        with Horizontal(classes="row", id="grader-confirm-row"):
            yield Label("Do these scores look right?", classes="switch")
            yield Button("Scoring looks right", id="grader-looks-right", variant="success")
            yield Button("Adjust the grader", id="grader-adjust")

    def on_mount(self) -> None:
        table = self.query_one("#grader-results", DataTable)
        # Fixed widths, as in every table: see welcome.py.
        table.add_column("Record", key="record", width=7)
        table.add_column("Score", key="score", width=6)
        table.add_column("Answer", key="output", width=60)
        table.add_column("Notes", key="notes", width=80)
        grader = self.session.grader
        self._filling = True
        if grader.style:
            self.query_one(f"#grader-style-{grader.style}", RadioButton).value = True
        self.query_one("#judge-base-url", Input).value = grader.judge_base_url or ""
        if grader.spec_text:
            self._fill_forms(grader.spec_text)
            self.query_one("#grader-spec", TextArea).load_text(grader.spec_text)
        self._filling = False
        self._show_style(grader.style)
        if grader.test is not None:
            self._tested_records = len(grader.test.rows)
            self._show_test(grader.test)
        super().on_mount()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Grading samples..."
        return grader_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        grader = self.session.grader
        text = grader.spec_text or ""
        tested = grader.test is not None and grader.test.spec_digest == spec_digest(text)
        self.query_one("#grader-confirm-row").display = tested
        self.query_one("#grader-more", Button).disabled = not tested or self.busy
        self.query_one("#grader-test", Button).disabled = self.busy or not text.strip()

    # Editing --------------------------------------------------------------------------------

    def _show_style(self, style: str | None) -> None:
        for widget in self.query(".judge-only"):
            widget.display = style == "judge"
        for widget in self.query(".script-only"):
            widget.display = style == "script"

    def _fill_forms(self, text: str) -> None:
        """Put a spec's rubric or script into the form for its style, when it has one."""
        spec = _parse(text)
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
            or _style_of(_parse(self.session.grader.spec_text or "")) != style
        ):
            starter = STARTERS[style]
            self._filling = True
            self._fill_forms(starter)
            self._filling = False
            self._set_spec(starter, widget_id="grader-spec", value=starter)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id != "grader-example" or not isinstance(event.value, str):
            return
        path = gallery().get(event.value)
        if path is None:
            return
        text = path.read_text(encoding="utf-8")
        spec = _parse(text)
        source_file = spec.get("source_file")
        if spec.get("type") == "python" and isinstance(source_file, str):
            # The spec is copied into the session, so its script is copied in with it.
            spec.pop("source_file")
            spec["source"] = (path.parent / source_file).read_text(encoding="utf-8")
            text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        example = event.value

        self.decide(
            "grader-example",
            example,
            lambda session: assign(session.grader, "example", example),
        )
        style = _style_of(spec)
        self._filling = True
        self.query_one(f"#grader-style-{style}", RadioButton).value = True
        self._fill_forms(text)
        self._filling = False
        self.session.grader.style = style
        self._show_style(style)
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
        self._set_spec(_judge_yaml(model, rubric), widget_id=widget_id, value=value)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._filling:
            return
        widget_id = event.text_area.id or ""
        text = event.text_area.text
        if widget_id == "judge-rubric":
            self._regenerate_judge(widget_id, text)
        elif widget_id == "grader-source":
            self._set_spec(_script_yaml(text), widget_id=widget_id, value=text)
        elif widget_id == "grader-spec":
            self._set_spec(text, widget_id=widget_id, value=text)

    # Checking and testing -------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button in ("grader-check", "grader-test", "grader-more"):
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            if button == "grader-check":
                self._check()
            else:
                skip = self._tested_records if button == "grader-more" else 0
                self._start_test(skip)
        elif button == "grader-looks-right":
            event.stop()
            self._confirm()
        elif button == "grader-adjust":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.query_one("#grader-spec", TextArea).focus()
            self.notify("Edit the grader, then test it again.")
        else:
            super().on_button_pressed(event)

    def _data_path(self) -> str | None:
        result = self.session.dataset.result
        return result.training_file if result else None

    def _check(self) -> bool:
        """Validate the spec text; show every problem with its line. True when it is usable."""
        from ftwizard.graders.workbench import check_spec

        text = self.session.grader.spec_text or ""
        target = self.query_one("#grader-problems", Static)
        try:
            _, problems, _path = check_spec(
                text,
                out_dir=self.wizard.store.artifacts_dir(self.session.id),
                data_path=self._data_path(),
            )
        except FtwizardError as exc:
            target.update(Text(str(exc), style="red"))
            return False
        if not problems:
            target.update(Text("The grader is valid.", style="green"))
            return True
        lines = Text()
        for problem in problems:
            lines.append(f"✗ {problem.to_error()}\n", style="red")
        target.update(lines)
        return False

    def _start_test(self, skip: int) -> None:
        if self.busy or not self._check():
            return
        data_path = self._data_path()
        if data_path is None:
            self.notify("Check the dataset step first: samples come from it.", severity="warning")
            return
        self.busy = True
        self.query_one("#grader-source-label", Static).update("Grading samples...")
        self.refresh_frame()
        self._run_test(self.session.model_copy(deep=True), data_path, skip)

    @work(thread=True, exclusive=True, group="grader", exit_on_error=False)
    def _run_test(self, snapshot: Session, data_path: str, skip: int) -> None:
        from ftwizard.errors import InputError
        from ftwizard.graders.export_openai import to_openai_grader
        from ftwizard.graders.judges import judge_for
        from ftwizard.graders.loading import parse_grader
        from ftwizard.graders.workbench import base_model_generator, read_items, run_sample_test
        from ftwizard.providers.models import close_provider
        from ftwizard.providers.openai.graders import can_validate_online, validate_grader_online

        text = snapshot.grader.spec_text or ""
        grader = snapshot.grader

        async def run() -> GraderTest:
            spec = parse_grader(_parse(text))
            if snapshot.task.backend is Backend.openai and can_validate_online():
                # The grader will become an RFT reward on OpenAI: ask OpenAI too.
                objections = await validate_grader_online(to_openai_grader(spec))
                if objections:
                    raise InputError("OpenAI rejects this grader: " + "; ".join(objections))
            judge = judge_for(spec, base_url=grader.judge_base_url)
            items, lines = read_items(data_path, skip=skip)
            if not items:
                raise FtwizardError("no more records to test on")
            generator, model, why_not = base_model_generator(
                snapshot.task.backend, snapshot.task.base_model
            )
            try:
                return await run_sample_test(
                    spec,
                    text,
                    items,
                    lines,
                    generator=generator,
                    model=model,
                    judge=judge,
                    fallback_reason=why_not,
                )
            finally:
                for provider in (generator, judge):
                    if provider is not None:
                        await close_provider(provider)

        try:
            test = asyncio.run(run())
        except FtwizardError as exc:
            self.app.call_from_thread(self._test_failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._test_failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._tested, test, skip)

    def _test_failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#grader-source-label", Static).update(Text(message, style="red"))
        self.notify(message, title="Test did not run", severity="error")
        self.refresh_frame()

    def _tested(self, test: GraderTest, skip: int) -> None:
        self.busy = False
        self._tested_records = skip + len(test.rows)
        self.session.grader.test = test
        self.wizard.save_session()
        self._show_test(test)
        self.refresh_frame()

    def _show_test(self, test: GraderTest) -> None:
        self.query_one("#grader-source-label", Static).update(
            f"Graded {len(test.rows)} samples: {test.source_label}"
        )
        table = self.query_one("#grader-results", DataTable)
        table.clear()
        for row in test.rows:
            notes = row.error or row.notes
            table.add_row(
                row.record,
                Text(f"{row.score:.2f}", style="green" if row.score >= 0.5 else "red"),
                one_line(row.output, 60),
                one_line(notes, 80),
            )
        errors = f", {test.n_errors} error(s)" if test.n_errors else ""
        self.query_one("#grader-mean", Static).update(f"Average score {test.mean:.2f}{errors}")

    def _confirm(self) -> None:
        text = self.session.grader.spec_text or ""
        digest = spec_digest(text)

        def apply(session: Session) -> bool:
            if session.grader.confirmed_digest == digest:
                return False
            session.grader.confirmed_digest = digest
            return True

        if apply(self.session):
            self.wizard.journal({"press": "grader-looks-right"}, screen=self.screen_name)
        self.refresh_frame()
