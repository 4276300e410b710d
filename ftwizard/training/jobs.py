"""Building, starting and re-attaching a training job, for every backend through
:class:`~ftwizard.providers.training.TrainingProvider` (local through
:class:`~ftwizard.training.local.LocalTrainingProvider`).

:func:`prepare_attempt` saves the intent (a client-made key, and for local the run folder)
*before* anything is created; :func:`create_or_find_job` creates the job only when none carries
the key; :func:`record_job` saves the id. :func:`start_or_attach` does all three. A session
killed anywhere in between re-attaches on resume: never a second job.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    PriceQuote,
    QuotingProvider,
    TrainingProvider,
    TrainingSpec,
    start_or_reattach,
)
from ftwizard.session import Backend, Method, Session, TrainingIntent
from ftwizard.store import SessionStore
from ftwizard.training.plan import (
    _FINISHED,
    SpendNotAllowed,
    TrainingBlocked,
    _task,
    current_hyperparameters,
    grader_file,
    runs_root,
    training_blocker,
)

# -- building the job ----------------------------------------------------------------------


def _suffix(session: Session) -> str | None:
    slug = re.sub(r"[^a-z0-9]+", "-", session.name.lower()).strip("-")[:40].strip("-")
    return slug or None


def new_key(session: Session) -> str:
    """A fresh idempotency key for one attempt (valid as OpenAI metadata and Vertex label)."""
    return f"{session.id[:40]}-{secrets.token_hex(4)}".lower()


def build_spec(session: Session, store: SessionStore, key: str) -> TrainingSpec:
    """The provider-neutral job for this session (local RFT carries the grader file)."""
    backend, method, base_model = _task(session)
    result = session.dataset.result
    if result is None:
        raise TrainingBlocked("check the dataset first", field="dataset")
    grader: dict[str, Any] | None = None
    reward: dict[str, Any] | None = None
    if method is Method.rft:
        from ftwizard.graders.loading import load_grader

        path = grader_file(session, store)
        if backend is Backend.openai:
            from ftwizard.graders.export_openai import to_openai_grader

            grader = to_openai_grader(load_grader(path))
        elif backend is Backend.vertex:
            from ftwizard.graders.export_vertex import to_vertex_reward_config

            reward = to_vertex_reward_config(load_grader(path))
        elif backend is Backend.fireworks:
            from ftwizard.graders.export_fireworks import to_fireworks_evaluator
            from ftwizard.providers.fireworks.shapes import evaluator_id_for

            evaluator = to_fireworks_evaluator(
                load_grader(path), evaluator_id=evaluator_id_for(key)
            )
            reward = {"fireworks_evaluator": evaluator.model_dump()}
        else:
            reward = {"grader_file": str(path)}
    hyper = Hyperparameters()
    if backend is not Backend.local:
        known = Hyperparameters.model_fields
        hyper = Hyperparameters.model_validate(
            {k: v for k, v in current_hyperparameters(session).items() if k in known}
        )
    return TrainingSpec(
        method=method.value,
        base_model=base_model,
        training_file=Path(result.training_file),
        validation_file=Path(result.validation_file) if result.validation_file else None,
        hyperparameters=hyper,
        suffix=_suffix(session),
        grader=grader,
        reward_config=reward,
        idempotency_key=key,
        display_name=f"ftwizard {session.name}"[:128],
    )


def build_local_config(session: Session, store: SessionStore) -> Any:
    """The :class:`LocalTrainingConfig` of this session (the RFT reward is its grader file)."""
    from ftwizard.providers.local.config import (
        LocalHyperparameters,
        RewardConfig,
        parse_training_config,
    )

    backend, method, base_model = _task(session)
    result = session.dataset.result
    if backend is not Backend.local or result is None:
        raise TrainingBlocked("not a local training session with a checked dataset")
    reward = None
    if method is Method.rft:
        reward = RewardConfig(grader_file=grader_file(session, store)).model_dump(mode="json")
    hp = LocalHyperparameters.model_validate(current_hyperparameters(session))
    return parse_training_config(
        {
            "method": method.value,
            "base_model": base_model if ":" in base_model else f"local:{base_model}",
            "train_file": result.training_file,
            "valid_file": result.validation_file,
            "run_dir": str(runs_root(session, store) / "pending"),
            "hyperparameters": hp.model_dump(),
            "reward": reward,
            "device": "auto",
        }
    )


def training_provider(
    session: Session,
    store: SessionStore,
    *,
    on_notice: Callable[[str], None] | None = None,
    today: Callable[[], date] | None = None,
) -> TrainingProvider:
    """The provider of the session's backend (keys and endpoints from the environment)."""
    backend, _, _ = _task(session)
    if backend is Backend.local:
        from ftwizard.training.local import LocalTrainingProvider

        config = build_local_config(session, store) if session.dataset.result else None
        return LocalTrainingProvider(runs_root(session, store), config)
    if backend is Backend.openai:
        from ftwizard.providers.openai.training import OpenAITrainingProvider

        kwargs: dict[str, Any] = {"on_notice": on_notice}
        if today is not None:
            kwargs["today"] = today
        return OpenAITrainingProvider(**kwargs)
    if backend is Backend.together:
        from ftwizard.providers.together.training import TogetherTrainingProvider

        return TogetherTrainingProvider()
    if backend is Backend.fireworks:
        from ftwizard.providers.fireworks.training import FireworksTrainingProvider

        return FireworksTrainingProvider()
    from ftwizard.providers.vertex.training import VertexTrainingProvider

    return VertexTrainingProvider()


