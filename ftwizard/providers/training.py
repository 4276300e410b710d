"""The provider-neutral shapes of a remote (or local) training job and the protocol behind them.

The core (training step, CLI ``train``/``status``, the training screen) talks to every
training backend through :class:`TrainingProvider` and these pydantic models only:

- :class:`TrainingSpec`: what to train (method, base model, files, hyperparameters, grader)
  plus the client-made idempotency key the session records *before* anything remote exists;
- :class:`UploadedFiles`: the provider's ids (or URIs) of the uploaded training files;
- :class:`JobStatus`: the job's normalized state with the provider's raw status beside it;
- :class:`MetricPoint` and :class:`CheckpointInfo`: what the charts and the checkpoint table show.

Idempotency (ARCHITECTURE.md, "Session"): the caller stores ``spec.idempotency_key`` as an
intent, then calls :func:`start_or_reattach`, which asks :meth:`TrainingProvider.find_job`
before it uploads or creates anything. A session killed between "create" and "record the id"
finds its job again by the key on resume instead of creating a second one.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TrainingMethod = Literal["sft", "dpo", "rft"]
Auto = Literal["auto"]

# Letters, digits, '-' and '_': valid as OpenAI metadata, in a file name and, lower-cased, as a
# Vertex label value (which allows at most 63 characters).
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,62}$")


class JobState(StrEnum):
    """A job's state, the same for every backend."""

    queued = "queued"
    running = "running"
    paused = "paused"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED_JOB_STATES: frozenset[JobState] = frozenset(
    {JobState.succeeded, JobState.failed, JobState.cancelled}
)


class Hyperparameters(BaseModel):
    """Training settings: ``"auto"`` lets the provider choose, a number is validated here.

    Ranges are OpenAI's (``FineTune*Hyperparameters`` in its OpenAPI spec): batch size 1-256,
    epochs 1-50, learning-rate multiplier > 0, DPO beta in (0, 2], RFT compute multiplier in
    (0.00001, 10], eval interval and eval samples >= 1. A backend that has no such setting
    ignores it; one whose own range is narrower says so when the job is created.
    ``adapter_size`` is Vertex's LoRA adapter size (1, 4, 8, 16 or 32).
    ``learning_rate`` (absolute), ``training_type``, the ``lora_*`` settings, ``n_checkpoints``
    and ``n_evals`` are the open-model services' (Together's ``/fine-tunes`` fields).
    """

    model_config = ConfigDict(extra="forbid")

    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    beta: float | Auto = "auto"
    reasoning_effort: Literal["default", "low", "medium", "high"] = "default"
    compute_multiplier: float | Auto = "auto"
    eval_interval: int | Auto = "auto"
    eval_samples: int | Auto = "auto"
    adapter_size: Literal[1, 4, 8, 16, 32] | None = None
    learning_rate: float | Auto = "auto"
    training_type: Literal["lora", "full"] = "lora"
    lora_r: int | Auto = "auto"
    lora_alpha: int | Auto = "auto"
    lora_dropout: float | Auto = "auto"
    lora_trainable_modules: str = Field(default="all-linear", min_length=1)
    n_checkpoints: int | Auto = "auto"
    n_evals: int | Auto = "auto"

    @model_validator(mode="after")
    def _in_range(self) -> Hyperparameters:
        checks: list[tuple[str, Any, float, float, bool]] = [
            # (field, value, low, high, low is exclusive)
            ("n_epochs", self.n_epochs, 1, 50, False),
            ("batch_size", self.batch_size, 1, 256, False),
            ("learning_rate_multiplier", self.learning_rate_multiplier, 0, float("inf"), True),
            ("beta", self.beta, 0, 2, True),
            ("compute_multiplier", self.compute_multiplier, 0.00001, 10, True),
            ("eval_interval", self.eval_interval, 1, float("inf"), False),
            ("eval_samples", self.eval_samples, 1, float("inf"), False),
            ("learning_rate", self.learning_rate, 0, 1, True),
            ("lora_r", self.lora_r, 1, 1024, False),
            ("lora_alpha", self.lora_alpha, 1, 4096, False),
            ("lora_dropout", self.lora_dropout, 0, 0.99, False),
            ("n_checkpoints", self.n_checkpoints, 1, 100, False),
            ("n_evals", self.n_evals, 0, 100, False),
        ]
        for name, value, low, high, exclusive in checks:
            if value == "auto":
                continue
            too_low = value <= low if exclusive else value < low
            if too_low or value > high:
                bound = f"> {low:g}" if exclusive else f">= {low:g}"
                upper = "" if high == float("inf") else f" and <= {high:g}"
                raise ValueError(f"{name} must be 'auto' or a number {bound}{upper}, not {value}")
        return self


