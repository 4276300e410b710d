"""The dataset step: choose files, validate them, see tokens and cost, prepare, preview.

The screen holds the files, the check and the summary; each tab's widgets and behaviour are a
mixin in this package (``problems``, ``tokens``, ``preview``, ``prepare``, ``topics``,
``distill``). Textual calls an ``on_*`` handler of every class along the MRO, so each handler
name is defined once: the screen routes events shared by several tabs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    ProgressBar,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)

from ftwizard.datasets.validation import ValidationReport
from ftwizard.errors import FtwizardError
from ftwizard.flow import dataset_problem
from ftwizard.screens.dataset.answers_import import IMPORT_INPUTS, IMPORT_JOB, AnswersImportTab
from ftwizard.screens.dataset.choices import set_choice
from ftwizard.screens.dataset.distill import DISTILL_INPUTS, DistillTab
from ftwizard.screens.dataset.prepare import PrepareTab
from ftwizard.screens.dataset.preview import PREVIEW_PAGE, PreviewTab
from ftwizard.screens.dataset.problems import ProblemsTab, checked_text
from ftwizard.screens.dataset.tokens import TokensTab
from ftwizard.screens.dataset.topics import TopicsTab
from ftwizard.screens.file_picker import FilePickerScreen
from ftwizard.screens.step import job_conditions
from ftwizard.session import DatasetResult, Session, StepId

HELP = """\
# Dataset

Choose the training file (and, optionally, a validation file), then press **Check**.
ftwizard reads it in one streamed pass and reports every problem by line, counts tokens the
way the provider bills them, and estimates the cost of training.

- **Problems**: errors block training; warnings are worth a look. Select a row to see that
  example in the preview. If you cannot fix the file now, switch on *drop invalid lines* to
  train on a cleaned copy (the dropped lines are listed beside it).
- **Tokens & cost**: the distribution of tokens per example and the estimated cost per backend.
- **Prepare**: convert to the format the backend trains on, hold out a validation split
  (a fraction like `0.1` or a count like `50`; seeded, optionally stratified by a field), and
  apply transforms. Press **Check** again to re-run everything from your file.
- **Topics**: group examples by a field, or by keywords when no field is given.
- **Distill**: ask a stronger model (the teacher) to answer every prompt, keep only the answers
  a grader accepts, and train on those. The cost is shown and confirmed first; answers are
  journaled, so a rerun after a crash or a stop never pays for them twice. The distilled file
  then becomes the training file and is checked. Answers a teacher already gave, in CSV files,
  can be imported instead (**Import answers**: key columns, `~TOL` for a float key), free.

