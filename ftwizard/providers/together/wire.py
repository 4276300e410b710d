"""Together's fine-tuning wire format (``together-openapi-2026-04.yaml``) and its mapping onto
the provider-neutral shapes of :mod:`ftwizard.providers.training`.

Requests are built here from a :class:`TrainingSpec`; replies are read leniently (unknown
fields ignored, missing optional ones ``None``) so that a field Together adds later breaks
nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ftwizard.errors import InputError
from ftwizard.providers.training import (
    CheckpointInfo,
    JobEvent,
    JobState,
    JobStatus,
    MetricPoint,
    TrainingSpec,
    UploadedFiles,
)

# FinetuneJobStatus, mapped onto the neutral states. A cancel request is still running until
# Together reports it cancelled; compressing and uploading come after the last training step.
STATUS_MAP: dict[str, JobState] = {
    "pending": JobState.queued,
    "queued": JobState.queued,
    "running": JobState.running,
    "compressing": JobState.running,
    "uploading": JobState.running,
    "cancel_requested": JobState.running,
    "cancelled": JobState.cancelled,
    "error": JobState.failed,
    "completed": JobState.succeeded,
}

# The prefix of the ``suffix`` that carries ftwizard's idempotency key.
SUFFIX_PREFIX = "ftw-"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TogetherFile(_Lenient):
    """``FileResponse``: an uploaded file."""

    id: str
    filename: str = ""
    bytes: int = 0
    purpose: str = ""


class TogetherEvent(_Lenient):
    """``FineTuneEvent``: one line of a job's log."""

    created_at: str | None = None
    level: str | None = None
    message: str = ""
    type: str = ""
    step: int | None = None
    total_steps: int | None = None
    checkpoint_path: str | None = None
    model_path: str | None = None
    hash: str | None = None


class TogetherProgress(_Lenient):
    """``FineTuneProgress``: Together's own estimate of the time left."""

    estimate_available: bool = False
    seconds_remaining: int = 0


class TogetherJob(_Lenient):
    """``FinetuneResponse`` (and the truncated form ``GET /fine-tunes`` lists)."""

    id: str
    status: str
    model: str | None = None
    model_output_name: str | None = None
    suffix: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    token_count: int | None = None
    total_price: float | None = None
    epochs_completed: int | None = None
    n_epochs: int | None = None
    training_file: str | None = None
    validation_file: str | None = None
    events: list[TogetherEvent] = Field(default_factory=list)
    progress: TogetherProgress | None = None


class PriceEstimate(BaseModel):
    """The reply of ``POST /fine-tunes/estimate-price``: what the job would cost, and whether
    Together lets the account start it (``allowed_to_proceed`` is False over the user limit)."""

    model_config = ConfigDict(extra="ignore")

    estimated_total_price: float | None = None
    allowed_to_proceed: bool = True
    user_limit: float | None = None
    estimated_train_token_count: float | None = None
    estimated_eval_token_count: float | None = None

    def summary(self) -> str:
        """One line for the confirmation screen and the CLI."""
        price = (
            "unknown"
            if self.estimated_total_price is None
            else f"${self.estimated_total_price:,.2f}"
        )
        tokens = ""
        if self.estimated_train_token_count is not None:
            tokens = f" for {int(self.estimated_train_token_count):,} training tokens"
            if self.estimated_eval_token_count:
                tokens += f" + {int(self.estimated_eval_token_count):,} evaluation tokens"
        text = f"Together's estimate: {price}{tokens}"
        if not self.allowed_to_proceed:
            limit = "" if self.user_limit is None else f" (limit ${self.user_limit:,.2f})"
            text += f"; Together will not start it: over your account's limit{limit}"
        return text


def key_suffix(idempotency_key: str) -> str:
    """The ``suffix`` a job gets for ``idempotency_key``: short and made of the characters a
    model name allows, so it fits whatever limit Together puts on suffixes."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
    return f"{SUFFIX_PREFIX}{digest}"


def check_spec(spec: TrainingSpec) -> None:
    """Refuse what Together's fine-tuning cannot do before anything is uploaded."""
    if spec.method == "rft":
        raise InputError(
            "Together fine-tuning offers SFT and DPO, not RFT; choose Fireworks, Vertex or "
            "local for reinforcement fine-tuning",
            field="task.method",
        )
    hp = spec.hyperparameters
    if hp.training_type == "full" and any(
        getattr(hp, name) != "auto" for name in ("lora_r", "lora_alpha", "lora_dropout")
    ):
        raise InputError("LoRA settings do not apply to full fine-tuning", field="training_type")


def _training_method(spec: TrainingSpec) -> dict[str, Any]:
    if spec.method == "dpo":
        method: dict[str, Any] = {"method": "dpo"}
        if spec.hyperparameters.beta != "auto":
            method["dpo_beta"] = spec.hyperparameters.beta
        return method
    # Chat data: the loss is on the assistant turns only, which is what Together's "auto"
    # does for conversations (the spec's schema types the field boolean).
    return {"method": "sft", "train_on_inputs": False}


def _training_type(spec: TrainingSpec) -> dict[str, Any]:
    hp = spec.hyperparameters
    if hp.training_type == "full":
        return {"type": "Full"}
    # lora_r and lora_alpha are required by LoRATrainingType; 8 and 16 are Together's defaults
    # in its SDK and CLI.
    rank = 8 if hp.lora_r == "auto" else hp.lora_r
    alpha = rank * 2 if hp.lora_alpha == "auto" else hp.lora_alpha
    lora: dict[str, Any] = {
        "type": "Lora",
        "lora_r": rank,
        "lora_alpha": alpha,
        "lora_trainable_modules": hp.lora_trainable_modules,
    }
    if hp.lora_dropout != "auto":
        lora["lora_dropout"] = hp.lora_dropout
    return lora


