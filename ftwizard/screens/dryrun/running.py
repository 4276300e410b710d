"""The dry-run step's run: the cost question, the run in a worker thread, live progress, and
the verdict brought into view when it ends."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Button, ProgressBar, Static

from ftwizard.dryrun.report import DryRunProgress, DryRunReport, draws_text, graded_text
from ftwizard.errors import FtwizardError
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.session import Session


class RunPanel:
    """Runs the dry run (mixed into :class:`DryRunScreen`)."""

    busy: bool
    failure: str | None
    report: DryRunReport | None
    session: Session
    wizard: Any
    app: Any
    _cancel: Any
    _stopping: bool
    query_one: Any
    notify: Any
    refresh_frame: Any
    job_started: Any
    job_ended: Any
    show_outcome: Any
    _plot: Any
    _show_report: Any
    _decision_control: Any

    def _ask_and_run(self) -> None:
        if self.busy:
            return
        from ftwizard.dryrun.cost import estimate_dryrun_cost
        from ftwizard.dryrun.session import preflight_session_dryrun

        self.job_started("dryrun")
        # Reset here, not when the run starts, so a Stop pressed while the run is being set up
        # (or in the same moment as Run) is kept and honoured.
        self._stopping = False
        try:
            # The preflight first: a missing key is named before any cost question.
            config, spec = preflight_session_dryrun(self.session, self.wizard.store)
            estimate = estimate_dryrun_cost(config, spec)
        except FtwizardError as exc:
            self.failure = str(exc)
            self.notify(str(exc), title="Cannot run the dry run", severity="error")
            self.job_ended("dryrun", "failed")
            return
        if not estimate.paid:
            self._start(config, spec, estimate)
            return
        if not self.wizard.allow_spend:
            self.notify(
                "This dry run calls a paid model; a replay runs it only with --allow-spend.",
                severity="error",
            )
            self.job_ended("dryrun", "failed")
            return
        usd = estimate.cost.total_usd
        price = "an unknown amount" if usd is None else f"about ${usd:.4f}"

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start(config, spec, estimate)
            else:
                self.job_ended("dryrun", "declined")

        self.app.push_screen(
            ConfirmScreen(
                f"The dry run asks {config.model} for "
                f"{draws_text(estimate.samples, estimate.samples_per_prompt)} and costs "
                f"{price}. Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start(self, config: Any, spec: Any, estimate: Any) -> None:
        self.failure = None
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
            if self._stopping:  # Stop was pressed before the run could take it
                dry.cancel()
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
            f"{update.phase}: {update.generated} of {update.total} answers back, "
            f"{graded_text(update.graded, update.total)}, mean {mean}, "
            f"{update.generation_failed} failed, {update.retries} retries, "
            f"{update.elapsed_s:.1f} s"
            + (f" - batch {update.batch_id}: {update.batch_status}" if update.batch_id else "")
        )
        self._plot(update.histogram)

    def _failed(self, message: str) -> None:
        self.failure = message
        self.busy = False
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        self.query_one("#dryrun-live", Static).update(Text(message, style="red"))
        self.notify(message, title="Dry run failed", severity="error")
        self.job_ended("dryrun", "stopped" if self._stopping else "failed")
        self.refresh_frame()

    def _finished(self, report: DryRunReport) -> None:
        from ftwizard.dryrun.session import record_report

        nothing = report.nothing_measured()
        if nothing is not None:
            # No figures to judge: an error naming its cause, never a verdict in the session.
            self._failed(nothing[:1].upper() + nothing[1:])
            return
        self.busy = False
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        record_report(self.session, self.wizard.store, report)
        self.wizard.save_session()
        self.report = report
        self.query_one("#dryrun-live", Static).update(
            f"Finished: {report.draws}, {graded_text(report.stats.n, report.sampled)}, "
            f"{report.generation_failures} failed to answer."
        )
        self._show_report(report)
        self.job_ended("dryrun", "stopped" if self._stopping else "done")
        self.refresh_frame()
        self.show_outcome(self.query_one("#dryrun-verdict"), self._decision_control())
