"""The training step's core: plan, guard, start or re-attach, poll, control, choose.

One loop serves every backend through :class:`~ftwizard.providers.training.TrainingProvider`
(OpenAI, Vertex, and local through :class:`~ftwizard.training.local.LocalTrainingProvider`):

- :func:`plan_training` gathers what the confirmation screen shows: backend, base model, data
  counts, the hyperparameters (each backend's defaults, editable with
  :func:`set_hyperparameter`), the cost and time estimate and the dry-run verdict;
- :func:`training_blocker` is the guard: no training without a dry run that lets it go on (or a
  recorded override), nothing remote without ``allow_spend`` and the user's confirmation;
- :func:`prepare_attempt` saves the intent (a client-made key, and for local the run folder)
  *before* anything is created; :func:`create_or_find_job` creates the job only when none
  carries the key; :func:`record_job` saves the id. :func:`start_or_attach` does all three.
  A session killed anywhere in between re-attaches on resume: never a second job;
- :func:`fetch_update` asks the provider what changed (network only) and :func:`apply_update`
  folds it into the session (no I/O), so a screen can fetch in a worker thread and apply on the
  UI thread; :func:`poll` does both and saves, for the CLI;
- :func:`pause_job`, :func:`resume_job`, :func:`cancel_job`; :func:`best_checkpoint_of` and
  :func:`choose_checkpoint`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import (
    CheckpointInfo,
    Hyperparameters,
    JobEvent,
    JobState,
    JobStatus,
    MetricPoint,
    TrainingProvider,
    TrainingSpec,
    best_checkpoint,
    start_or_reattach,
)
from ftwizard.session import Backend, Method, Session, TrainingIntent
from ftwizard.store import SessionStore

RUNS_DIR = "training"
# Events kept in session.json: the log is for reading, the metrics list holds the curves.
MAX_STORED_EVENTS = 500
# OpenAI and Vertex choose the epochs for "auto" from the data size; the estimate assumes this.
AUTO_EPOCHS = 3
# Measured local throughput (docs/local-training.md: builtin-tiny, LoRA, 2 shared CPU cores,
# median of bench/bench_local_training.py). Other local models have no measured figure.
LOCAL_TOKENS_PER_S: dict[str, float] = {"builtin-tiny": 13_568.0}
# Worker start-up (imports, model load) on the same machine, added to the local estimate.
LOCAL_STARTUP_S = 10.0

# Which hyperparameters the confirmation screen offers, per backend and method.
_LOCAL_FIELDS = ("epochs", "learning_rate", "batch_size", "grad_accumulation", "lora_r")
_LOCAL_MORE = ("lora_alpha", "lora_dropout", "max_length", "eval_steps", "max_steps")
EDITABLE: dict[Backend, dict[Method, tuple[str, ...]]] = {
    Backend.local: {
        Method.sft: (*_LOCAL_FIELDS, *_LOCAL_MORE),
        Method.dpo: (*_LOCAL_FIELDS, *_LOCAL_MORE, "beta"),
        Method.rft: (*_LOCAL_FIELDS, *_LOCAL_MORE, "num_generations", "max_completion_length"),
    },
    Backend.openai: {
        Method.sft: ("n_epochs", "batch_size", "learning_rate_multiplier"),
        Method.dpo: ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
        Method.rft: (
            "n_epochs",
            "batch_size",
            "learning_rate_multiplier",
            "reasoning_effort",
            "compute_multiplier",
            "eval_interval",
            "eval_samples",
        ),
    },
    Backend.vertex: {
        Method.sft: ("n_epochs", "learning_rate_multiplier", "adapter_size"),
        Method.dpo: ("n_epochs", "learning_rate_multiplier", "adapter_size", "beta"),
        Method.rft: ("n_epochs", "learning_rate_multiplier", "adapter_size"),
    },
}

_FINISHED = frozenset({JobState.succeeded.value, JobState.failed.value, JobState.cancelled.value})

LESSON = (
    "Compare checkpoints before you judge: the last one is not always the best, and an early "
    "checkpoint's score is not the final model's. Pick by validation loss or reward."
)


class SpendNotAllowed(FtwizardError):
    """A remote job would be created without permission to spend money."""

    exit_code = 2


class TrainingBlocked(InputError):
    """Training cannot start yet; the message says what to do first."""


class TrainingEstimate(BaseModel):
    """What the confirmation screen shows about cost and time."""

    usd: float | None
    basis: str
    trained_tokens: int
    epochs: int
    seconds: float | None = None
    time_basis: str = ""


class TrainingPlan(BaseModel):
    """Everything the confirmation screen shows before the user starts training."""

    backend: Backend
    method: Method
    base_model: str
    training_file: str
    validation_file: str | None
    train_examples: int
    valid_examples: int
    tokens_per_epoch: int
    hyperparameters: dict[str, Any]
    editable: tuple[str, ...]
    estimate: TrainingEstimate
    dryrun_verdict: str | None
    dryrun_problem: str | None
    notices: list[str] = Field(default_factory=list)


class JobUpdate(BaseModel):
    """What one poll learned from the provider (no session involved)."""

    status: JobStatus
    events: list[JobEvent] = Field(default_factory=list)
    events_cursor: str | None = None
    metrics: list[MetricPoint] = Field(default_factory=list)
    metrics_cursor: str | None = None
    checkpoints: list[CheckpointInfo] = Field(default_factory=list)


# -- session facts -----------------------------------------------------------------------


def _task(session: Session) -> tuple[Backend, Method, str]:
    task = session.task
    if task.backend is None or task.method is None or not task.base_model:
        raise TrainingBlocked("the task step is not complete", field="task")
    return task.backend, task.method, task.base_model


def _count_lines(path: str | None) -> int:
    if not path:
        return 0
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def grader_file(session: Session, store: SessionStore) -> Path:
    """The grader spec the grader step wrote (``artifacts/grader.yaml``)."""
    from ftwizard.graders.workbench import SPEC_FILE

    return store.artifacts_dir(session.id) / SPEC_FILE


def runs_root(session: Session, store: SessionStore) -> Path:
    """Where the local backend's run folders live, one per attempt."""
    return store.artifacts_dir(session.id) / RUNS_DIR


