"""The training screen's confirmation: the plan, the settings, the estimate, and starting the
job."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Input, Log, Static

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.training import PriceQuote, QuotingProvider, TrainingProvider
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.screens.training.charts import (
    duration_text,
)
from ftwizard.session import Backend, Session
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from ftwizard.training.scale_out import scale_out_lines


class ConfirmPart(StepScreen):
    """The training screen's confirmation (a mixin of :class:`TrainingScreen`)."""

    def _show_plan(self) -> None:
        session = self.session
        store = self.wizard.store
        try:
            plan = training_plan.plan_training(session, store)
        except FtwizardError as exc:
            self.query_one("#training-plan", Static).update(Text(str(exc), style="red"))
            return
        verdict = plan.dryrun_verdict or "not run"
        override = session.training.dryrun_override
        lines = Text()
        lines.append(f"Backend {plan.backend.value}   base model {plan.base_model}   ")
        lines.append(f"method {plan.method.value.upper()}\n")
        lines.append(
            f"Data: {plan.train_examples} training and {plan.valid_examples} validation "
            f"examples, {plan.tokens_per_epoch:,} tokens per epoch\n"
        )
        lines.append("Dry run: ")
        style = {"GO": "green", "WARNING": "yellow", "NO-GO": "red"}.get(verdict, "red")
        lines.append(verdict, style=f"bold {style}")
        if plan.dryrun_problem:
            lines.append(f" - {plan.dryrun_problem}", style="red")
        elif override:
            lines.append(f" - trained without it: {override}", style="yellow")
        for notice in plan.notices:
            lines.append(f"\n{notice}", style="yellow")
        self.query_one("#training-plan", Static).update(lines)
        self._show_estimate()
        needs_override = plan.dryrun_problem is not None
        self.query_one("#dryrun-override-row").display = needs_override

    def _show_estimate(self) -> None:
        try:
            estimate = training_plan.estimate_training(self.session)
        except FtwizardError as exc:
            self.query_one("#training-estimate", Static).update(Text(str(exc), style="red"))
            return
        cost = "unknown" if estimate.usd is None else f"${estimate.usd:,.2f}"
        text = Text()
        text.append(f"Estimated cost {cost}", style="bold")
        text.append(f" ({estimate.basis})\n")
        text.append(f"Estimated time {duration_text(estimate.seconds)}", style="bold")
        text.append(f" ({estimate.time_basis})")
        for line in scale_out_lines(self.session):
            text.append(f"\n{line}", style="dim")
        self.query_one("#training-estimate", Static).update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        if not widget_id.startswith("hp-"):
            return
        event.stop()
        name = widget_id.removeprefix("hp-")
        error = self.query_one("#hp-error", Static)
        if self.session.training.intent is not None:
            return
        try:
            # Validate on a copy: an invalid value never reaches the session.
            trial = self.session.model_copy(deep=True)
            training_plan.set_hyperparameter(trial, name, event.value)
        except InputError as exc:
            error.update(Text(str(exc), style="red"))
            return
        error.update("")

        def apply(session: Session) -> bool:
            return training_plan.set_hyperparameter(session, name, event.value)

        self.decide(widget_id, event.value, apply)
        self._show_estimate()

    def _record_override(self) -> None:
        reason = self.query_one("#dryrun-override", Input).value

        def apply(session: Session) -> bool:
            if session.training.dryrun_override == reason.strip():
                return False
            training_plan.record_dryrun_override(session, reason)
            return True

        try:
            self.decide("dryrun-override", reason, apply)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._show_plan()
        self.refresh_frame()

    def _ask_start(self) -> None:
        session = self.session
        store = self.wizard.store
        self.job_started("training")
        blocker = training_plan.training_blocker(session, store)
        if blocker:
            self.notify(blocker, title="Not yet", severity="warning")
            self.job_ended("training", "failed")
            return
        backend = session.task.backend
        if backend is Backend.local:
            self._start()
            return
        try:
            training_jobs.preflight_job(session, field="Backend")
        except FtwizardError as exc:
            self.notify(str(exc), title="Not started", severity="error")
            return
        if not self.wizard.allow_spend:
            self.notify(
                "Starting a paid job is not allowed here (a replay needs --allow-spend).",
                title="Not started",
                severity="error",
            )
            self.job_ended("training", "failed")
            return
        provider = self._provider()
        if isinstance(provider, QuotingProvider):
            # The provider prices the job itself (Together): ask before the confirmation.
            self.query_one("#provider-quote", Static).update(
                f"Asking {backend.value} for its price estimate..."
            )
            self._fetch_quote(provider, session.model_copy(deep=True))
            return
        self._confirm_paid(None)

    @work(thread=True, exclusive=True, group="training-quote", exit_on_error=False)
    def _fetch_quote(self, provider: TrainingProvider, snapshot: Session) -> None:
        async def ask() -> PriceQuote | None:
            try:
                return await training_jobs.quote_training(snapshot, self.wizard.store, provider)
            finally:
                await training_jobs.close_training_provider(provider)

        try:
            quote = asyncio.run(ask())
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self._call(self._quote_failed, str(exc))
            return
        self._call(self._quoted, quote)

    def _quote_failed(self, message: str) -> None:
        self.query_one("#provider-quote", Static).update(Text(message, style="red"))
        self.notify(message, title="No price estimate", severity="error")
        self.job_ended("training", "failed")

    def _quoted(self, quote: PriceQuote | None) -> None:
        widget = self.query_one("#provider-quote", Static)
        if quote is None:
            widget.update("")
            self._confirm_paid(None)
            return
        widget.update(Text(quote.summary, style="bold" if quote.allowed else "bold red"))
        if not quote.allowed:
            self.notify(quote.summary, title="Not started", severity="error")
            self.job_ended("training", "failed")
            return
        self.session.training.estimated_cost_usd = quote.usd
        self.wizard.save_session()
        self._confirm_paid(quote)

    def _confirm_paid(self, quote: PriceQuote | None) -> None:
        session = self.session
        backend = session.task.backend
        assert backend is not None
        if quote is not None:
            cost = quote.summary
        else:
            estimate = training_plan.estimate_training(session)
            amount = "an unknown amount" if estimate.usd is None else f"about ${estimate.usd:,.2f}"
            cost = f"It costs {amount} ({estimate.basis})."

        def answer(yes: bool | None) -> None:
            if yes:
                self._start()
            else:
                self.job_ended("training", "declined")

        self.app.push_screen(
            ConfirmScreen(
                f"Create a fine-tuning job on {backend.value} for {session.task.base_model}? "
                f"{cost}",
                yes_label="Start the paid job",
            ),
            answer,
        )

    def _start(self) -> None:
        session = self.session
        store = self.wizard.store
        try:
            training_plan.confirm_training(session, store)
            key = training_jobs.prepare_attempt(session, store, allow_spend=self.wizard.allow_spend)
            spec = training_jobs.build_spec(session, store, key)
            provider = self._provider()
        except FtwizardError as exc:
            self.notify(str(exc), title="Not started", severity="error")
            self.job_ended("training", "failed")
            return
        self.wizard.save_session()
        self.busy = True
        self.query_one("#training-status", Static).update("Starting the job...")
        self.refresh_frame()
        self._create_job(provider, spec)

    @work(thread=True, exclusive=True, group="training-start", exit_on_error=False)
    def _create_job(self, provider: TrainingProvider, spec: Any) -> None:
        async def create() -> tuple[str, bool]:
            try:
                return await training_jobs.create_or_find_job(provider, spec)
            finally:
                await training_jobs.close_training_provider(provider)

        try:
            job_id, reattached = asyncio.run(create())
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self._call(self._start_failed, str(exc))
            return
        self._call(self._job_created, job_id, reattached)

    def _start_failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#training-status", Static).update(Text(message, style="red"))
        self.notify(message, title="Training did not start", severity="error")
        self.job_ended("training", "failed")
        self.refresh_frame()

    def _job_created(self, job_id: str, reattached: bool) -> None:
        self.busy = False
        self._job_missing = False
        training_jobs.record_job(self.session, job_id)
        self.wizard.save_session()
        verb = "Re-attached to" if reattached else "Started"
        self.notify(f"{verb} job {job_id}")
        self._show_job()
        self.refresh_frame()
        self._start_polling()
        self.poll_now()

    def _new_attempt(self) -> None:
        try:
            training_jobs.new_attempt(self.session)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.wizard.save_session()
        self.query_one("#training-events", Log).clear()
        self._shown_events = 0
        self._show_plan()
        self._show_job()
        self.refresh_frame()