def _common(spec: TrainingSpec, uploaded: UploadedFiles) -> dict[str, Any]:
    hp = spec.hyperparameters
    body: dict[str, Any] = {
        "training_file": uploaded.training,
        "model": spec.base_model,
        "training_method": _training_method(spec),
        "training_type": _training_type(spec),
    }
    if uploaded.validation is not None:
        body["validation_file"] = uploaded.validation
    if hp.n_epochs != "auto":
        body["n_epochs"] = hp.n_epochs
    if hp.n_evals != "auto":
        body["n_evals"] = hp.n_evals
    elif uploaded.validation is not None:
        # Together evaluates only when n_evals > 0 (its default is 0): a validation file the
        # user gave should produce a validation curve.
        body["n_evals"] = 1 if hp.n_epochs == "auto" else max(1, int(hp.n_epochs))
    return body


def build_create_body(spec: TrainingSpec, uploaded: UploadedFiles) -> dict[str, Any]:
    """The body of ``POST /fine-tunes`` for ``spec``; "auto" settings are left to Together."""
    check_spec(spec)
    hp = spec.hyperparameters
    body = _common(spec, uploaded)
    body["suffix"] = key_suffix(spec.idempotency_key)
    if hp.n_checkpoints != "auto":
        body["n_checkpoints"] = hp.n_checkpoints
    body["batch_size"] = "max" if hp.batch_size == "auto" else hp.batch_size
    if hp.learning_rate != "auto":
        body["learning_rate"] = hp.learning_rate
    return body


def build_estimate_body(spec: TrainingSpec, uploaded: UploadedFiles) -> dict[str, Any]:
    """The body of ``POST /fine-tunes/estimate-price`` for the job ``spec`` would create."""
    check_spec(spec)
    return _common(spec, uploaded)


def _level(raw: str | None) -> Literal["info", "warn", "error"]:
    if raw in ("warning", "legacy_iwarning"):
        return "warn"
    if raw == "error":
        return "error"
    return "info"


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def to_job_status(job: TogetherJob, provider: str) -> JobStatus:
    """The neutral snapshot of a Together job."""
    state = STATUS_MAP.get(job.status, JobState.running)
    error = None
    if state is JobState.failed:
        errors = [e.message for e in job.events if e.type == "job_error" or e.level == "error"]
        error = errors[-1] if errors else "Together reports the job failed"
    finished = job.updated_at if state in (JobState.succeeded, JobState.failed) else None
    if state is JobState.cancelled:
        finished = job.updated_at
    details: dict[str, Any] = {}
    if job.total_price is not None:
        details["total_price"] = job.total_price
    if job.epochs_completed is not None:
        details["epochs_completed"] = job.epochs_completed
    estimated_finish = None
    if job.progress is not None and job.progress.estimate_available and job.updated_at:
        from datetime import timedelta

        estimated_finish = job.updated_at + timedelta(seconds=job.progress.seconds_remaining)
    return JobStatus(
        job_id=job.id,
        provider=provider,
        state=state,
        raw_status=job.status,
        base_model=job.model,
        fine_tuned_model=job.model_output_name if state is JobState.succeeded else None,
        trained_tokens=job.token_count,
        error=error,
        created_at=job.created_at,
        finished_at=finished,
        estimated_finish=estimated_finish,
        details=details,
    )


def to_job_event(event: TogetherEvent, index: int) -> JobEvent:
    """One neutral event; Together's events carry no id, so the position in the log is it."""
    return JobEvent(
        id=event.hash or str(index),
        message=event.message or event.type,
        level=_level(event.level),
        created_at=_parse_time(event.created_at),
    )


def to_metric_point(row: dict[str, Any], total_steps: int | None) -> MetricPoint | None:
    """A chart point from one ``/metrics`` row (``train/loss``, ``train/global_step``...)."""
    step = row.get("train/global_step")
    if step is None:
        return None
    valid = row.get("eval/loss", row.get("valid/loss"))
    return MetricPoint(
        step=int(step),
        total_steps=total_steps,
        train_loss=row.get("train/loss"),
        valid_loss=valid,
        raw=dict(row),
    )


def to_checkpoint(row: dict[str, Any], job: TogetherJob) -> CheckpointInfo:
    """A neutral checkpoint. Only the final model is served by name; an intermediate one is
    reachable as ``from_checkpoint`` of a new job (``JOB_ID:STEP``)."""
    step = int(row.get("step", 0))
    kind = str(row.get("checkpoint_type", ""))
    final = "final" in kind.lower()
    return CheckpointInfo(
        id=f"{job.id}:{step}",
        name=job.model_output_name if final else None,
        step=step,
        created_at=_parse_time(row.get("created_at")),
    )


__all__ = [
    "STATUS_MAP",
    "PriceEstimate",
    "TogetherEvent",
    "TogetherFile",
    "TogetherJob",
    "build_create_body",
    "build_estimate_body",
    "check_spec",
    "key_suffix",
    "to_checkpoint",
    "to_job_event",
    "to_job_status",
    "to_metric_point",
]