# -- hyperparameters -----------------------------------------------------------------------


def default_hyperparameters(session: Session) -> dict[str, Any]:
    """The backend's defaults for this task (local: tuned to the base model)."""
    backend, method, base_model = _task(session)
    if backend is Backend.local:
        from ftwizard.providers.local.config import default_hyperparameters as local_defaults

        return local_defaults(base_model, method.value).model_dump()
    return Hyperparameters().model_dump()


def current_hyperparameters(session: Session) -> dict[str, Any]:
    """The defaults overlaid with what the user changed."""
    values = default_hyperparameters(session)
    values.update(session.training.hyperparameters)
    return values


def _validate(backend: Backend, values: dict[str, Any], name: str) -> None:
    from ftwizard.providers.local.config import LocalHyperparameters

    model: type[BaseModel] = LocalHyperparameters if backend is Backend.local else Hyperparameters
    try:
        model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        # Range checks across fields report no location: the field being edited is the one.
        field = ".".join(str(p) for p in err["loc"]) or name
        raise InputError(err["msg"].removeprefix("Value error, "), field=field) from None


def _parse_value(text: str, default: Any) -> Any:
    text = text.strip()
    if text.lower() in ("auto", ""):
        return "auto" if default == "auto" or isinstance(default, str) else None
    if text.lower() in ("none", "-"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def set_hyperparameter(session: Session, name: str, text: str) -> bool:
    """Set one hyperparameter from the user's text; ``InputError`` naming it when invalid.

    Returns whether the value changed. ``auto`` is accepted where the provider chooses.
    """
    backend, method, _ = _task(session)
    if name not in EDITABLE[backend][method]:
        raise InputError(f"not a setting of {backend.value} {method.value.upper()}", field=name)
    defaults = default_hyperparameters(session)
    value = _parse_value(text, defaults.get(name))
    if value is None and name not in ("eval_steps", "max_steps", "adapter_size"):
        raise InputError("a value is required", field=name)
    values = current_hyperparameters(session)
    if values.get(name) == value:
        return False
    values[name] = value
    _validate(backend, values, name)
    changed = {k: v for k, v in values.items() if defaults.get(k) != v}
    session.training.hyperparameters = changed
    return True


# -- the plan and the guard ----------------------------------------------------------------


def estimate_training(session: Session) -> TrainingEstimate:
    """Cost (pricing.py) and time (measured local throughput) of training as configured."""
    from ftwizard.pricing import training_cost

    backend, method, base_model = _task(session)
    result = session.dataset.result
    tokens = result.tokens_total if result is not None else 0
    hp = current_hyperparameters(session)
    if backend is Backend.local:
        epochs = max(1, round(float(hp["epochs"])))
    else:
        epochs = AUTO_EPOCHS if hp.get("n_epochs") == "auto" else int(hp["n_epochs"])
    cost = training_cost(backend.value, base_model, tokens, epochs)
    basis = cost.basis
    if backend is not Backend.local and hp.get("n_epochs") == "auto":
        basis += f" (epochs 'auto': {AUTO_EPOCHS} assumed)"
    seconds: float | None = None
    time_basis = "no measured throughput for this model; the live ETA follows the first steps"
    if backend is Backend.local:
        rate = LOCAL_TOKENS_PER_S.get(base_model.removeprefix("local:"))
        if rate is not None and tokens:
            seconds = round(tokens * epochs / rate + LOCAL_STARTUP_S, 1)
            time_basis = f"{rate:,.0f} tokens/s measured for {base_model} on 2 CPU cores"
    else:
        time_basis = "depends on the provider's queue; the live ETA follows the job"
    if method is Method.rft and backend is Backend.openai and cost.usd is None:
        basis += "; RFT is billed per training hour"
    return TrainingEstimate(
        usd=cost.usd,
        basis=basis,
        trained_tokens=cost.trained_tokens,
        epochs=epochs,
        seconds=seconds,
        time_basis=time_basis,
    )


def dryrun_blocker(session: Session) -> str | None:
    """Why the dry run does not let training go on (``None`` when it does or was overridden)."""
    if session.training.dryrun_override:
        return None
    from ftwizard.dryrun.session import dryrun_problem

    return dryrun_problem(session)


def training_blocker(session: Session, store: SessionStore) -> str | None:
    """What must happen before a job may start, or ``None``."""
    try:
        _, method, _ = _task(session)
    except InputError as exc:
        return str(exc)
    result = session.dataset.result
    if result is None:
        return "Check the dataset first."
    if not Path(result.training_file).is_file():
        return f"The prepared training file is gone: {result.training_file}; check the dataset."
    if method is Method.rft and not grader_file(session, store).is_file():
        return "RFT needs the grader: finish the grader step."
    problem = dryrun_blocker(session)
    if problem:
        return f"{problem} (or record a reason to train without it)"
    return None


def plan_training(
    session: Session, store: SessionStore, *, today: date | None = None
) -> TrainingPlan:
    """Everything the confirmation screen shows."""
    from ftwizard.catalog import openai_cutoff_notice

    backend, method, base_model = _task(session)
    result = session.dataset.result
    if result is None:
        raise TrainingBlocked("check the dataset first", field="dataset")
    notices: list[str] = []
    if backend is Backend.openai:
        notices.append(openai_cutoff_notice(today))
    if backend is not Backend.local:
        notices.append("This creates a paid job on " + backend.value + " when you confirm.")
    return TrainingPlan(
        backend=backend,
        method=method,
        base_model=base_model,
        training_file=result.training_file,
        validation_file=result.validation_file,
        train_examples=_count_lines(result.training_file),
        valid_examples=_count_lines(result.validation_file),
        tokens_per_epoch=result.tokens_total,
        hyperparameters=current_hyperparameters(session),
        editable=EDITABLE[backend][method],
        estimate=estimate_training(session),
        dryrun_verdict=session.dryrun.verdict,
        dryrun_problem=dryrun_blocker(session),
        notices=notices,
    )


def record_dryrun_override(session: Session, reason: str) -> None:
    """Record the user's reason to train without a dry run that lets training go on."""
    reason = reason.strip()
    if not reason:
        raise InputError("give a reason to train without the dry run", field="dryrun_override")
    session.training.dryrun_override = reason


def confirm_training(session: Session, store: SessionStore) -> TrainingEstimate:
    """Record the user's confirmation of the plan as it stands (settings and estimate)."""
    problem = training_blocker(session, store)
    if problem:
        raise TrainingBlocked(problem)
    estimate = estimate_training(session)
    session.training.estimated_cost_usd = estimate.usd
    session.training.estimated_seconds = estimate.seconds
    session.training.confirmed_at = datetime.now(UTC)
    return estimate


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
    from ftwizard.providers.vertex.training import VertexTrainingProvider

    return VertexTrainingProvider()


async def close_training_provider(provider: TrainingProvider) -> None:
    """Release what the provider holds on the running loop."""
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        await aclose()


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
        "cost_usd",
        "confirmed_at",
        "endpoint",
    ):
        setattr(section, name, None)
    section.metrics = []
    section.events = []
    section.checkpoints = []


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


