"""The dataset step: choose files, validate them, see tokens and cost, prepare, preview."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)
from textual_plotext import PlotextPlot

from ftwizard.datasets.validation import ValidationReport
from ftwizard.distill.engine import DistillEstimate, DistillProgress, DistillResult
from ftwizard.distill.session import DistillPlan
from ftwizard.errors import FtwizardError
from ftwizard.flow import dataset_problem
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.file_picker import FilePickerScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import DatasetChoice, DatasetResult, Session, StepId

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
  then becomes the training file and is checked.

Your files are never modified: everything derived goes into the session's folder.
"""

_TRANSFORM_FLAGS: dict[str, str] = {
    "transform-drop-duplicates": "drop_duplicates",
    "transform-fold-turns": "fold_assistant_turns",
    "transform-drop-system": "drop_system_prompt",
}
_PREVIEW_PAGE = 10
_MAX_PROBLEM_ROWS = 500


def _transform_kinds(choice: DatasetChoice) -> dict[str, dict[str, Any]]:
    return {spec["kind"]: spec for spec in choice.transforms}


class DatasetScreen(StepScreen):
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
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.report: ValidationReport | None = None
        self._preview_line = 1
        self.distilling = False
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
                with Horizontal(classes="row"):
                    yield Switch(id="drop-invalid")
                    yield Label("Drop invalid lines and train on a cleaned copy", classes="switch")
                yield DataTable(id="problems", cursor_type="row", zebra_stripes=True)
            with TabPane("Tokens & cost", id="tab-tokens"):
                yield PlotextPlot(id="token-histogram")
                yield DataTable(id="cost", cursor_type="row")
                yield Static("", id="inference-cost")
            with TabPane("Preview", id="tab-preview"):
                with Horizontal(classes="row"):
                    yield Button("Previous", id="preview-prev")
                    yield Input(placeholder="line", id="preview-line", type="integer")
                    yield Button("Next page", id="preview-next")
                yield Static("", id="preview-page")
            with TabPane("Prepare", id="tab-prepare"):
                with Horizontal(classes="row"):
                    yield Switch(id="convert-format")
                    yield Label("Convert to the format the backend trains on", classes="switch")
                yield Label("Hold out for validation (fraction or count)", classes="field-label")
                with Horizontal(classes="row"):
                    yield Input(placeholder="e.g. 0.1 or 50; empty = no split", id="split-val")
                    yield Input(placeholder="seed", id="split-seed", type="integer")
                    yield Input(placeholder="stratify by field (optional)", id="split-stratify")
                yield Label("Transforms", classes="field-label")
                yield Checkbox("Drop duplicate examples", id="transform-drop-duplicates")
                yield Checkbox(
                    "Fold earlier assistant turns into user messages", id="transform-fold-turns"
                )
                yield Checkbox("Drop the system prompt", id="transform-drop-system")
                yield Input(placeholder="replace the system prompt with…", id="transform-system")
                yield Input(
                    placeholder="append a stop marker to inputs, e.g. ###", id="transform-stop"
                )
                yield Input(
                    placeholder="keep only the top k items of list answers (k)",
                    id="transform-top-k",
                    type="integer",
                )
            with TabPane("Topics", id="tab-topics"):
                with Horizontal(classes="row"):
                    yield Input(placeholder="topic field (empty: keywords)", id="topic-field")
                    yield Button("Compute topics", id="compute-topics")
                yield DataTable(id="topics", cursor_type="row")
            with TabPane("Distill", id="tab-distill"):
                yield from self._compose_distill()

    def _compose_distill(self) -> ComposeResult:
        yield Label("Prompts to relabel (empty: the training file)", classes="field-label")
        yield Input(placeholder="dataset or production trace log (JSONL)", id="distill-prompts")
        yield Label("Teacher", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(
                placeholder="anthropic:NAME, or openai:NAME (with a base URL for a compatible "
                "server)",
                id="distill-teacher",
            )
            yield Input(placeholder="teacher base URL (optional)", id="distill-base-url")
        yield Label(
            "Grader: keeps the answers scoring at least the threshold", classes="field-label"
        )
        with Horizontal(classes="row"):
            yield Select[str]([], id="distill-grader", prompt="pick a grader")
            yield Input(placeholder="or a grader file's path", id="distill-grader-path")
            yield Input(placeholder="threshold", id="distill-threshold", type="number")
        yield Static("", id="distill-estimate")
        with Horizontal(classes="row"):
            yield Button("Run distillation", id="distill-run", variant="primary")
            yield Button("Stop", id="distill-stop")
            yield ProgressBar(id="distill-progress", show_eta=False)
        yield Static("", id="distill-status")
        yield Static("", id="distill-summary")

    def on_mount(self) -> None:
        choice = self.session.dataset.choice
        self.query_one("#train-path", Input).value = choice.train_path or ""
        self.query_one("#valid-path", Input).value = choice.valid_path or ""
        self.query_one("#drop-invalid", Switch).value = choice.drop_invalid
        self.query_one("#convert-format", Switch).value = choice.convert
        self.query_one("#split-val", Input).value = choice.split_val or ""
        self.query_one("#split-seed", Input).value = str(choice.split_seed)
        self.query_one("#split-stratify", Input).value = choice.split_stratify or ""
        self.query_one("#topic-field", Input).value = choice.topic_field or ""
        kinds = _transform_kinds(choice)
        for widget_id, kind in _TRANSFORM_FLAGS.items():
            self.query_one(f"#{widget_id}", Checkbox).value = kind in kinds
        self.query_one("#transform-system", Input).value = (
            kinds.get("replace_system_prompt", {}).get("text") or ""
        )
        self.query_one("#transform-stop", Input).value = (
            kinds.get("append_stop_marker", {}).get("marker") or ""
        )
        top_k = kinds.get("top_k", {}).get("k")
        self.query_one("#transform-top-k", Input).value = str(top_k) if top_k else ""
        problems = self.query_one("#problems", DataTable)
        # Fixed widths, as in every table: see welcome.py.
        problems.add_column("Line", key="line", width=7)
        problems.add_column("Kind", key="severity", width=7)
        problems.add_column("Code", key="code", width=33)
        problems.add_column("Message", key="message", width=120)
        cost = self.query_one("#cost", DataTable)
        for label, width in (
            ("Backend", 8),
            ("Model", 30),
            ("Epochs", 6),
            ("Billed tokens", 14),
            ("Estimate", 12),
        ):
            cost.add_column(label, key=label.lower(), width=width)
        topics = self.query_one("#topics", DataTable)
        for label, width in (("Topic", 40), ("Examples", 8), ("Share", 6)):
            topics.add_column(label, key=label.lower(), width=width)
        self.query_one("#dataset-progress", ProgressBar).display = False
        self._mount_distill()
        super().on_mount()
        if self.session.dataset.result is not None:
            self._load_report()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Checking the data..."
        if self.distilling:
            return "Distilling..."
        return dataset_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        self._show_summary()

    # Choices --------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        value = event.value.strip()
        if widget_id in _DISTILL_INPUTS:
            event.stop()
            self._distill_input_changed(widget_id, value)
            return
        if widget_id == "train-path":
            self.decide(widget_id, value, lambda s: _set_choice(s, train_path=value or None))
            if not self.session.dataset.distill.prompts_path:
                self._show_distill_estimate()
        elif widget_id == "valid-path":
            self.decide(widget_id, value, lambda s: _set_choice(s, valid_path=value or None))
        elif widget_id == "split-val":
            self.decide(widget_id, value, lambda s: _set_choice(s, split_val=value or None))
        elif widget_id == "split-seed" and value.lstrip("-").isdigit():
            seed = int(value)
            self.decide(widget_id, seed, lambda s: _set_choice(s, split_seed=seed))
        elif widget_id == "split-stratify":
            self.decide(widget_id, value, lambda s: _set_choice(s, split_stratify=value or None))
        elif widget_id == "topic-field":
            self.decide(widget_id, value, lambda s: _set_choice(s, topic_field=value or None))
        elif widget_id == "transform-system":
            spec = {"kind": "replace_system_prompt", "text": value} if value else None
            self.decide(
                widget_id, value, lambda s: _set_transform(s, "replace_system_prompt", spec)
            )
        elif widget_id == "transform-stop":
            spec = {"kind": "append_stop_marker", "marker": value} if value else None
            self.decide(widget_id, value, lambda s: _set_transform(s, "append_stop_marker", spec))
        elif widget_id == "transform-top-k":
            spec = (
                {"kind": "top_k", "k": int(value)} if value.isdigit() and int(value) > 0 else None
            )
            self.decide(widget_id, value, lambda s: _set_transform(s, "top_k", spec))
        else:
            return
        event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("train-path", "valid-path"):
            event.stop()
            self.check()
        elif event.input.id == "preview-line":
            event.stop()
            if event.value.strip().isdigit():
                self.show_preview(int(event.value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        value = event.value
        if event.switch.id == "drop-invalid":
            self.decide("drop-invalid", value, lambda s: _set_choice(s, drop_invalid=value))
        elif event.switch.id == "convert-format":
            self.decide("convert-format", value, lambda s: _set_choice(s, convert=value))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        kind = _TRANSFORM_FLAGS.get(event.checkbox.id or "")
        if kind is None:
            return
        event.stop()
        spec = {"kind": kind} if event.value else None
        widget_id = event.checkbox.id or ""
        self.decide(widget_id, event.value, lambda s: _set_transform(s, kind, spec))

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
            self.show_preview(max(1, self._preview_line - _PREVIEW_PAGE))
        elif button == "preview-next":
            event.stop()
            self.show_preview(self._preview_line + _PREVIEW_PAGE)
        elif button == "compute-topics":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.compute_topics()
        elif button == "distill-run":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_distill()
        elif button == "distill-stop":
            event.stop()
            self._distill_stop.set()
            self.query_one("#distill-status", Static).update(
                "Stopping after the answers in flight..."
            )
        else:
            super().on_button_pressed(event)

    def _picked(self, target: str, path: Path | None) -> None:
        if path is not None:
            self.query_one(f"#{target}", Input).value = str(path)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "problems":
            return
        event.stop()
        line = event.data_table.get_cell(event.row_key, "line")
        if isinstance(line, int):
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
        if not self.session.dataset.choice.train_path:
            self.notify("Choose a training file first.", severity="warning")
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
        self.query_one("#dataset-status", Static).update(step)
        if fraction is not None:
            self.query_one("#dataset-progress", ProgressBar).update(progress=fraction)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#dataset-progress", ProgressBar).display = False
        self.query_one("#dataset-status", Static).update(Text(message, style="bold red"))
        self.notify(message, title="Cannot check the data", severity="error")
        self.refresh_frame()

    def _checked(self, result: DatasetResult, report: ValidationReport) -> None:
        self.busy = False
        self.session.dataset.result = result
        self.wizard.save_session()
        self.report = report
        self.query_one("#dataset-progress", ProgressBar).display = False
        self.query_one("#dataset-status", Static).update(
            f"Checked: {result.errors} error(s), {result.warnings} warning(s)."
        )
        self._show_report()
        self.refresh_frame()

    def _load_report(self) -> None:
        """Show the saved report of the last check (resuming a session)."""
        result = self.session.dataset.result
        if result is None:
            return
        try:
            self.report = ValidationReport.model_validate_json(
                Path(result.report_file).read_text(encoding="utf-8")
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
            summary.update("Not checked yet.")
            return
        text = Text()
        text.append(f"Format: {result.format}", style="bold")
        text.append(
            f"  ·  {result.examples:,} examples, {result.valid_examples:,} valid  ·  "
            f"{result.tokens_total:,} tokens\n"
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
        problems = self.query_one("#problems", DataTable)
        problems.clear()
        rows = [*report.errors, *report.warnings]
        if report.validation is not None:
            rows += [*report.validation.errors, *report.validation.warnings]
        for index, problem in enumerate(rows[:_MAX_PROBLEM_ROWS]):
            style = "red" if problem.severity.value == "error" else "yellow"
            problems.add_row(
                problem.line if problem.line is not None else "-",
                Text(problem.severity.value, style=style),
                problem.code.value,
                problem.message,
                key=f"p{index}",
            )
        if len(rows) > _MAX_PROBLEM_ROWS:
            problems.add_row("", "", "", f"... and {len(rows) - _MAX_PROBLEM_ROWS} more")
        plot = self.query_one("#token-histogram", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if report.histogram:
            labels = [f"{low}-{high}" for low, high, _ in report.histogram]
            plt.bar(labels, [count for _, _, count in report.histogram])
            stats = report.tokens
            plt.title(
                f"tokens per example: min {stats.min}, p50 {stats.p50}, p95 {stats.p95}, "
                f"max {stats.max}, over limit {stats.over_limit}"
            )
        plot.refresh()
        cost = self.query_one("#cost", DataTable)
        cost.clear()
        for estimate in report.cost:
            data = estimate.to_json()
            usd = data.get("usd")
            cost.add_row(
                data.get("backend", "-"),
                data.get("model", "-"),
                data.get("epochs", "-"),
                f"{data.get('billed_tokens', '-'):,}"
                if isinstance(data.get("billed_tokens"), int)
                else "-",
                f"${usd:,.2f}" if isinstance(usd, int | float) else str(usd or "-"),
            )
        self.query_one("#inference-cost", Static).update(_inference_text(report))
        self.show_preview(self._preview_line)

    def show_preview(self, line: int) -> None:
        """Show a page of the prepared training file from ``line`` on."""
        result = self.session.dataset.result
        target = self.query_one("#preview-page", Static)
        path = result.training_file if result else self.session.dataset.choice.train_path
        if not path:
            target.update("Nothing to preview yet.")
            return
        from ftwizard.datasets.preview import PagedReader

        try:
            records = PagedReader(path).page(line, _PREVIEW_PAGE)
        except FtwizardError as exc:
            target.update(str(exc))
            return
        if not records:
            target.update(f"No lines from {line} on.")
            return
        self._preview_line = records[0].line
        text = Text()
        for record in records:
            text.append(f"{record.line:>7} ", style="bold cyan")
            if record.ok:
                body = json.dumps(record.data, ensure_ascii=False)
                text.append(body[:400] + ("…" if len(body) > 400 else "") + "\n")
            else:
                text.append(f"{record.error}\n", style="red")
        target.update(text)

    def compute_topics(self) -> None:
        """Group the training examples by topic in a worker."""
        result = self.session.dataset.result
        path = result.training_file if result else self.session.dataset.choice.train_path
        if not path:
            self.notify("Choose a training file first.", severity="warning")
            return
        self._run_topics(path, self.session.dataset.choice.topic_field)

    @work(thread=True, exclusive=True, group="topics", exit_on_error=False)
    def _run_topics(self, path: str, field: str | None) -> None:
        from ftwizard.datasets.topics import compute_topics

        try:
            tree = compute_topics(path, field=field)
        except FtwizardError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        rows: list[tuple[str, int, str]] = []
        for topic in tree.topics:
            share = f"{topic.count / tree.total:.0%}" if tree.total else "-"
            rows.append((topic.label, topic.count, share))
            for child in topic.children:
                child_share = f"{child.count / tree.total:.0%}" if tree.total else "-"
                rows.append((f"  {child.label}", child.count, child_share))
        self.app.call_from_thread(self._show_topics, rows)

    def _show_topics(self, rows: list[tuple[str, int, str]]) -> None:
        table = self.query_one("#topics", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row)

    # Distill --------------------------------------------------------------------------------

    def _mount_distill(self) -> None:
        """Show the saved distill settings and the last run's summary."""
        from ftwizard.distill.session import grader_choices

        choice = self.session.dataset.distill
        self.query_one("#distill-prompts", Input).value = choice.prompts_path or ""
        self.query_one("#distill-teacher", Input).value = choice.teacher or ""
        self.query_one("#distill-base-url", Input).value = choice.base_url or ""
        self.query_one("#distill-grader-path", Input).value = choice.grader_path or ""
        self.query_one("#distill-threshold", Input).value = f"{choice.threshold:g}"
        choices = grader_choices(self.session, self.wizard.store)
        select = self.query_one("#distill-grader", Select)
        select.set_options([(name.replace("_", " "), name) for name in choices])
        self._sync_grader_select(choice.grader_path)
        self.query_one("#distill-progress", ProgressBar).display = False
        self.query_one("#distill-stop", Button).display = False
        self._show_distill_summary()
        self._show_distill_estimate()

    def _sync_grader_select(self, path: str | None) -> None:
        """Select the offered grader whose file is ``path``, or none."""
        from ftwizard.distill.session import grader_choices

        select = self.query_one("#distill-grader", Select)
        offered = grader_choices(self.session, self.wizard.store)
        name = next((n for n, p in offered.items() if path and str(p) == path), None)
        if name is not None and select.value != name:
            select.value = name
        elif name is None and not select.is_blank():
            select.clear()

    def _distill_input_changed(self, widget_id: str, value: str) -> None:
        field = _DISTILL_INPUTS[widget_id]
        new: str | float | None = value or None
        if field == "threshold":
            try:
                new = float(value)
            except ValueError:
                return  # half-typed; the saved threshold stands until the text is a number
            if not math.isfinite(new):
                return
        # The journal keeps what was typed, as the other fields do: a replay types it back.
        shown: str | float = new if isinstance(new, float) else value
        self.decide(widget_id, shown, lambda s: _set_distill(s, **{field: new}))
        if field == "grader_path":
            self._sync_grader_select(value or None)
        self._show_distill_estimate()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "distill-grader":
            return
        event.stop()
        if not isinstance(event.value, str):
            return
        from ftwizard.distill.session import grader_choices

        path = grader_choices(self.session, self.wizard.store).get(event.value)
        # The list only fills the path field; the field is the one source of the choice.
        field = self.query_one("#distill-grader-path", Input)
        if path is not None and field.value != str(path):
            field.value = str(path)

    def _show_distill_estimate(self) -> None:
        """Price the run in the background (it reads the whole prompts file)."""
        if not self.is_mounted:
            return
        target = self.query_one("#distill-estimate", Static)
        if not self.session.dataset.distill.teacher:
            target.update("Choose a teacher model to see what relabeling would cost.")
            return
        target.update("Estimating...")
        self._estimate_distill(self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="distill-estimate", exit_on_error=False)
    def _estimate_distill(self, snapshot: Session) -> None:
        from textual.worker import get_current_worker

        from ftwizard.distill.session import NO_GRADER, estimate_session, estimate_text

        text = Text()
        try:
            text.append(estimate_text(estimate_session(snapshot, self.wizard.store)))
        except (FtwizardError, OSError, ValueError) as exc:
            # A file that cannot be read yet is a message to show, not a fault of the screen.
            text.append(str(exc), style="red")
        if not snapshot.dataset.distill.grader_path:
            text.append("\n" + NO_GRADER, style="yellow")
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_estimate_text, text)

    def _show_estimate_text(self, text: Text) -> None:
        if self.is_attached:
            self.query_one("#distill-estimate", Static).update(text)

    def _ask_and_distill(self) -> None:
        """Check the plan, price it, and confirm before anything is spent."""
        from ftwizard.distill.session import (
            check_callable,
            estimate,
            needs_spend,
            plan_distill,
            price_text,
        )

        if self.distilling:
            return
        if self.busy:
            self.notify("Wait for the check to finish.", severity="warning")
            return
        try:
            plan = plan_distill(self.session, self.wizard.store)
            found = estimate(plan)
            if found.to_request:
                check_callable(plan, judge_base_url=self.session.grader.judge_base_url)
        except FtwizardError as exc:
            self.query_one("#distill-status", Static).update(Text(str(exc), style="red"))
            self.notify(str(exc), title="Cannot distill", severity="error")
            return
        if not needs_spend(plan, found):
            self._start_distill(plan, found)
            return
        if not self.wizard.allow_spend:
            message = "Distillation calls a paid teacher; a replay runs it only with --allow-spend."
            self.query_one("#distill-status", Static).update(Text(message, style="red"))
            self.notify(message, severity="error")
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start_distill(plan, found)

        self.app.push_screen(
            ConfirmScreen(
                f"Distillation sends {found.to_request} requests to {found.teacher} and costs "
                f"{price_text(found)}; {found.already_paid} answers are already paid for. "
                "Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start_distill(self, plan: DistillPlan, found: DistillEstimate) -> None:
        # The prompts are recorded now: a finished run makes its output the training file, so
        # "the training file" would mean something else on the next run.
        if not self.session.dataset.distill.prompts_path:
            data = plan.data
            self.decide("distill-prompts", data, lambda s: _set_distill(s, prompts_path=data))
            self.query_one("#distill-prompts", Input).value = data
        self.distilling = True
        self._distill_stop.clear()
        bar = self.query_one("#distill-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(1, found.requests), progress=found.already_paid)
        self.query_one("#distill-stop", Button).display = True
        self.query_one("#distill-run", Button).disabled = True
        self.query_one("#distill-status", Static).update("Starting...")
        self.refresh_frame()
        self._run_distill(plan, self.session.grader.judge_base_url)

    @work(thread=True, exclusive=True, group="distill", exit_on_error=False)
    def _run_distill(self, plan: DistillPlan, judge_base_url: str | None) -> None:
        from ftwizard.distill.engine import DistillCancelled
        from ftwizard.distill.session import run_plan

        def progress(update: DistillProgress) -> None:
            self.app.call_from_thread(self._distill_progress, update)

        try:
            result = asyncio.run(
                run_plan(
                    plan,
                    judge_base_url=judge_base_url,
                    on_progress=progress,
                    should_stop=self._distill_stop.is_set,
                )
            )
        except DistillCancelled as exc:
            self.app.call_from_thread(self._distill_failed, str(exc), stopped=True)
            return
        except FtwizardError as exc:
            self.app.call_from_thread(self._distill_failed, str(exc), stopped=False)
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(
                self._distill_failed, f"{type(exc).__name__}: {exc}", stopped=False
            )
            return
        self.app.call_from_thread(self._distill_finished, result)

    def _distill_progress(self, update: DistillProgress) -> None:
        if not self.is_attached:
            return
        from ftwizard.distill.session import progress_text

        self.query_one("#distill-progress", ProgressBar).update(
            total=max(1, update.total), progress=update.done
        )
        self.query_one("#distill-status", Static).update(progress_text(update))

    def _distill_ended(self) -> None:
        self.distilling = False
        self.query_one("#distill-progress", ProgressBar).display = False
        self.query_one("#distill-stop", Button).display = False
        self.query_one("#distill-run", Button).disabled = False

    def _distill_failed(self, message: str, *, stopped: bool) -> None:
        if not self.is_attached:
            return
        self._distill_ended()
        if stopped:
            self.query_one("#distill-status", Static).update(
                "Stopped. Every answer received is journaled: run again to pay only for the rest."
            )
        else:
            self.query_one("#distill-status", Static).update(Text(message, style="red"))
            self.notify(message, title="Distillation failed", severity="error")
        self._show_distill_estimate()
        self.refresh_frame()

    def _distill_finished(self, result: DistillResult) -> None:
        """Record the run; its file becomes the training file, which is checked at once."""
        from ftwizard.distill.session import record_result

        record_result(self.session, result)
        self.wizard.save_session()
        if not self.is_attached:
            return
        self._distill_ended()
        self._show_distill_summary()
        self._show_distill_estimate()
        if result.kept == 0:
            self.query_one("#distill-status", Static).update(
                Text("No answer was kept: the training file stays as it was.", style="yellow")
            )
            self.refresh_frame()
            return
        output = result.output
        self.query_one("#distill-status", Static).update(
            f"Done: {result.kept} rows written; training on them now (checking)."
        )
        self.decide("train-path", output, lambda s: _set_choice(s, train_path=output))
        self.query_one("#train-path", Input).value = output
        # Even with an unchanged path the file was rewritten, so the last check is stale.
        self.check()

    def _show_distill_summary(self) -> None:
        from ftwizard.distill.session import summary_text

        summary = self.session.dataset.distilled
        target = self.query_one("#distill-summary", Static)
        if summary is None:
            target.update("No distillation run yet.")
            return
        text = Text()
        lines = summary_text(summary).splitlines()
        text.append(lines[0] + "\n", style="bold")
        text.append("\n".join(lines[1:]))
        target.update(text)

    def on_unmount(self) -> None:
        # A run outliving its screen would keep paying with nobody watching; the journal keeps
        # what was paid for, so stopping loses nothing.
        self._distill_stop.set()


def _inference_text(report: ValidationReport) -> str:
    """One call's cost with the base model and with the tuned one, on this data's averages."""
    cost = report.inference
    if cost is None:
        return ""

    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.6f}"

    source = f" (prices as of {cost.as_of}, {cost.source})" if cost.as_of else ""
    return (
        f"Per call on {cost.model} (~{cost.input_tokens} input / ~{cost.output_tokens} output "
        f"tokens): base {usd(cost.base_usd)}, tuned {usd(cost.tuned_usd)}{source}"
    )


# Transforms run in this order whatever order they were switched on in, so the same choices
# always give the same file.
_TRANSFORM_ORDER = (
    "fold_assistant_turns",
    "drop_system_prompt",
    "replace_system_prompt",
    "append_stop_marker",
    "top_k",
    "drop_duplicates",
)


def _set_choice(session: Session, **changes: Any) -> bool:
    """Change dataset choices; the last result no longer applies, so it is dropped."""
    choice = session.dataset.choice
    if all(getattr(choice, key) == value for key, value in changes.items()):
        return False
    session.dataset.choice = choice.model_copy(update=changes)
    session.dataset.result = None
    return True


def _set_transform(session: Session, kind: str, spec: dict[str, Any] | None) -> bool:
    """Add, replace or (``spec`` None) remove the transform of ``kind``."""
    current = session.dataset.choice.transforms
    kept = [t for t in current if t["kind"] != kind]
    updated = [*kept, spec] if spec is not None else kept
    updated.sort(key=lambda t: _TRANSFORM_ORDER.index(t["kind"]))
    if updated == current:
        return False
    return _set_choice(session, transforms=updated)


_DISTILL_INPUTS: dict[str, str] = {
    "distill-prompts": "prompts_path",
    "distill-teacher": "teacher",
    "distill-base-url": "base_url",
    "distill-grader-path": "grader_path",
    "distill-threshold": "threshold",
}


def _set_distill(session: Session, **changes: Any) -> bool:
    """Change distill settings; the dataset's last check still applies (nothing ran yet)."""
    choice = session.dataset.distill
    if all(getattr(choice, key) == value for key, value in changes.items()):
        return False
    session.dataset.distill = choice.model_copy(update=changes)
    return True
