"""The dry-run step: sample the base model, grade it, and show GO / WARNING / NO-GO."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static, Switch
from textual_plotext import PlotextPlot

from ftwizard.dryrun.engine import DryRunProgress, DryRunReport
from ftwizard.dryrun.metrics import Histogram
from ftwizard.errors import FtwizardError
from ftwizard.flow import dryrun_problem
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import Session, StepId, assign
from ftwizard.widgets.text import one_line

HELP = """\
# Dry run

Before anyone pays for training, the dry run asks the base model to answer a sample of your
data and grades the answers with your grader. It tells you whether training can teach
anything:

- **GO**: the scores leave room to learn and the grader gives a usable signal.
- **WARNING**: something deserves a look (read the reasons); acknowledge to go on.
- **NO-GO**: training would waste money as things stand (scores all 0 or all 1, a grader
  that fails, answers that do not parse). Fix it, or override with a written reason, which
  the session records.

For SFT the dry run is a baseline to compare the tuned model with, not a gate.
A paid dry run shows its estimated cost and asks first. Browse the lowest-scoring samples to
see what the grader saw.
"""

_VERDICT_STYLE = {"GO": "bold green", "WARNING": "bold yellow", "NO-GO": "bold red"}
_MARKS = {"note": ("✓", "green"), "warning": ("!", "yellow"), "no-go": ("✗", "red")}


def _mark(level: str | None) -> Text:
    """The status mark of one metric: within range, outside it, or far outside."""
    if level is None:
        return Text("")
    symbol, style = _MARKS[level]
    return Text(symbol, style=f"bold {style}")


_LOWEST = 20


class DryRunScreen(StepScreen):
    """Settings, a live run, metrics, the verdict and the lowest-scoring samples."""

    STEP: ClassVar[StepId] = StepId.dryrun
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "dryrun-finished": lambda screen: (
            not screen.busy and screen.session.dryrun.verdict is not None
        ),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.report: DryRunReport | None = None
        self._cancel: Any = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Samples", classes="switch")
            yield Input(id="dryrun-samples", type="integer")
            yield Label("Concurrency", classes="switch")
            yield Input(id="dryrun-concurrency", type="integer")
            yield Label("Seed", classes="switch")
            yield Input(id="dryrun-seed", type="integer")
        with Horizontal(classes="row", id="dryrun-batch-row"):
            yield Switch(id="dryrun-batch")
            yield Label(
                "One provider batch: half the price, may take hours, resumes after a restart",
                classes="switch",
            )
        yield Static("", id="dryrun-estimate")
        with Horizontal(classes="row"):
            yield Button("Run dry run", id="dryrun-run", variant="primary")
            yield Button("Stop", id="dryrun-stop")
            yield ProgressBar(id="dryrun-progress", show_eta=False)
        yield Static("", id="dryrun-live")
        yield PlotextPlot(id="dryrun-histogram")
        yield Static("", id="dryrun-verdict")
        yield DataTable(id="dryrun-metrics", cursor_type="row")
        with Horizontal(classes="row", id="dryrun-decision"):
            yield Input(placeholder="reason to override a NO-GO", id="dryrun-override-reason")
            yield Button("Acknowledge and go on", id="dryrun-proceed", variant="warning")
            yield Button("Adjust the grader", id="dryrun-adjust-grader")
            yield Button("More samples", id="dryrun-more")
        yield Label("Lowest-scoring samples (Enter to read one)", classes="field-label")
        yield DataTable(id="dryrun-lowest", cursor_type="row", zebra_stripes=True)
        yield Static("", id="dryrun-sample")

    def on_mount(self) -> None:
        section = self.session.dryrun
        self.query_one("#dryrun-samples", Input).value = str(section.samples)
        self.query_one("#dryrun-concurrency", Input).value = str(section.concurrency)
        self.query_one("#dryrun-seed", Input).value = str(section.seed)
        self.query_one("#dryrun-batch", Switch).value = section.batch
        backend = self.session.task.backend
        self.query_one("#dryrun-batch-row").display = (
            backend is not None and backend.value == "openai"
        )
        metrics = self.query_one("#dryrun-metrics", DataTable)
        metrics.add_column("", key="mark", width=1)
        # Fixed widths, as in every table: see welcome.py.
        for label, width in (("Metric", 26), ("Value", 20), ("Healthy range", 20)):
            metrics.add_column(label, key=label.lower(), width=width)
        lowest = self.query_one("#dryrun-lowest", DataTable)
        for label, width in (("Line", 7), ("Score", 6), ("Answer", 50), ("Notes", 60)):
            lowest.add_column(label, key=label.lower(), width=width)
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        super().on_mount()
        from ftwizard.dryrun.session import load_report

        self.report = load_report(self.session)
        if self.report is not None:
            self._show_report(self.report)
        self._show_estimate()

    def step_problem(self) -> str | None:
        if self.busy:
            return "The dry run is running..."
        return dryrun_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        section = self.session.dryrun
        decision = self.query_one("#dryrun-decision")
        decision.display = section.verdict is not None and not self.busy
        needs_answer = section.verdict in ("WARNING", "NO-GO") and not section.acknowledged
        proceed = self.query_one("#dryrun-proceed", Button)
        proceed.display = needs_answer
        proceed.label = "Override NO-GO" if section.verdict == "NO-GO" else "Acknowledge and go on"
        self.query_one("#dryrun-override-reason").display = (
            needs_answer and section.verdict == "NO-GO"
        )
        self.query_one("#dryrun-run", Button).disabled = self.busy

    # Settings -------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        field = {
            "dryrun-samples": "samples",
            "dryrun-concurrency": "concurrency",
            "dryrun-seed": "seed",
        }.get(widget_id)
        if field is None:
            return
        event.stop()
        text = event.value.strip()
        if not text.isdigit() or (field != "seed" and int(text) < 1):
            return
        value = int(text)
        self.decide(widget_id, value, lambda session: assign(session.dryrun, field, value))
        self._show_estimate()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id != "dryrun-batch":
            return
        event.stop()
        value = event.value

        self.decide(
            "dryrun-batch",
            value,
            lambda session: assign(session.dryrun, "batch", value),
        )
        self._show_estimate()

    def _show_estimate(self) -> None:
        """Price the run before it starts (no network)."""
        from ftwizard.dryrun.engine import estimate_dryrun_cost
        from ftwizard.dryrun.session import dryrun_inputs

        target = self.query_one("#dryrun-estimate", Static)
        try:
            config, spec = dryrun_inputs(self.session, self.wizard.store)
            estimate = estimate_dryrun_cost(config, spec)
        except FtwizardError as exc:
            target.update(Text(str(exc), style="red"))
            return
        self._estimate = estimate
        if not estimate.paid:
            target.update(f"{estimate.samples} samples on {config.model}: free (runs locally).")
            return
        usd = estimate.cost.total_usd
        price = "cost unknown (no price on record)" if usd is None else f"about ${usd:.4f}"
        target.update(
            f"{estimate.samples} samples on {config.model}: {price} "
            f"(~{estimate.input_tokens:,} input / ~{estimate.output_tokens:,} output tokens)."
        )

    # Running --------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "dryrun-run":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_run()
        elif button == "dryrun-more":
            event.stop()
            self.query_one("#dryrun-samples", Input).value = str(self.session.dryrun.samples * 2)
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_run()
        elif button == "dryrun-stop":
            event.stop()
            if self._cancel is not None:
                self._cancel()
        elif button == "dryrun-proceed":
            event.stop()
            self._acknowledge()
        elif button == "dryrun-adjust-grader":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.wizard.go_to(StepId.grader)
        else:
            super().on_button_pressed(event)

    def _ask_and_run(self) -> None:
        if self.busy:
            return
        from ftwizard.dryrun.engine import estimate_dryrun_cost
        from ftwizard.dryrun.session import dryrun_inputs

        try:
            config, spec = dryrun_inputs(self.session, self.wizard.store)
            estimate = estimate_dryrun_cost(config, spec)
        except FtwizardError as exc:
            self.notify(str(exc), title="Cannot run the dry run", severity="error")
            return
        if not estimate.paid:
            self._start(config, spec, estimate)
            return
        if not self.wizard.allow_spend:
            self.notify(
                "This dry run calls a paid model; a replay runs it only with --allow-spend.",
                severity="error",
            )
            return
        usd = estimate.cost.total_usd
        price = "an unknown amount" if usd is None else f"about ${usd:.4f}"

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start(config, spec, estimate)

        self.app.push_screen(
            ConfirmScreen(
                f"The dry run sends {estimate.samples} requests to {config.model} and costs "
                f"{price}. Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start(self, config: Any, spec: Any, estimate: Any) -> None:
        self.busy = True
        bar = self.query_one("#dryrun-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(1, estimate.samples), progress=0)
        self.query_one("#dryrun-stop", Button).display = True
        self.refresh_frame()
        self._run(config, spec, estimate)

    @work(thread=True, exclusive=True, group="dryrun", exit_on_error=False)
    def _run(self, config: Any, spec: Any, estimate: Any) -> None:
        from ftwizard.dryrun.engine import DryRun
        from ftwizard.dryrun.session import batch_journal_path
        from ftwizard.graders.judges import judge_for

        journal = batch_journal_path(self.session, self.wizard.store) if config.batch else None

        async def run() -> DryRunReport:
            judge = judge_for(spec, base_url=self.session.grader.judge_base_url)
            dry = DryRun(config, spec, judge=judge, sample_set=estimate.sample_set, journal=journal)
            loop = asyncio.get_running_loop()
            self._cancel = lambda: loop.call_soon_threadsafe(dry.cancel)
            try:
                return await dry.run(on_progress=progress)
            finally:
                self._cancel = None

        def progress(update: DryRunProgress) -> None:
            self.app.call_from_thread(self._progress, update)

        try:
            report = asyncio.run(run())
        except FtwizardError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._finished, report)

    def _progress(self, update: DryRunProgress) -> None:
        self.query_one("#dryrun-progress", ProgressBar).update(
            total=max(1, update.total), progress=update.graded
        )
        mean = "-" if update.mean is None else f"{update.mean:.3f}"
        self.query_one("#dryrun-live", Static).update(
            f"{update.phase}: {update.generated}/{update.total} answered, {update.graded} "
            f"graded, mean {mean}, {update.generation_failed} failed, {update.retries} retries, "
            f"{update.elapsed_s:.1f} s"
            + (f" - batch {update.batch_id}: {update.batch_status}" if update.batch_id else "")
        )
        self._plot(update.histogram)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        self.query_one("#dryrun-live", Static).update(Text(message, style="red"))
        self.notify(message, title="Dry run failed", severity="error")
        self.refresh_frame()

    def _finished(self, report: DryRunReport) -> None:
        from ftwizard.dryrun.session import record_report

        self.busy = False
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        record_report(self.session, self.wizard.store, report)
        self.wizard.save_session()
        self.report = report
        self.query_one("#dryrun-live", Static).update(
            f"Finished: {report.sampled} sampled, {report.stats.n} graded, "
            f"{report.generation_failures} failed to answer."
        )
        self._show_report(report)
        self.refresh_frame()

    # Display --------------------------------------------------------------------------------

    def _plot(self, histogram: Histogram) -> None:
        plot = self.query_one("#dryrun-histogram", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        labels = [f"{low:.1f}" for low in histogram.edges[:-1]]
        plt.bar(labels, histogram.counts)
        plt.title("scores")
        plot.refresh()

    def _show_report(self, report: DryRunReport) -> None:
        stats = report.stats
        self._plot(stats.histogram)
        verdict = report.verdict
        text = Text()
        text.append(f"{verdict.verdict}", style=_VERDICT_STYLE.get(verdict.verdict, "bold"))
        if not verdict.is_gate:
            text.append("  (SFT: a baseline to beat, not a gate)", style="dim")
        text.append(
            f"   {stats.n} graded of {report.sampled} sampled on {report.model}"
            + (" - stopped early" if report.cancelled else "")
            + "\n"
        )
        for reason in verdict.reason_texts():
            text.append(f"• {reason}\n")
        if verdict.diagnosis:
            text.append("Diagnosis: " + ", ".join(d.replace("_", " ") for d in verdict.diagnosis))
            text.append("\n")
        from ftwizard.dryrun.verdict import MOVE_TEXT

        for move in verdict.next_moves:
            text.append(f"→ {MOVE_TEXT[move]}\n", style="italic")
        if self.session.dryrun.override_reason:
            text.append(f"Overridden: {self.session.dryrun.override_reason}\n", style="yellow")
        self.query_one("#dryrun-verdict", Static).update(text)

        metrics = self.query_one("#dryrun-metrics", DataTable)
        metrics.clear()
        from ftwizard.dryrun.verdict import metric_levels

        levels = metric_levels(stats)
        std_range = "follows the mean" if stats.binary else "0.10 - 0.25"
        rows: list[tuple[str, str, str, str | None]] = [
            ("mean score", f"{stats.mean:.3f}", "0.25 - 0.65", levels["mean"]),
            ("std", f"{stats.std:.3f}", std_range, levels["std"]),
            ("> 0", f"{stats.pct_gt0:.1f}%", "more than 10-20%", levels["gt0"]),
            ("= 1.0", f"{stats.pct_eq1:.1f}%", "fewer than 30-50%", levels["eq1"]),
            (
                "grader errors",
                str(len(report.errors)),
                "0",
                "note" if not report.errors else "warning",
            ),
            (
                "unparsable answers",
                str(report.parse_failures),
                "0",
                "note" if not report.parse_failures else "warning",
            ),
        ]
        if report.grader_noise is not None:
            rows.append(
                (
                    "judge noise (mean |diff|)",
                    f"{report.grader_noise.mean_abs_diff:.3f}",
                    "small",
                    None,
                )
            )
        usd = report.cost.total_usd
        rows.append(("cost", "unknown" if usd is None else f"${usd:.4f}", "", None))
        for topic, figures in report.per_topic.items():
            rows.append((f"topic {topic}", f"n {figures.n}, mean {figures.mean:.3f}", "", None))
        for name, value, healthy, level in rows:
            metrics.add_row(_mark(level), name, value, healthy)

        lowest = self.query_one("#dryrun-lowest", DataTable)
        lowest.clear()
        for sample in report.lowest(_LOWEST):
            lowest.add_row(
                sample.line,
                f"{sample.score:.2f}" if sample.score is not None else "-",
                one_line(sample.output, 50),
                one_line(sample.error or sample.notes, 60),
                key=str(sample.index),
            )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "dryrun-lowest" or self.report is None:
            return
        event.stop()
        index = int(event.row_key.value or 0)
        sample = next((s for s in self.report.samples if s.index == index), None)
        if sample is None:
            return
        text = Text()
        text.append(f"Line {sample.line}", style="bold")
        text.append(f"  score {sample.score}\n")
        text.append("Prompt: ", style="bold")
        text.append(f"{sample.prompt}\n")
        text.append("Answer: ", style="bold")
        text.append(f"{sample.output}\n")
        if sample.error or sample.notes:
            text.append("Grader: ", style="bold")
            text.append(f"{sample.error or sample.notes}\n")
        self.query_one("#dryrun-sample", Static).update(text)

    def _acknowledge(self) -> None:
        section = self.session.dryrun
        reason = self.query_one("#dryrun-override-reason", Input).value.strip()
        if section.verdict == "NO-GO" and not reason:
            self.notify("Write why you override the NO-GO; the session records it.")
            return

        def apply(session: Session) -> bool:
            if session.dryrun.acknowledged:
                return False
            session.dryrun.acknowledged = True
            session.dryrun.override_reason = reason or None
            return True

        if apply(self.session):
            action: dict[str, Any] = {"press": "dryrun-proceed"}
            if reason:
                self.wizard.journal(
                    {"set": {"dryrun-override-reason": reason}}, screen=self.screen_name
                )
            self.wizard.journal(action, screen=self.screen_name)
        if self.report is not None:
            self._show_report(self.report)
        self.refresh_frame()