# -- results ---------------------------------------------------------------------------------

_BEST_METRICS = (
    "full_valid_loss",
    "valid_loss",
    "eval_loss",
    "full_valid_mean_reward",
    "valid_reward_mean",
    "valid_reward",
    "eval_reward",
    "reward",
)


def metric_points(session: Session) -> list[MetricPoint]:
    """The recorded metric points."""
    return [MetricPoint.model_validate(m) for m in session.training.metrics]


def checkpoints_of(session: Session) -> list[CheckpointInfo]:
    """The recorded checkpoints."""
    return [CheckpointInfo.model_validate(c) for c in session.training.checkpoints]


def best_checkpoint_of(session: Session) -> tuple[CheckpointInfo, str] | None:
    """The best recorded checkpoint and the metric it was chosen by (validation loss first,
    else validation reward), or ``None`` when no checkpoint has a validation figure."""
    checkpoints = checkpoints_of(session)
    for metric in _BEST_METRICS:
        pick = best_checkpoint(checkpoints, metric=metric)
        if pick is not None:
            return pick, metric
    return None


def choose_checkpoint(session: Session, checkpoint_id: str) -> CheckpointInfo:
    """Make checkpoint ``checkpoint_id`` the model to deploy."""
    for checkpoint in checkpoints_of(session):
        if checkpoint.id == checkpoint_id:
            if not checkpoint.name:
                raise InputError(
                    "this checkpoint has no callable model", field="training.checkpoints"
                )
            session.training.chosen_checkpoint = checkpoint.name
            return checkpoint
    raise InputError(f"no checkpoint '{checkpoint_id}'", field="training.checkpoints")