Your files are never modified: everything derived goes into the session's folder.
"""


class DatasetScreen(
    ProblemsTab, TokensTab, PreviewTab, PrepareTab, TopicsTab, DistillTab, AnswersImportTab
):
    """Files, validation, tokens and cost, preparation, preview and topics."""

    STEP: ClassVar[StepId] = StepId.dataset
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "dataset-checked": lambda screen: (
            not screen.busy and screen.session.dataset.result is not None
        ),
        "distill-finished": lambda screen: (
            not screen.distilling and screen.session.dataset.distilled is not None
        ),
        **job_conditions("dataset-check"),
        **job_conditions("distill"),
        "answers-imported": lambda screen: (
            not screen.importing and screen.session.dataset.imported is not None
        ),
        **job_conditions(IMPORT_JOB),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.report: ValidationReport | None = None
        # Whether #dataset-status holds a check's "Checked: ..." (not an error or progress).
        self._status_shows_result = False
        self._preview_line = 1
        self.distilling = False
        self.importing = False
        # Set by Stop (or leaving the screen); the distill worker's thread polls it.
        self._distill_stop = threading.Event()

    def compose_body(self) -> ComposeResult:
        yield Label("Training file", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(placeholder="path to a JSONL, JSON, CSV or Parquet file", id="train-path")
            yield Button("Browse", id="browse-train")
        yield Label("Validation file (optional)", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(placeholder="optional; or hold out a split under Prepare", id="valid-path")
            yield Button("Browse", id="browse-valid")
        with Horizontal(classes="row"):
            yield Button("Check", id="check-dataset", variant="primary")
            yield ProgressBar(id="dataset-progress", show_eta=False)
            yield Static("", id="dataset-status")
        yield Static("", id="dataset-summary")
        with TabbedContent(id="dataset-tabs"):
            with TabPane("Problems", id="tab-problems"):
                yield from self.compose_problems()
            with TabPane("Tokens & cost", id="tab-tokens"):
                yield from self.compose_tokens()
            with TabPane("Preview", id="tab-preview"):
                yield from self.compose_preview()
            with TabPane("Prepare", id="tab-prepare"):
                yield from self.compose_prepare()
            with TabPane("Topics", id="tab-topics"):
                yield from self.compose_topics()
            with TabPane("Distill", id="tab-distill"):
                yield from self.compose_distill()
                yield from self.compose_import()

    def on_mount(self) -> None:
        choice = self.session.dataset.choice
        self.query_one("#train-path", Input).value = choice.train_path or ""
        self.query_one("#valid-path", Input).value = choice.valid_path or ""
        self.query_one("#drop-invalid", Switch).value = choice.drop_invalid
        self._mount_prepare(choice)
        self._mount_topics(choice)
        self._mount_problems()
        self._mount_tokens()
        self.query_one("#dataset-progress", ProgressBar).display = False
        self._mount_distill()
        self._mount_import()
        super().on_mount()
        if self.session.dataset.result is not None:
            self._load_report()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Checking the data..."
        if self.distilling:
            return "Distilling..."
        if self.importing:
            return "Importing answers..."
        return dataset_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        self._show_summary()

    # Choices --------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        value = event.value.strip()
        if widget_id in DISTILL_INPUTS:
            event.stop()
            self._distill_input_changed(widget_id, value)
            return
        if widget_id in IMPORT_INPUTS:
            event.stop()
            self._import_input_changed(widget_id, value)
            return
        if widget_id == "train-path":
            self.decide(widget_id, value, lambda s: set_choice(s, train_path=value or None))
            if not self.session.dataset.distill.prompts_path:
                self._show_distill_estimate()
        elif widget_id == "valid-path":
            self.decide(widget_id, value, lambda s: set_choice(s, valid_path=value or None))
        elif widget_id == "topic-field":
            self.decide(widget_id, value, lambda s: set_choice(s, topic_field=value or None))
        elif not self._prepare_input_changed(widget_id, value):
            return
        event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("train-path", "valid-path"):
            event.stop()
            # Enter checks like the button does, and is journaled as that press so that an
            # exported replay checks the data too.
            self.wizard.journal({"press": "check-dataset"}, screen=self.screen_name)
            self.check()
        elif event.input.id == "preview-line":
            event.stop()
            if event.value.strip().isdigit():
                self.show_preview(int(event.value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        value = event.value
        if event.switch.id == "drop-invalid":
            self.decide("drop-invalid", value, lambda s: set_choice(s, drop_invalid=value))
        elif event.switch.id == "convert-format":
            self.decide("convert-format", value, lambda s: set_choice(s, convert=value))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "check-dataset":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.check()
        elif button in ("browse-train", "browse-valid"):
            event.stop()
            target = "train-path" if button == "browse-train" else "valid-path"
            self.app.push_screen(FilePickerScreen(), lambda path: self._picked(target, path))
        elif button == "preview-prev":
            event.stop()
            self.show_preview(max(1, self._preview_line - PREVIEW_PAGE))
        elif button == "preview-next":
            event.stop()
            self.show_preview(self._preview_line + PREVIEW_PAGE)
        elif button == "compute-topics":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.compute_topics()
        elif button == "distill-run":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_distill()
        elif button == "import-answers":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_import()
        elif button == "distill-stop":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._distill_stop.set()
            self.query_one("#distill-status", Static).update(
                "Stopping after the answers in flight..."
            )
        else:
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this

    def _picked(self, target: str, path: Path | None) -> None:
        if path is not None:
            self.query_one(f"#{target}", Input).value = str(path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "problems":
            return
        line = event.data_table.get_cell(event.row_key, "line")
        # The preview pages through the training file; a validation file's line is not in it.
        in_training = (
            self.report is not None
            and event.data_table.get_cell(event.row_key, "file") == Path(self.report.path).name
        )
        if isinstance(line, int) and in_training:
            # The jump is what Enter does here; a validation file's row shows in full instead.
            event.stop()
            event.prevent_default()
            self.query_one("#dataset-tabs", TabbedContent).active = "tab-preview"
            self.show_preview(line)

    # Work -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Run the pipeline in a worker: convert, transform, split, validate."""
        if self.busy:
            return
        if self.distilling:
            # The run switches the training file when it ends and checks the new one then.
            self.notify("Distillation is running; it checks its file when it finishes.")
            return
        self.job_started("dataset-check")
        if not self.session.dataset.choice.train_path:
            self.notify("Choose a training file first.", severity="warning")
            self.job_ended("dataset-check", "failed")
            return
        self.busy = True
        bar = self.query_one("#dataset-progress", ProgressBar)
        bar.display = True
        bar.update(total=1.0, progress=0.0)
        self.refresh_frame()
        self._run_pipeline(self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="dataset", exit_on_error=False)
    def _run_pipeline(self, snapshot: Session) -> None:
        from ftwizard.datasets.pipeline import prepare

        def progress(step: str, fraction: float | None) -> None:
            self.app.call_from_thread(self._progress, step, fraction)

        task = snapshot.task
        assert task.backend is not None and task.method is not None
        try:
            result, report = prepare(
                snapshot.dataset.choice,
                backend=task.backend,
                method=task.method,
                model=task.base_model,
                out_dir=self.wizard.store.artifacts_dir(snapshot.id) / "dataset",
                progress=progress,
            )
        except FtwizardError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._checked, result, report)

    def _progress(self, step: str, fraction: float | None) -> None:
        self._status_shows_result = False
        self.query_one("#dataset-status", Static).update(step)
        if fraction is not None:
            self.query_one("#dataset-progress", ProgressBar).update(progress=fraction)

    def _failed(self, message: str) -> None:
        self._status_shows_result = False
        self.busy = False
        self.query_one("#dataset-progress", ProgressBar).display = False
        self.query_one("#dataset-status", Static).update(Text(message, style="bold red"))
        self.notify(message, title="Cannot check the data", severity="error")
        self.job_ended("dataset-check", "failed")
        self.refresh_frame()

    def _checked(self, result: DatasetResult, report: ValidationReport) -> None:
        self.busy = False
        self.session.dataset.result = result
        self.wizard.save_session()
        self.report = report
        self.query_one("#dataset-progress", ProgressBar).display = False
        self.query_one("#dataset-status", Static).update(checked_text(report))
        self._status_shows_result = True
        self._show_report()
        self.job_ended("dataset-check", "done")
        self.refresh_frame()
        if self.step_problem() is None:
            # Usable data: what comes next is the next step (the summary stays in view above).
            self.show_outcome(self.query_one("#dataset-summary"), self.query_one("#next"))

    def _load_report(self) -> None:
        """Show the saved report of the last check (resuming a session)."""
        result = self.session.dataset.result
        if result is None:
            return
        try:
            report_file = Path(result.report_file)
            if not report_file.is_file():  # never a FIFO or device put in its place
                raise FileNotFoundError(report_file)
            self.report = ValidationReport.model_validate_json(
                report_file.read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            self.query_one("#dataset-status", Static).update(
                "The saved report could not be read; press Check to run it again."
            )
            return
        self._show_report()

    # Display --------------------------------------------------------------------------------

    def _show_summary(self) -> None:
        summary = self.query_one("#dataset-summary", Static)
        result = self.session.dataset.result
        if result is None:
            if self.report is None:
                summary.update("Not checked yet.")
                return
            # A choice changed (Convert ticked, a path edited): the last check no longer
            # applies, and its "Checked: ..." line must not stand beside this as if it did.
            summary.update(
                Text(
                    "Changed since the last check: press Check to check again (the tabs "
                    "below still show the last check).",
                    style="yellow",
                )
            )
            if self._status_shows_result:
                self.query_one("#dataset-status", Static).update("")
                self._status_shows_result = False
            return
        text = Text()
        text.append(f"Format: {result.format}", style="bold")
        text.append(f"  ·  {_examples_text(result)}  ·  {result.tokens_total:,} tokens\n")
        if result.images:
            text.append(
                f"Images: {result.images:,}, {result.image_tokens:,} image tokens "
                f"({result.image_tokens_note})\n"
            )
        text.append(f"Training file: {self._shown_path(result.training_file)}\n", style="dim")
        if result.validation_file:
            text.append(
                f"Validation file: {self._shown_path(result.validation_file)}\n", style="dim"
            )
        for note in result.notes:
            text.append(f"• {note}\n")
        summary.update(text)

    def _shown_path(self, path: str) -> str:
        """Files ftwizard made are shown relative to the session's folder, the user's as given."""
        folder = self.wizard.store.session_dir(self.session.id)
        try:
            return f"(session)/{Path(path).relative_to(folder)}"
        except ValueError:
            return path

    def _show_report(self) -> None:
        report = self.report
        if report is None:
            return
        self._show_problems(report)
        self._show_tokens(report)
        self.show_preview(self._preview_line)


def _examples_text(result: DatasetResult) -> str:
    """The training file's examples (how many pass the checks) and the validation file's,
    each named: a bare "192 valid" beside a 48-row validation file reads as its count."""
    passing = (
        "all pass the checks"
        if result.valid_examples == result.examples
        else (f"{result.valid_examples:,} pass the checks")
    )
    text = f"{result.examples:,} training examples ({passing})"
    if result.validation_file and result.validation_examples is not None:
        text += f", {result.validation_examples:,} validation examples"
    return text
