"""Fireworks' fine-tuning resources as JSON, and their translation to ftwizard's shapes.

Written from the Gateway REST API reference (v4.259.0, docs.fireworks.ai/api-reference):

- ``supervisedFineTuningJobs`` take their settings at the top level (``baseModel``,
  ``outputModel``, ``epochs``, ``learningRate``, ``loraRank``, ``batchSize``,
  ``evaluationDataset``); ``dpoJobs`` and ``reinforcementFineTuningJobs`` nest them in
  ``trainingConfig``; DPO adds ``lossConfig{method, klBeta}``, RFT ``evaluator`` and
  ``inferenceParameters``;
- every job has ``state`` (a ``JOB_STATE_*`` value), ``status{code, message}``, ``createTime``,
  ``completedTime`` and, for SFT, ``jobProgress{percent, epoch, ...}``;
- ids are chosen by the client (``?supervisedFineTuningJobId=...``): ftwizard derives them from
  the session's idempotency key, so finding a job again is one GET by name.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ftwizard.providers.training import (
    JobEvent,
    JobState,
    JobStatus,
    MetricPoint,
    TrainingMethod,
    TrainingSpec,
    UploadedFiles,
)

# Collection name and the query parameter that carries the client-chosen id, per method.
COLLECTIONS: dict[TrainingMethod, tuple[str, str]] = {
    "sft": ("supervisedFineTuningJobs", "supervisedFineTuningJobId"),
    "dpo": ("dpoJobs", "dpoJobId"),
    "rft": ("reinforcementFineTuningJobs", "reinforcementFineTuningJobId"),
}

# gatewayJobState, mapped onto JobState. CANCELLING is still running: it ends as CANCELLED.
STATE_MAP: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.queued,
    "JOB_STATE_CREATING": JobState.queued,
    "JOB_STATE_VALIDATING": JobState.queued,
    "JOB_STATE_PENDING": JobState.queued,
    "JOB_STATE_RE_QUEUEING": JobState.queued,
    "JOB_STATE_CREATING_INPUT_DATASET": JobState.queued,
    "JOB_STATE_IDLE": JobState.queued,
    "JOB_STATE_RUNNING": JobState.running,
    "JOB_STATE_WRITING_RESULTS": JobState.running,
    "JOB_STATE_CANCELLING": JobState.running,
    "JOB_STATE_PAUSED": JobState.paused,
    "JOB_STATE_COMPLETED": JobState.succeeded,
    "JOB_STATE_EARLY_STOPPED": JobState.succeeded,
    "JOB_STATE_FAILED": JobState.failed,
    "JOB_STATE_EXPIRED": JobState.failed,
    "JOB_STATE_CANCELLED": JobState.cancelled,
    "JOB_STATE_DELETING": JobState.cancelled,
    "JOB_STATE_DELETING_CLEANING_UP": JobState.cancelled,
    "JOB_STATE_DELETED": JobState.cancelled,
}

_ID_MAX = 63  # Fireworks resource ids: lower-case letters, digits and '-', at most 63


def resource_id(text: str, *, max_len: int = _ID_MAX) -> str:
    """``text`` as a Fireworks resource id (lower-case, '-' for anything else, <= max_len)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:max_len].rstrip("-") or "ftwizard"


def job_id_for(key: str) -> str:
    """The job id ftwizard gives the job of idempotency key ``key``."""
    return resource_id(key)


def evaluator_id_for(key: str) -> str:
    """The id of the evaluator ftwizard makes from the grader of key ``key``'s job."""
    return resource_id(f"{key}-eval")


def dataset_id_for(key: str, role: str) -> str:
    """The dataset id of ``role`` ("train" or "validation") for ``key``: ``<key>-train``."""
    suffix = "-t" if role == "train" else "-v"
    return resource_id(key, max_len=_ID_MAX - len(suffix)) + suffix


def method_of(name: str) -> TrainingMethod:
    """The method of a job resource name (``accounts/A/dpoJobs/ID`` -> ``"dpo"``)."""
    for method, (collection, _) in COLLECTIONS.items():
        if f"/{collection}/" in name:
            return method
    raise ValueError(f"'{name}' is not a Fireworks fine-tuning job name")


def model_name(account: str, model: str) -> str:
    """A model as a resource name: ``qwen3-8b`` -> ``accounts/fireworks/models/qwen3-8b``;
    ``accounts/...`` stays as it is; ``ft-x`` under the user's own account when asked."""
    if model.startswith("accounts/"):
        return model
    return f"accounts/{account}/models/{model}"


def _set(body: dict[str, Any], name: str, value: Any) -> None:
    if value is not None and value != "auto":
        body[name] = value