def final_model(session: Session) -> str | None:
    """The model training produced: the chosen checkpoint, else the job's final model (on
    Vertex, the tuned model's endpoint, which is what a call goes to)."""
    section = session.training
    if section.chosen_checkpoint:
        return section.chosen_checkpoint
    if session.task.backend is Backend.vertex and section.endpoint:
        return section.endpoint
    return section.fine_tuned_model


def training_summary(session: Session) -> dict[str, Any]:
    """Final metrics, duration, trained tokens and cost, for the summary and ``status``."""
    section = session.training
    points = metric_points(session)
    latest: dict[str, float] = {}
    for point in points:
        for name in (
            "train_loss",
            "valid_loss",
            "full_valid_loss",
            "train_accuracy",
            "valid_accuracy",
            "train_reward",
            "valid_reward",
            "full_valid_reward",
        ):
            value = getattr(point, name)
            if value is not None:
                latest[name] = value
    duration = None
    if section.started_at and section.finished_at:
        duration = (section.finished_at - section.started_at).total_seconds()
    best = best_checkpoint_of(session)
    return {
        "job_id": job_id_of(session),
        "status": section.status,
        "raw_status": section.raw_status,
        "error": section.error,
        "step": points[-1].step if points else None,
        "total_steps": points[-1].total_steps if points else None,
        "latest": latest,
        "duration_s": duration,
        "trained_tokens": section.trained_tokens,
        "cost_usd": section.cost_usd,
        "fine_tuned_model": section.fine_tuned_model,
        "chosen_checkpoint": section.chosen_checkpoint,
        "best_checkpoint": best[0].id if best else None,
        "best_by": best[1] if best else None,
        "checkpoints": len(section.checkpoints),
    }


def training_problem(session: Session) -> str | None:
    """Why the training step is not complete (a succeeded job with a model), or ``None``."""
    section = session.training
    if section.intent is None:
        return "Confirm the plan and start training."
    if section.status != JobState.succeeded.value:
        if section.status in _FINISHED:
            return f"The job {section.status}; start a new attempt."
        return "Training is not finished yet."
    if not final_model(session):
        return "The job has no model to deploy; choose a checkpoint."
    return None


__all__ = [
    "EDITABLE",
    "LESSON",
    "JobUpdate",
    "SpendNotAllowed",
    "TrainingBlocked",
    "TrainingEstimate",
    "TrainingPlan",
    "apply_update",
    "best_checkpoint_of",
    "build_local_config",
    "build_spec",
    "cancel_job",
    "checkpoints_of",
    "choose_checkpoint",
    "confirm_training",
    "create_or_find_job",
    "current_hyperparameters",
    "default_hyperparameters",
    "estimate_training",
    "fetch_update",
    "final_model",
    "find_existing_job",
    "follow",
    "job_id_of",
    "metric_points",
    "new_attempt",
    "pause_job",
    "plan_training",
    "poll",
    "prepare_attempt",
    "record_dryrun_override",
    "record_job",
    "resume_job",
    "set_hyperparameter",
    "start_or_attach",
    "training_blocker",
    "training_problem",
    "training_provider",
    "training_summary",
]
