"""The evaluate screen's runs: plan, ask before spending, run in a worker, record."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.widgets import Button, ProgressBar, Static

from ftwizard.errors import FtwizardError
from ftwizard.evaluate.ab import EvalProgress, GraderComparison, PairwiseReport
from ftwizard.evaluate.session import (
    PASS_THRESHOLD,
    EvalPlan,
    estimate_spend,
    grader_spec,
    grading_items,
    make_plan,
    record_grader_comparison,
    record_pairwise,
)
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import Session


class EvaluateRunning(StepScreen):
    """The running part of :class:`EvaluateScreen` (a mixin of it)."""

    # Set by :class:`EvaluateScreen`'s constructor; ``_stop`` is polled by the A/B worker.
    busy: bool
    _stop: bool
    # The job the last run button started (grader-eval or ab-eval), for its outcome.
    _eval_job: str = "grader-eval"
    grader_report: GraderComparison | None
    pairwise_report: PairwiseReport | None

    if TYPE_CHECKING:

        def _show_grader(self) -> None: ...

        def _show_pairwise(self) -> None: ...

    def _ask_and_run(self, *, judges: bool) -> None:
        if self.busy:
            return
        from ftwizard.graders.judges import judge_ref

        self._stop = False
        self._eval_job = "ab-eval" if judges else "grader-eval"
        self.job_started(self._eval_job)

        try:
            plan = make_plan(self.session, with_judges=judges)
            spec = None if judges else grader_spec(self.session)
            grader_judge = (
                None
                if spec is None
                else judge_ref(spec, base_url=self.session.grader.judge_base_url)
            )
        except FtwizardError as exc:
            self._failed(str(exc))
            return
        ev = self.session.evaluation
        estimate = estimate_spend(
            plan, both_orders=ev.both_orders, runs=ev.runs, grader_judge=grader_judge
        )
        if not estimate.paid:
            self._start(plan, spec, judges=judges)
            return
        if not self.wizard.allow_spend:
            self._failed(
                f"This evaluation calls paid models ({', '.join(estimate.paid)}); a replay "
                "runs it only with --allow-spend."
            )
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start(plan, spec, judges=judges)
            else:
                self.job_ended(self._eval_job, "declined")

        what = "the blind A/B" if judges else "the grader comparison"
        self.app.push_screen(
            ConfirmScreen(
                f"{what.capitalize()} on {len(plan.rows)} held-out rows makes about "
                f"{estimate.calls} calls to {', '.join(estimate.paid)} and costs "
                f"{estimate.describe()}. Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start(self, plan: EvalPlan, spec: Any, *, judges: bool) -> None:
        self.busy = True
        self._stop = False
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.query_one("#eval-stop", Button).display = judges
        self.query_one("#eval-status", Static).update(
            "Judging..." if judges else "Answering and grading..."
        )
        self.refresh_frame()
        snapshot = self.session.model_copy(deep=True)
        if judges:
            self._run_ab(plan, snapshot)
        else:
            self._run_grader(plan, spec, snapshot)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _run_grader(self, plan: EvalPlan, spec: Any, snapshot: Session) -> None:
        from ftwizard.evaluate.ab import run_grader_comparison
        from ftwizard.graders.judges import judge_for
        from ftwizard.providers.models import build_generation_provider, close_provider

        async def run() -> GraderComparison:
            ids, items = grading_items(plan.held_out)
            judge = judge_for(spec, base_url=snapshot.grader.judge_base_url)
            base = build_generation_provider(plan.base)
            tuned = build_generation_provider(plan.tuned)
            try:
                return await run_grader_comparison(
                    items,
                    spec,
                    base=(base, plan.base.name),
                    tuned=(tuned, plan.tuned.name),
                    item_ids=ids,
                    threshold=PASS_THRESHOLD,
                    judge=judge,
                )
            finally:
                for provider in (base, tuned, judge):
                    if provider is not None:
                        await close_provider(provider)

        self._finish_in_app(run, plan)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _run_ab(self, plan: EvalPlan, snapshot: Session) -> None:
        from ftwizard.evaluate.ab import Judge, JudgeOptions, evaluate_ab
        from ftwizard.providers.models import build_generation_provider, close_provider

        ev = snapshot.evaluation

        def progress(update: EvalProgress) -> None:
            try:
                self.app.call_from_thread(self._progress, update)
            except RuntimeError:  # the app is shutting down; the run stops at the next check
                self._stop = True

        async def run() -> PairwiseReport:
            base = build_generation_provider(plan.base)
            tuned = build_generation_provider(plan.tuned)
            judges = [
                Judge(name=ref.spec, provider=build_generation_provider(ref), model=ref.name)
                for ref in plan.judges
            ]
            try:
                return await evaluate_ab(
                    list(plan.rows),
                    model_a=(base, plan.base.name),
                    model_b=(tuned, plan.tuned.name),
                    judges=judges,
                    options=JudgeOptions(seed=ev.seed, both_orders=ev.both_orders, runs=ev.runs),
                    on_progress=progress,
                    should_stop=lambda: self._stop,
                )
            finally:
                for provider in (base, tuned, *(j.provider for j in judges)):
                    await close_provider(provider)

        self._finish_in_app(run, plan)

    def _finish_in_app(self, run: Any, plan: EvalPlan) -> None:
        """Run the coroutine factory ``run`` here (a worker thread); report back to the app."""
        from ftwizard.evaluate.ab import EvaluationCancelled

        try:
            result = asyncio.run(run())
        except EvaluationCancelled:
            self.app.call_from_thread(self._failed, "Stopped; nothing was recorded.")
            return
        except FtwizardError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._finished, plan, result)

    def _progress(self, update: EvalProgress) -> None:
        self.query_one("#eval-progress", ProgressBar).update(
            total=max(1, update.total), progress=update.done
        )
        stage = "answers" if update.stage == "answers" else "judgments"
        self.query_one("#eval-status", Static).update(f"{update.done}/{update.total} {stage}")

    def _idle(self) -> None:
        self.busy = False
        self.query_one("#eval-progress", ProgressBar).display = False
        self.query_one("#eval-stop", Button).display = False

    def _failed(self, message: str) -> None:
        from ftwizard.credentials import redact

        self._idle()
        message = redact(message)
        self.query_one("#eval-status", Static).update(Text(message, style="red"))
        self.notify(message, title="Evaluation did not run", severity="error")
        self.job_ended(self._eval_job, "stopped" if self._stop else "failed")
        self.refresh_frame()
        self.query_one("#eval-status").scroll_visible(animate=False)

    def _finished(self, plan: EvalPlan, result: GraderComparison | PairwiseReport) -> None:
        from ftwizard.ledger.store import record_session

        self._idle()
        store = self.wizard.store
        if isinstance(result, PairwiseReport):
            record_pairwise(store, self.session, plan.held_out, result)
            self.pairwise_report = result
            self._show_pairwise()
            status = f"Blind A/B done: {result.counts.n} items judged."
        else:
            record_grader_comparison(store, self.session, plan.held_out, result)
            self.grader_report = result
            self._show_grader()
            status = f"Grader comparison done: {result.n} rows."
        self.wizard.save_session()
        try:
            record_session(store, self.session)
        except (OSError, FtwizardError) as exc:
            status += f" (the run ledger was not updated: {exc})"
        self.query_one("#eval-status", Static).update(status)
        self.job_ended(self._eval_job, "done")
        self.refresh_frame()
        # The figures in view, with the focus on the run's button just above them (evaluate
        # is the last step: no Next to go on to).
        if isinstance(result, PairwiseReport):
            self.show_outcome(self.query_one("#ab-summary"), self.query_one("#run-ab"))
        else:
            summary = self.query_one("#grader-eval-summary")
            self.show_outcome(summary, self.query_one("#run-grader-eval"))
