"""The dataset step: choose files, validate them, see tokens and cost, prepare, preview."""

from __future__ import annotations

import json
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
    Static,
    Switch,
    TabbedContent,
    TabPane,
)
from textual_plotext import PlotextPlot

from ftwizard.datasets.validation import ValidationReport
from ftwizard.errors import FtwizardError
from ftwizard.flow import dataset_problem
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
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.report: ValidationReport | None = None
        self._preview_line = 1

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
        problems.add_column("Line", key="line")
        problems.add_column("Kind", key="severity")
        problems.add_column("Code", key="code")
        problems.add_column("Message", key="message")
        cost = self.query_one("#cost", DataTable)
        for label in ("Backend", "Model", "Epochs", "Billed tokens", "Estimate"):
            cost.add_column(label, key=label.lower())
        topics = self.query_one("#topics", DataTable)
        for label in ("Topic", "Examples", "Share"):
            topics.add_column(label, key=label.lower())
        self.query_one("#dataset-progress", ProgressBar).display = False
        super().on_mount()
        if self.session.dataset.result is not None:
            self._load_report()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Checking the data..."
        return dataset_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        self._show_summary()

    # Choices --------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        value = event.value.strip()
        if widget_id == "train-path":
            self.decide(widget_id, value, lambda s: _set_choice(s, train_path=value or None))
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
