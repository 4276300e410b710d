"""OpenAI fine-tuning objects (jobs, events, checkpoints) turned into ftwizard's neutral shapes.

The functions take the SDK's response models but read them with ``getattr`` and tolerate
missing fields: the API sends undeclared fields and states (``paused`` is not in the spec's
status enum, see research notes section 7) and OpenAI-compatible servers send less.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ftwizard.providers.training import CheckpointInfo, JobEvent, JobState, JobStatus, MetricPoint

# OpenAI's statuses; "paused" comes back from /pause although the spec's enum lacks it.
_STATES: dict[str, JobState] = {
    "validating_files": JobState.queued,
    "queued": JobState.queued,
    "running": JobState.running,
    "paused": JobState.paused,
    "succeeded": JobState.succeeded,
    "failed": JobState.failed,
    "cancelled": JobState.cancelled,
}

# Metric event and checkpoint keys -> MetricPoint fields (SFT/DPO, then RFT).
_METRIC_FIELDS: dict[str, str] = {
    "train_loss": "train_loss",
    "valid_loss": "valid_loss",
    "full_valid_loss": "full_valid_loss",
    "train_mean_token_accuracy": "train_accuracy",
    "valid_mean_token_accuracy": "valid_accuracy",
    "full_valid_mean_token_accuracy": "full_valid_accuracy",
    "train_mean_reward": "train_reward",
    "valid_mean_reward": "valid_reward",
    "full_valid_mean_reward": "full_valid_reward",
}


def timestamp(value: Any) -> datetime | None:
    """A UTC datetime from OpenAI's unix seconds; ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def job_state(raw_status: str) -> JobState:
    """The neutral state for an OpenAI status; an unknown one counts as still running."""
    return _STATES.get(raw_status, JobState.running)


def to_job_status(job: Any, provider: str = "openai") -> JobStatus:
    """A :class:`JobStatus` from a ``FineTuningJob``."""
    raw = str(getattr(job, "status", None) or "unknown")
    error = getattr(job, "error", None)
    message = None
    if error is not None:
        message = getattr(error, "message", None) or None
        code = getattr(error, "code", None)
        if message and code:
            message = f"{message} ({code})"
    return JobStatus(
        job_id=str(job.id),
        provider=provider,
        state=job_state(raw),
        raw_status=raw,
        base_model=getattr(job, "model", None),
        fine_tuned_model=getattr(job, "fine_tuned_model", None),
        trained_tokens=getattr(job, "trained_tokens", None),
        error=message,
        created_at=timestamp(getattr(job, "created_at", None)),
        finished_at=timestamp(getattr(job, "finished_at", None)),
        estimated_finish=timestamp(getattr(job, "estimated_finish", None)),
    )


def metric_point(data: dict[str, Any], created_at: datetime | None = None) -> MetricPoint | None:
    """A :class:`MetricPoint` from a metrics event's ``data``; ``None`` without a step."""
    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int):
        return None
    fields: dict[str, Any] = {}
    for key, name in _METRIC_FIELDS.items():
        value = _number(data.get(key))
        if value is not None:
            fields[name] = value
    # RFT events also carry the rewards under "scores"; the top-level keys win.
    scores = data.get("scores")
    if isinstance(scores, dict):
        for key, name in (
            ("train_reward_mean", "train_reward"),
            ("valid_reward_mean", "valid_reward"),
        ):
            value = _number(scores.get(key))
            if value is not None:
                fields.setdefault(name, value)
    total = data.get("total_steps")
    return MetricPoint(
        step=step,
        total_steps=total if isinstance(total, int) and not isinstance(total, bool) else None,
        created_at=created_at,
        raw=dict(data),
        **fields,
    )


def to_job_event(event: Any) -> JobEvent:
    """A :class:`JobEvent` from a ``FineTuningJobEvent`` (metrics parsed when it has them)."""
    created = timestamp(getattr(event, "created_at", None))
    data = getattr(event, "data", None)
    point = None
    if getattr(event, "type", None) == "metrics" and isinstance(data, dict):
        point = metric_point(data, created)
    level = getattr(event, "level", None)
    return JobEvent(
        id=str(event.id),
        message=str(getattr(event, "message", "") or ""),
        level=level if level in ("info", "warn", "error") else "info",
        created_at=created,
        metrics=point,
    )


def to_checkpoint(checkpoint: Any) -> CheckpointInfo:
    """A :class:`CheckpointInfo` from a ``FineTuningJobCheckpoint``."""
    raw_metrics = getattr(checkpoint, "metrics", None)
    if raw_metrics is not None and not isinstance(raw_metrics, dict):
        raw_metrics = raw_metrics.model_dump()
    metrics = {
        k: v
        for k, v in ((k, _number(v)) for k, v in (raw_metrics or {}).items())
        if v is not None and k != "step"
    }
    return CheckpointInfo(
        id=str(checkpoint.id),
        name=getattr(checkpoint, "fine_tuned_model_checkpoint", None),
        step=getattr(checkpoint, "step_number", None),
        metrics=metrics,
        created_at=timestamp(getattr(checkpoint, "created_at", None)),
    )


__all__ = [
    "job_state",
    "metric_point",
    "timestamp",
    "to_checkpoint",
    "to_job_event",
    "to_job_status",
]