def build_job_body(
    spec: TrainingSpec,
    uploaded: UploadedFiles,
    *,
    account: str,
    evaluator: str | None = None,
) -> dict[str, Any]:
    """The create body for ``spec`` (SFT flat, DPO/RFT under ``trainingConfig``)."""
    hp = spec.hyperparameters
    base = (
        spec.base_model
        if spec.base_model.startswith("accounts/")
        else (f"accounts/fireworks/models/{spec.base_model}")
    )
    config: dict[str, Any] = {
        "baseModel": base,
        "outputModel": model_name(account, job_id_for(spec.idempotency_key)),
    }
    _set(config, "epochs", hp.n_epochs)
    # Fireworks' batchSize counts tokens; ftwizard's batch_size counts examples, which is
    # batchSizeSamples.
    _set(config, "batchSizeSamples", hp.batch_size)
    _set(config, "learningRate", hp.learning_rate)
    _set(config, "loraRank", hp.lora_r)
    body: dict[str, Any] = {"dataset": uploaded.training}
    if spec.display_name:
        body["displayName"] = spec.display_name
    if spec.method == "sft":
        body.update(config)
        if uploaded.validation:
            body["evaluationDataset"] = uploaded.validation
        return body
    body["trainingConfig"] = config
    if spec.method == "dpo":
        loss: dict[str, Any] = {"method": "DPO"}
        _set(loss, "klBeta", hp.beta)
        body["lossConfig"] = loss
        return body
    if evaluator is None:
        raise ValueError("a reinforcement fine-tuning job needs an evaluator")
    body["evaluator"] = evaluator
    if uploaded.validation:
        body["evaluationDataset"] = uploaded.validation
    return body


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _config(job: dict[str, Any]) -> dict[str, Any]:
    nested = job.get("trainingConfig")
    return nested if isinstance(nested, dict) else job


def to_job_status(job: dict[str, Any]) -> JobStatus:
    """A :class:`JobStatus` from a job resource."""
    raw = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    state = STATE_MAP.get(raw, JobState.queued)
    status = job.get("status") if isinstance(job.get("status"), dict) else {}
    message = str(status.get("message") or "") or None
    config = _config(job)
    progress = job.get("jobProgress") if isinstance(job.get("jobProgress"), dict) else {}
    tokens = progress.get("inputTokens") if progress else None
    return JobStatus(
        job_id=str(job.get("name") or ""),
        provider="fireworks",
        state=state,
        raw_status=raw,
        base_model=config.get("baseModel") or config.get("warmStartFrom"),
        fine_tuned_model=config.get("outputModel") if state is JobState.succeeded else None,
        trained_tokens=int(tokens) if isinstance(tokens, int | float) else None,
        error=message if state is JobState.failed else None,
        created_at=_time(job.get("createTime")),
        finished_at=_time(job.get("completedTime")),
        details={"jobProgress": progress} if progress else {},
        notes=[
            "Fireworks reports progress (percent, epoch) through its API; the loss curves are "
            "in the job's metrics file and in Weights & Biases when wandbConfig is set"
        ],
    )


def job_events(job: dict[str, Any]) -> list[JobEvent]:
    """The job's milestones (created, its current state, completed), oldest first.

    Fireworks has no event log for fine-tuning jobs; these are what the job itself says, with
    stable ids so a cursor taken earlier still finds its place.
    """
    events = [
        JobEvent(id="created", message="job created", created_at=_time(job.get("createTime")))
    ]
    raw = str(job.get("state") or "JOB_STATE_UNSPECIFIED")
    state = STATE_MAP.get(raw, JobState.queued)
    if raw not in ("JOB_STATE_UNSPECIFIED", "JOB_STATE_CREATING"):
        events.append(JobEvent(id=f"state-{raw}", message=f"state: {raw}"))
    if state in (JobState.succeeded, JobState.failed, JobState.cancelled):
        message = (job.get("status") or {}).get("message") or raw
        level = "error" if state is JobState.failed else "info"
        events.append(
            JobEvent(
                id="completed",
                message=f"job ended: {message}",
                level=level,
                created_at=_time(job.get("completedTime")),
            )
        )
    return events


def progress_point(job: dict[str, Any]) -> MetricPoint | None:
    """The job's ``jobProgress`` as a point on a 0-100 axis (``None`` when it has none)."""
    progress = job.get("jobProgress")
    if not isinstance(progress, dict) or progress.get("percent") is None:
        return None
    return MetricPoint(step=int(progress["percent"]), total_steps=100, raw=dict(progress))


__all__ = [
    "COLLECTIONS",
    "STATE_MAP",
    "build_job_body",
    "dataset_id_for",
    "evaluator_id_for",
    "job_events",
    "job_id_for",
    "method_of",
    "model_name",
    "progress_point",
    "resource_id",
    "to_job_status",
]
