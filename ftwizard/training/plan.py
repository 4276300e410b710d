"""The training step's plan and guard: hyperparameters, the cost and time estimate, and what
must happen before a job may start.

- :func:`plan_training` gathers what the confirmation screen shows: backend, base model, data
  counts, the hyperparameters (each backend's defaults, editable with
  :func:`set_hyperparameter`), the cost and time estimate and the dry-run verdict;
- :func:`training_blocker` is the guard: no training without a dry run that lets it go on (or a
  recorded override), nothing remote without ``allow_spend`` and the user's confirmation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ftwizard.errors import FtwizardError, InputError
from ftwizard.inputs import iter_lines, open_input
from ftwizard.providers.training import (
    CheckpointInfo,
    Hyperparameters,
    JobEvent,
    JobState,
    JobStatus,
    MetricPoint,
)
from ftwizard.session import Backend, Method, Session
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
_LOCAL_MORE = ("lora_alpha", "lora_dropout", "max_length", "eval_steps", "max_steps", "processes")
_TOGETHER_FIELDS = (
    "n_epochs",
    "batch_size",
    "learning_rate",
    "training_type",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_trainable_modules",
    "n_checkpoints",
    "n_evals",
)
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
    Backend.together: {
        Method.sft: _TOGETHER_FIELDS,
        Method.dpo: (*_TOGETHER_FIELDS, "beta"),
        Method.rft: (),
    },
    Backend.fireworks: {
        Method.sft: ("n_epochs", "batch_size", "learning_rate", "lora_r"),
        Method.dpo: ("n_epochs", "batch_size", "learning_rate", "lora_r"),
        Method.rft: ("n_epochs", "batch_size", "learning_rate", "lora_r"),
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
        with open_input(path) as handle:
            return sum(1 for _, line in iter_lines(handle, path) if line is None or line.strip())
    except (OSError, InputError):
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
    pixels = session.dataset.choice.max_pixels
    if pixels is not None and "max_pixels" in values:
        # The dataset step's pixel budget is the one source: the image tokens it counted (and
        # the estimate built on them) are what local training feeds the model.
        values["max_pixels"] = pixels
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
    if value is None and name not in ("eval_steps", "max_steps", "adapter_size", "processes"):
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
    if backend is Backend.fireworks and method is Method.rft:
        from ftwizard.pricing import fireworks_rft_cost

        cost = fireworks_rft_cost(base_model, tokens, epochs)
    basis = cost.basis
    if result is not None and result.image_tokens:
        basis += (
            f"; {result.image_tokens:,} of the tokens per epoch are {result.images:,} images "
            f"({result.image_tokens_note})"
        )
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
    if backend is Backend.together:
        notices.append(
            "Together's own price estimate is asked before the job (the files are uploaded "
            "for it, which is free); over your account's limit nothing is created."
        )
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
    if estimate.usd is not None:
        # Otherwise keep the provider's own quote (Together), recorded just before.
        session.training.estimated_cost_usd = estimate.usd
    session.training.estimated_seconds = estimate.seconds
    session.training.confirmed_at = datetime.now(UTC)
    return estimate