def preflight_job(session: Session, *, field: str) -> None:
    """Fail at once, before any quote or cost question, when a job on the session's hosted
    backend cannot be created (its key, account, project or ADC is missing)."""
    from ftwizard.providers.preflight import preflight_training

    backend, _, _ = _task(session)
    if backend is not Backend.local:
        preflight_training(backend.value, field=field)


async def close_training_provider(provider: TrainingProvider) -> None:
    """Release what the provider holds on the running loop."""
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        await aclose()


async def quote_training(
    session: Session, store: SessionStore, provider: TrainingProvider
) -> PriceQuote | None:
    """The provider's own price for the job as configured, before anything is created
    (``None`` when the backend gives none). Recorded as the session's estimated cost."""
    if not isinstance(provider, QuotingProvider):
        return None
    # The key only names the job at creation; the quote creates none.
    spec = build_spec(session, store, f"quote-{session.id[:40]}".lower())
    quote = await provider.quote(spec)
    if quote.usd is not None:
        session.training.estimated_cost_usd = quote.usd
    return quote


# -- starting and re-attaching -------------------------------------------------------------


def prepare_attempt(session: Session, store: SessionStore, *, allow_spend: bool) -> str:
    """Check the guards, then save the intent (and local run folder) before anything starts.

    Returns the attempt's key. An existing intent is kept: its job is found again by its key.
    """
    backend, _, _ = _task(session)
    section = session.training
    # Checked even for an earlier intent: whoever creates the job now needs the permission.
    if backend is not Backend.local and not allow_spend:
        raise SpendNotAllowed(
            f"training on {backend.value} costs money: not started without permission to "
            "spend (run with --allow-spend)"
        )
    if section.intent is not None:
        return section.intent.key
    problem = training_blocker(session, store)
    if problem:
        raise TrainingBlocked(problem)
    if section.confirmed_at is None:
        raise TrainingBlocked("confirm the training plan first", field="confirmed_at")
    key = new_key(session)
    section.intent = TrainingIntent(key=key)
    if backend is Backend.local:
        section.run_dir = str(runs_root(session, store) / key)
    section.status = JobState.queued.value
    store.save(session)
    return key


async def create_or_find_job(provider: TrainingProvider, spec: TrainingSpec) -> tuple[str, bool]:
    """The job for ``spec``'s key: found again, or created. Returns ``(job_id, reattached)``."""
    result = await start_or_reattach(provider, spec)
    return result.job_id, result.reattached


def record_job(session: Session, job_id: str) -> None:
    """Complete the intent with the job's id."""
    section = session.training
    if section.intent is None:
        raise InputError("no training intent to complete", field="training.intent")
    section.intent.job_id = job_id
    if section.started_at is None:
        section.started_at = datetime.now(UTC)


async def find_existing_job(provider: TrainingProvider, session: Session) -> str | None:
    """The session's job id: recorded, or looked up by the intent's key. Never creates."""
    intent = session.training.intent
    if intent is None:
        return None
    if intent.job_id is not None:
        return intent.job_id
    return await provider.find_job(intent.key)


async def start_or_attach(
    session: Session,
    store: SessionStore,
    *,
    allow_spend: bool,
    provider: TrainingProvider | None = None,
) -> tuple[str, bool]:
    """Start the session's job or re-attach to it; return ``(job_id, reattached)``.

    The intent is saved before anything is created and the id right after, so whatever
    happens in between, the next call finds the job by its key instead of starting another.
    """
    provider = provider or training_provider(session, store)
    existing = await find_existing_job(provider, session)
    if existing is not None:
        if session.training.intent and session.training.intent.job_id is None:
            record_job(session, existing)
            store.save(session)
        return existing, True
    key = prepare_attempt(session, store, allow_spend=allow_spend)
    job_id, reattached = await create_or_find_job(provider, build_spec(session, store, key))
    record_job(session, job_id)
    store.save(session)
    return job_id, reattached


def new_attempt(session: Session) -> None:
    """Forget a finished attempt so the next start creates a new job (with a new key)."""
    section = session.training
    if section.intent is not None and section.status not in _FINISHED:
        raise InputError("the current job has not finished; cancel it first", field="training")
    for name in (
        "intent",
        "run_dir",
        "status",
        "raw_status",
        "error",
        "fine_tuned_model",
        "trained_tokens",
        "started_at",
        "finished_at",
        "metrics_cursor",
        "events_cursor",
        "chosen_checkpoint",
        "chosen_by",
        "checkpoint_eval",
        "cost_usd",
        "confirmed_at",
        "endpoint",
    ):
        setattr(section, name, None)
    section.metrics = []
    section.events = []
    section.checkpoints = []