class TrainingSpec(BaseModel):
    """Everything a backend needs to create one training job.

    ``grader`` is the OpenAI grader JSON (the project's lingua franca) for OpenAI RFT;
    ``reward_config`` is the same grader exported for Vertex
    (``{"single_reward_config": ...}`` or ``{"composite_reward_config": ...}``). The core
    exports both from the session's grader spec; each backend reads the one it understands.
    """

    model_config = ConfigDict(extra="forbid")

    method: TrainingMethod
    base_model: str = Field(min_length=1)
    training_file: Path
    validation_file: Path | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    grader: dict[str, Any] | None = None
    reward_config: dict[str, Any] | None = None
    idempotency_key: str
    display_name: str | None = Field(default=None, max_length=128)

    @field_validator("idempotency_key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if not _KEY_RE.match(value):
            raise ValueError(
                "idempotency_key must be 8-63 letters, digits, '-' or '_', starting with a "
                "letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _grader_for_rft(self) -> TrainingSpec:
        if self.method == "rft" and self.grader is None and self.reward_config is None:
            raise ValueError("reinforcement fine-tuning needs a grader")
        return self


class UploadedFiles(BaseModel):
    """The provider's handles on the uploaded files (OpenAI file ids, ``gs://`` URIs...)."""

    training: str
    validation: str | None = None


class JobStatus(BaseModel):
    """One snapshot of a job, normalized; ``raw_status`` is the provider's own word for it."""

    job_id: str
    provider: str
    state: JobState
    raw_status: str
    base_model: str | None = None
    fine_tuned_model: str | None = None
    endpoint: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    estimated_finish: datetime | None = None
    # What the provider reports about the data (Vertex's tuning_data_stats...), as given.
    details: dict[str, Any] = Field(default_factory=dict)
    # Things the user should know about this job on this backend (e.g. where Vertex keeps
    # the loss curves that its API does not return).
    notes: list[str] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the job will not change any more."""
        return self.state in FINISHED_JOB_STATES


class MetricPoint(BaseModel):
    """The metrics of one training step. ``raw`` keeps everything the provider sent.

    Accuracy is the mean token accuracy for SFT/DPO; reward is the grader's mean score for RFT.
    ``full_valid_*`` are computed on the whole validation set (OpenAI, at eval steps), the
    plain ``valid_*`` on a batch of it.
    """

    step: int
    total_steps: int | None = None
    train_loss: float | None = None
    valid_loss: float | None = None
    full_valid_loss: float | None = None
    train_accuracy: float | None = None
    valid_accuracy: float | None = None
    full_valid_accuracy: float | None = None
    train_reward: float | None = None
    valid_reward: float | None = None
    full_valid_reward: float | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class JobEvent(BaseModel):
    """One line of a job's event log; ``metrics`` is set when the event carries a step's
    metrics (those events also feed the charts)."""

    id: str
    message: str
    level: Literal["info", "warn", "error"] = "info"
    created_at: datetime | None = None
    metrics: MetricPoint | None = None


class CheckpointInfo(BaseModel):
    """A checkpoint the provider kept: ``name`` is what a chat call or a deployment uses
    (an OpenAI checkpoint model, a Vertex checkpoint endpoint, a local folder)."""

    id: str
    name: str | None = None
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: datetime | None = None


class DeployCheck(BaseModel):
    """The result of calling the tuned model once: proof that it answers."""

    model: str
    endpoint: str | None = None
    prompt: str
    reply: str
    input_tokens: int = 0
    output_tokens: int = 0


class PriceQuote(BaseModel):
    """The provider's own price for a job before it exists (Together's ``estimate-price``).

    ``allowed`` is False when the provider says it will not start the job (an account limit);
    a job is then never created.
    """

    usd: float | None
    allowed: bool = True
    summary: str


@runtime_checkable
class QuotingProvider(Protocol):
    """A training backend that prices a job before it is created (uploading is free)."""

    async def quote(self, spec: TrainingSpec) -> PriceQuote: ...


class TrainingCapabilities(BaseModel):
    """What a backend can do, so screens hide what it cannot (Vertex has no pause)."""

    methods: tuple[TrainingMethod, ...]
    pause: bool
    checkpoints: bool
    live_metrics: bool


@runtime_checkable
class TrainingProvider(Protocol):
    """A training backend. Every call may raise :class:`~ftwizard.providers.base.ProviderError`.

    ``events`` and ``metrics`` are incremental: pass back the cursor one returned to get only
    newer entries (``None`` the first time: everything so far), oldest first. The cursor is an
    opaque string the session may store (an event id, a byte offset...).
    """

    name: str
    capabilities: TrainingCapabilities

    async def upload(self, spec: TrainingSpec) -> UploadedFiles: ...

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str: ...

    async def find_job(self, idempotency_key: str) -> str | None: ...

    async def get_job(self, job_id: str) -> JobStatus: ...

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]: ...

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]: ...

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]: ...

    async def cancel(self, job_id: str) -> JobStatus: ...

    async def pause(self, job_id: str) -> JobStatus: ...

    async def resume(self, job_id: str) -> JobStatus: ...

    async def deploy_check(self, model: str, prompt: str = ...) -> DeployCheck: ...


class StartResult(BaseModel):
    """What :func:`start_or_reattach` did: the job id, and whether the job already existed."""

    job_id: str
    reattached: bool
    uploaded: UploadedFiles | None = None


async def start_or_reattach(
    provider: TrainingProvider, spec: TrainingSpec, uploaded: UploadedFiles | None = None
) -> StartResult:
    """Return the job for ``spec.idempotency_key``, creating it only if none exists.

    Call it after the key is saved in the session and save the returned id right after:
    whatever happens between the two, the next call with the same key re-attaches.
    ``uploaded`` skips the upload when the session already recorded the file ids.

    A key names one attempt: it re-attaches to that attempt's job even when the job failed or
    was cancelled, so training again after that needs a new key.
    """
    existing = await provider.find_job(spec.idempotency_key)
    if existing is not None:
        return StartResult(job_id=existing, reattached=True, uploaded=uploaded)
    files = uploaded if uploaded is not None else await provider.upload(spec)
    job_id = await provider.start_job(spec, files)
    return StartResult(job_id=job_id, reattached=False, uploaded=files)


def best_checkpoint(
    checkpoints: list[CheckpointInfo], metric: str | None = None
) -> CheckpointInfo | None:
    """The checkpoint with the best ``metric``: by default the lowest full validation loss,
    else validation loss, else the highest validation reward; ``None`` when none has it.

    The lesson practitioners keep relearning: the last checkpoint is not always the best.
    """
    candidates = (
        [metric]
        if metric is not None
        else [
            "full_valid_loss",
            "valid_loss",
            "eval_loss",
            "full_valid_mean_reward",
            "valid_reward_mean",
            "valid_reward",
        ]
    )
    for name in candidates:
        scored = [c for c in checkpoints if name in c.metrics]
        if scored:
            higher_is_better = "reward" in name or "accuracy" in name
            pick = max if higher_is_better else min
            return pick(scored, key=lambda c: c.metrics[name])
    return None


__all__ = [
    "FINISHED_JOB_STATES",
    "CheckpointInfo",
    "DeployCheck",
    "Hyperparameters",
    "JobEvent",
    "JobState",
    "JobStatus",
    "MetricPoint",
    "PriceQuote",
    "QuotingProvider",
    "StartResult",
    "TrainingCapabilities",
    "TrainingMethod",
    "TrainingProvider",
    "TrainingSpec",
    "UploadedFiles",
    "best_checkpoint",
    "start_or_reattach",
]
