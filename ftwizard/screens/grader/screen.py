"""The grader step: choose how answers are scored, edit it, test it on samples, confirm it."""

from __future__ import annotations

from typing import Any, ClassVar

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

from ftwizard.flow import grader_problem
from ftwizard.graders.workbench import SAMPLES_PER_TEST, gallery, spec_digest
from ftwizard.screens.grader.editing import EditingMixin
from ftwizard.screens.grader.specs import STYLE_LABELS
from ftwizard.screens.grader.testing import SampleTestMixin
from ftwizard.screens.step import job_conditions
from ftwizard.session import StepId
from ftwizard.widgets.choice import Choice

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


class GraderScreen(EditingMixin, SampleTestMixin):
    """Style, spec editor, test on samples, confirmation."""

    STEP: ClassVar[StepId] = StepId.grader
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "grader-tested": lambda screen: not screen.busy and screen.session.grader.test is not None,
        **job_conditions("grader-test"),
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
                yield Choice(label, id=f"grader-style-{style}")
        yield Select[str](
            [(self.example_label(name, path), name) for name, path in gallery().items()],
            id="grader-example",
            prompt="or start from an example",
        )
        with Horizontal(classes="row"):
            yield Input(placeholder="or a grader file path", id="grader-file")
            yield Button("Browse", id="grader-browse")
            yield Button("Load", id="grader-load")
        yield Static("", id="grader-fit")
        with Horizontal(classes="row", id="grader-map-row"):
            yield Select[str]([], id="grader-map-field", prompt="a field of your data")
        yield Label("Judge", classes="field-label judge-only")
        with Horizontal(classes="row judge-only"):
            yield Input(placeholder="judge model, e.g. gpt-4.1-mini-2025-04-14", id="judge-model")
            yield Input(placeholder="judge base URL (optional)", id="judge-base-url")
        yield Label("Rubric (what a good answer does)", classes="field-label judge-only")
        yield TextArea(id="judge-rubric", classes="judge-only")
        yield Label("Script", classes="field-label script-only")
        yield TextArea.code_editor(language="python", id="grader-source", classes="script-only")
        yield Static("", id="grader-sandbox", classes="script-only")
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
        table.add_column("Expected", key="expected", width=24)
        table.add_column("Answer", key="output", width=40)
        table.add_column("Notes", key="notes", width=60)
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
        self.refresh_fit()
        grader = self.session.grader
        text = grader.spec_text or ""
        tested = grader.test is not None and grader.test.spec_digest == spec_digest(text)
        self.query_one("#grader-confirm-row").display = tested
        self.query_one("#grader-more", Button).disabled = not tested or self.busy
        self.query_one("#grader-test", Button).disabled = self.busy or not text.strip()

    # Editing --------------------------------------------------------------------------------

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
        elif button == "grader-browse":
            event.stop()
            self.browse_grader()
        elif button == "grader-load":
            event.stop()
            self.load_grader_file()
        elif button == "grader-looks-right":
            event.stop()
            self._confirm()
        elif button == "grader-adjust":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.query_one("#grader-spec", TextArea).focus()
            self.notify("Edit the grader, then test it again.")
        else:
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "grader-file":
            event.stop()
            self.load_grader_file()
