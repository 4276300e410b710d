"""Sessions standing on the training step, for the training tests of every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any, TypeVar

from ftwizard.datasets.pipeline import prepare
from ftwizard.flow import start_session
from ftwizard.graders.workbench import SPEC_FILE, spec_digest
from ftwizard.providers.training import TrainingProvider
from ftwizard.session import Backend, GraderTest, Method, Session, StepId
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from tests.tiny_local import Tickets

TODAY = date(2026, 11, 22)


def session_at_training(
    store: SessionStore,
    tickets: Tickets,
    *,
    backend: Backend = Backend.local,
    method: Method = Method.sft,
    verdict: str | None = "GO",
    name: str = "tickets",
    convert: bool = False,
) -> Session:
    """A session whose task, dataset, grader and dry run are done, standing on training."""
    session = start_session(store, name, backend=backend, method=method)
    assert session.task.backend and session.task.method
    session.dataset.choice.train_path = str(tickets.train)
    session.dataset.choice.valid_path = str(tickets.valid)
    session.dataset.choice.convert = convert
    session.dataset.result, _ = prepare(
        session.dataset.choice,
        backend=session.task.backend,
        method=session.task.method,
        model=session.task.base_model,
        out_dir=store.artifacts_dir(session.id) / "dataset",
    )
    text = tickets.grader.read_text(encoding="utf-8")
    session.grader.spec_text = text
    # The grader step's own test and confirmation (tests/graders/test_screen.py drives those).
    session.grader.test = GraderTest(
        spec_digest=spec_digest(text),
        source="dataset",
        source_label="the dataset's own answers",
        rows=[],
        mean=1.0,
        n_errors=0,
    )
    session.grader.confirmed_digest = spec_digest(text)
    (store.artifacts_dir(session.id) / SPEC_FILE).write_text(text, encoding="utf-8")
    if verdict is not None:
        session.dryrun.verdict = verdict
        session.dryrun.grader_digest = spec_digest(text)
        session.dryrun.data_file = session.dataset.result.training_file
    session.step = StepId.training
    store.save(session)
    return session


T = TypeVar("T")


def openai_provider(session: Session, store: SessionStore) -> TrainingProvider:
    """The session's OpenAI provider with a date before the cutoff."""
    return training_jobs.training_provider(session, store, today=lambda: TODAY)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def train_to_end(
    session: Session, store: SessionStore, provider: TrainingProvider, finish: Callable[[], None]
) -> None:
    """Confirm and start the session's job on a fake, let ``finish`` run it to its end there,
    and poll once, so the session holds the finished job and its checkpoints."""
    training_plan.confirm_training(session, store)

    async def steps() -> None:
        # One loop for every call: a provider's HTTP clients belong to the loop that made them.
        try:
            await training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider)
            finish()
            await training_follow.poll(session, store, provider)
        finally:
            await training_jobs.close_training_provider(provider)

    run(steps())
