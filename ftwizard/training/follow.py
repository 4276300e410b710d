"""Following a training job: polling and control.

:func:`fetch_update` asks the provider what changed (network only) and :func:`apply_update`
folds it into the session (no I/O), so a screen can fetch in a worker thread and apply on the
UI thread; :func:`poll` does both and saves, for the CLI. :func:`pause_job`,
:func:`resume_job` and :func:`cancel_job` control the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import (
    JobStatus,
    TrainingProvider,
)
from ftwizard.session import Backend, Session
from ftwizard.store import SessionStore
from ftwizard.training.plan import MAX_STORED_EVENTS, JobUpdate

# -- polling ---------------------------------------------------------------------------------


def job_id_of(session: Session) -> str | None:
    """The recorded job id, if any."""
    intent = session.training.intent
    return intent.job_id if intent is not None else None


async def fetch_update(
    provider: TrainingProvider,
    job_id: str,
    *,
    events_cursor: str | None,
    metrics_cursor: str | None,
) -> JobUpdate:
    """Ask the provider for the job's status and what is new since the cursors."""
    status = await provider.get_job(job_id)
    events, new_events_cursor = await provider.events(job_id, events_cursor)
    metrics, new_metrics_cursor = await provider.metrics(job_id, metrics_cursor)
    checkpoints = await provider.checkpoints(job_id) if provider.capabilities.checkpoints else []
    return JobUpdate(
        status=status,
        events=events,
        events_cursor=new_events_cursor,
        metrics=metrics,
        metrics_cursor=new_metrics_cursor,
        checkpoints=checkpoints,
    )


def apply_update(session: Session, update: JobUpdate) -> None:
    """Fold a poll's findings into the session (no I/O: the caller saves)."""
    from ftwizard.pricing import training_cost

    section = session.training
    status = update.status
    section.status = status.state.value
    section.raw_status = status.raw_status
    section.error = status.error
    if status.fine_tuned_model:
        section.fine_tuned_model = status.fine_tuned_model
    if status.endpoint:
        section.endpoint = status.endpoint
    if status.trained_tokens is not None:
        section.trained_tokens = status.trained_tokens
    if status.created_at is not None:
        # The provider's clock, not the moment this process recorded the id.
        section.started_at = status.created_at
    if status.finished_at is not None:
        section.finished_at = status.finished_at
    elif status.finished and section.finished_at is None:
        section.finished_at = datetime.now(UTC)
    if update.events:
        added = [e.model_dump(mode="json") for e in update.events]
        section.events = (section.events + added)[-MAX_STORED_EVENTS:]
    section.events_cursor = update.events_cursor
    if update.metrics:
        section.metrics = section.metrics + [m.model_dump(mode="json") for m in update.metrics]
    section.metrics_cursor = update.metrics_cursor
    if update.checkpoints:
        section.checkpoints = [c.model_dump(mode="json") for c in update.checkpoints]
    backend = session.task.backend
    if status.finished and backend is not None and session.task.base_model:
        if backend is Backend.local:
            section.cost_usd = 0.0
        elif section.trained_tokens:
            section.cost_usd = training_cost(
                backend.value, session.task.base_model, section.trained_tokens, 1
            ).usd


async def poll(session: Session, store: SessionStore, provider: TrainingProvider) -> JobUpdate:
    """Fetch what changed, fold it into the session and save."""
    job_id = job_id_of(session)
    if job_id is None:
        raise InputError("no training job to poll", field="training.intent")
    update = await fetch_update(
        provider,
        job_id,
        events_cursor=session.training.events_cursor,
        metrics_cursor=session.training.metrics_cursor,
    )
    apply_update(session, update)
    store.save(session)
    if update.status.finished:
        record_in_ledger(session, store)
    return update


def record_in_ledger(session: Session, store: SessionStore) -> None:
    """Add the finished run to the run ledger (``ftwizard ledger``)."""
    from ftwizard.ledger.store import record_session

    record_session(store, session)


async def follow(
    session: Session,
    store: SessionStore,
    provider: TrainingProvider,
    *,
    interval_s: float = 5.0,
    max_polls: int = 100_000,
    max_failures: int = 10,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_update: Callable[[JobUpdate], None] | None = None,
    on_error: Callable[[FtwizardError], None] | None = None,
) -> JobStatus:
    """Poll until the job finished (or ``max_polls``); provider faults are retried up to
    ``max_failures`` polls in a row, then raised."""
    failures = 0
    last: JobStatus | None = None
    for _ in range(max_polls):
        try:
            update = await poll(session, store, provider)
        except ProviderError as exc:
            failures += 1
            if on_error is not None:
                on_error(exc)
            if failures >= max_failures:
                raise
            await sleep(interval_s)
            continue
        failures = 0
        last = update.status
        if on_update is not None:
            on_update(update)
        if last.finished:
            return last
        await sleep(interval_s)
    if last is None:
        raise FtwizardError("the job could not be polled")
    return last


# -- control ---------------------------------------------------------------------------------


def _apply_status(session: Session, status: JobStatus) -> None:
    session.training.status = status.state.value
    session.training.raw_status = status.raw_status


async def _control(
    session: Session,
    store: SessionStore,
    provider: TrainingProvider,
    action: Callable[[str], Awaitable[JobStatus]],
) -> JobStatus:
    job_id = job_id_of(session)
    if job_id is None:
        raise InputError("no training job yet", field="training.intent")
    status = await action(job_id)
    _apply_status(session, status)
    store.save(session)
    return status


async def pause_job(session: Session, store: SessionStore, provider: TrainingProvider) -> JobStatus:
    """Pause the job (backends that can: ``provider.capabilities.pause``)."""
    return await _control(session, store, provider, provider.pause)


async def resume_job(
    session: Session, store: SessionStore, provider: TrainingProvider
) -> JobStatus:
    """Resume a paused job."""
    return await _control(session, store, provider, provider.resume)


async def cancel_job(
    session: Session, store: SessionStore, provider: TrainingProvider
) -> JobStatus:
    """Cancel the job; what it trained so far stays (checkpoints, a local adapter)."""
    return await _control(session, store, provider, provider.cancel)
