"""The training screen's polling and job control (pause, resume, cancel), in thread workers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rich.text import Text
from textual import work
from textual.widgets import Static

from ftwizard.errors import InputError
from ftwizard.providers.training import JobStatus, TrainingProvider
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan


class ControlsPart(StepScreen):
    """Polling and job control (a mixin of :class:`TrainingScreen`)."""

    def _start_polling(self) -> None:
        if self._timer is None:
            self._timer = self.set_interval(self.POLL_S, self.poll_now)

    def _stop_polling(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poll_now(self) -> None:
        """Ask the provider for news now (the timer calls this too)."""
        session = self.session
        if session.training.intent is None or self._polling:
            return
        self._polling = True
        self._poll(
            self._provider(),
            training_follow.job_id_of(session),
            session.training.intent.key,
            session.training.events_cursor,
            session.training.metrics_cursor,
        )

    @work(thread=True, exclusive=True, group="training-poll", exit_on_error=False)
    def _poll(
        self,
        provider: TrainingProvider,
        job_id: str | None,
        key: str,
        events_cursor: str | None,
        metrics_cursor: str | None,
    ) -> None:
        async def fetch() -> tuple[str | None, training_plan.JobUpdate | None]:
            try:
                found = job_id or await provider.find_job(key)
                if found is None:
                    return None, None
                update = await training_follow.fetch_update(
                    provider, found, events_cursor=events_cursor, metrics_cursor=metrics_cursor
                )
                return found, update
            finally:
                await training_jobs.close_training_provider(provider)

        try:
            found, update = asyncio.run(fetch())
        except Exception as exc:  # network faults: say so and try again at the next tick
            self._call(self._poll_failed, str(exc))
            return
        self._call(self._polled, found, update, events_cursor, metrics_cursor)

    def _poll_failed(self, message: str) -> None:
        self._polling = False
        self.query_one("#training-status", Static).update(
            Text(f"Could not reach the job (retrying): {message}", style="red")
        )

    def _polled(
        self,
        job_id: str | None,
        update: training_plan.JobUpdate | None,
        events_cursor: str | None,
        metrics_cursor: str | None,
    ) -> None:
        self._polling = False
        section = self.session.training
        if section.intent is None:
            return
        if job_id is None or update is None:
            self._job_missing = True
            self._stop_polling()
            self.refresh_frame()
            return
        if section.intent.job_id is None:
            training_jobs.record_job(self.session, job_id)
        if (section.events_cursor, section.metrics_cursor) != (events_cursor, metrics_cursor):
            return  # a newer poll already applied these points
        was_finished = section.status in ("succeeded", "failed", "cancelled")
        training_follow.apply_update(self.session, update)
        self.wizard.save_session()
        self._show_job(update.status)
        self.refresh_frame()
        if update.status.finished:
            self._stop_polling()
            training_follow.record_in_ledger(self.session, self.wizard.store)
            if not was_finished:
                state = update.status.state.value
                result = {"succeeded": "done", "cancelled": "stopped"}.get(state, "failed")
                self.job_ended("training", result)
                # The outcome in view; then the next step, or another attempt after a failure.
                decision = "#next" if state == "succeeded" else "#new-attempt"
                self.show_outcome(self.query_one("#training-status"), self.query_one(decision))

    def _ask_control(self, action: str) -> None:
        questions = {
            "pause": "Pause the job? It keeps its progress and can be resumed.",
            "resume": "Resume the paused job? Training (and billing) continues.",
            "cancel": "Cancel the job? This cannot be undone; checkpoints saved so far remain.",
        }
        labels = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel the job"}

        def answer(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self.refresh_frame()
                self._control(self._provider(), action, training_follow.job_id_of(self.session))

        self.app.push_screen(ConfirmScreen(questions[action], yes_label=labels[action]), answer)

    @work(thread=True, exclusive=True, group="training-control", exit_on_error=False)
    def _control(self, provider: TrainingProvider, action: str, job_id: str | None) -> None:
        async def act() -> JobStatus:
            try:
                if job_id is None:
                    raise InputError("the job id is not known yet; wait for the next poll")
                call: Callable[[str], Awaitable[JobStatus]] = getattr(provider, action)
                return await call(job_id)
            finally:
                await training_jobs.close_training_provider(provider)

        try:
            status = asyncio.run(act())
        except Exception as exc:  # shown, not swallowed: the user asked for this
            self._call(self._control_failed, action, str(exc))
            return
        self._call(self._controlled, status)

    def _control_failed(self, action: str, message: str) -> None:
        self.busy = False
        self.notify(message, title=f"Could not {action}", severity="error")
        self.refresh_frame()

    def _controlled(self, status: JobStatus) -> None:
        self.busy = False
        self.session.training.status = status.state.value
        self.session.training.raw_status = status.raw_status
        self.wizard.save_session()
        self._show_job(status)
        self.refresh_frame()
        self.poll_now()
