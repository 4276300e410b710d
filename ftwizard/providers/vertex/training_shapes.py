"""Vertex AI tuning: ftwizard's :class:`TrainingSpec` as google-genai tuning config, and
google-genai ``TuningJob`` objects as ftwizard's :class:`JobStatus`, events and checkpoints.

No SDK import here: the config is a plain dict (google-genai validates it), and jobs are read
with ``getattr`` so missing fields never crash a poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.training import (
    CheckpointInfo,
    JobEvent,
    JobState,
    JobStatus,
    TrainingSpec,
    UploadedFiles,
)

# The label that carries the idempotency key. Vertex labels allow lowercase letters, digits,
# '-' and '_' (63 characters), so the key is lower-cased.
KEY_LABEL = "ftwizard-key"

_METHODS = {
    "sft": "SUPERVISED_FINE_TUNING",
    "dpo": "PREFERENCE_TUNING",
    "rft": "REINFORCEMENT_TUNING",
}
_ADAPTER_SIZES = {
    1: "ADAPTER_SIZE_ONE",
    4: "ADAPTER_SIZE_FOUR",
    8: "ADAPTER_SIZE_EIGHT",
    16: "ADAPTER_SIZE_SIXTEEN",
    32: "ADAPTER_SIZE_THIRTY_TWO",
}
# JobState (aiplatform job_state.proto / google-genai JobState) -> ftwizard's state.
_STATES: dict[str, JobState] = {
    "JOB_STATE_UNSPECIFIED": JobState.queued,
    "JOB_STATE_QUEUED": JobState.queued,
    "JOB_STATE_PENDING": JobState.queued,
    "JOB_STATE_RUNNING": JobState.running,
    "JOB_STATE_UPDATING": JobState.running,
    # Cancelling is not over yet: the job may still end as succeeded or failed.
    "JOB_STATE_CANCELLING": JobState.running,
    "JOB_STATE_PAUSED": JobState.paused,
    "JOB_STATE_SUCCEEDED": JobState.succeeded,
    "JOB_STATE_PARTIALLY_SUCCEEDED": JobState.succeeded,
    "JOB_STATE_FAILED": JobState.failed,
    "JOB_STATE_EXPIRED": JobState.failed,
    "JOB_STATE_CANCELLED": JobState.cancelled,
}

# Vertex writes the curves to the TensorBoard of the experiment the job names; a job that names
# none (yet) has no curves to read, and ftwizard shows none rather than estimating any.
METRICS_NOTE = (
    "This tuning job names no Vertex AI experiment (yet), so there are no loss curves to "
    "show; Vertex writes them to the experiment's TensorBoard once it creates one"
)


def key_label(key: str) -> str:
    """The label value for an idempotency key."""
    return key.lower()


def state_name(state: Any) -> str:
    """The ``JOB_STATE_*`` name of a google-genai state (enum or string)."""
    if state is None:
        return "JOB_STATE_UNSPECIFIED"
    return str(getattr(state, "value", state))


def check_uris(uploaded: UploadedFiles) -> None:
    """Vertex reads training data from Cloud Storage only."""
    for role, uri in (("training", uploaded.training), ("validation", uploaded.validation)):
        if uri is not None and not uri.startswith("gs://"):
            raise InputError(
                f"Vertex AI reads the {role} file from Cloud Storage; '{uri}' is not a gs:// URI",
                field=f"{role}_file",
            )


def build_tuning_config(spec: TrainingSpec, uploaded: UploadedFiles) -> dict[str, Any]:
    """The ``CreateTuningJobConfig`` fields (snake_case) for ``spec`` (exposed for tests).

    ``auto`` hyperparameters are left out (Vertex picks them); settings that Vertex has no
    counterpart for (OpenAI's compute multiplier, reasoning effort) are not sent.
    """
    check_uris(uploaded)
    hp = spec.hyperparameters
    config: dict[str, Any] = {
        "method": _METHODS[spec.method],
        "labels": {KEY_LABEL: key_label(spec.idempotency_key)},
        "tuned_model_display_name": spec.display_name
        or f"ftwizard-{spec.suffix or spec.idempotency_key}"[:128],
    }
    if uploaded.validation is not None:
        config["validation_dataset"] = {"gcs_uri": uploaded.validation}
    if hp.n_epochs != "auto":
        config["epoch_count"] = hp.n_epochs
    if hp.learning_rate_multiplier != "auto":
        config["learning_rate_multiplier"] = hp.learning_rate_multiplier
    if hp.adapter_size is not None:
        config["adapter_size"] = _ADAPTER_SIZES[hp.adapter_size]
    if spec.method == "dpo" and hp.beta != "auto":
        config["beta"] = hp.beta
    if spec.method == "rft":
        reward = spec.reward_config or {}
        if "single_reward_config" in reward:
            config["reward_config"] = reward["single_reward_config"]
        elif "composite_reward_config" in reward:
            config["composite_reward_config"] = reward["composite_reward_config"]
        else:
            raise InputError(
                "Vertex reinforcement tuning needs the grader exported as a Vertex reward "
                "config ({'single_reward_config': ...} or {'composite_reward_config': ...})",
                field="reward_config",
            )
        if hp.batch_size != "auto":
            config["batch_size"] = hp.batch_size
        if hp.eval_interval != "auto":
            config["evaluate_interval"] = hp.eval_interval
    return config


def job_key(job: Any) -> str | None:
    """The idempotency key label of a tuning job, if it has one."""
    labels = getattr(job, "labels", None) or {}
    return labels.get(KEY_LABEL)


def _dump(value: Any) -> Any:
    if value is None:
        return None
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", exclude_none=True) if dump is not None else value


def to_job_status(job: Any, provider: str = "vertex") -> JobStatus:
    """A :class:`JobStatus` from a google-genai ``TuningJob``."""
    raw = state_name(getattr(job, "state", None))
    tuned = getattr(job, "tuned_model", None)
    error = getattr(job, "error", None)
    message = None
    if error is not None:
        message = getattr(error, "message", None) or (
            error.get("message") if isinstance(error, dict) else None
        )
    details: dict[str, Any] = {}
    stats = _dump(getattr(job, "tuning_data_stats", None))
    if stats:
        details["tuning_data_stats"] = stats
    experiment = getattr(job, "experiment", None)
    if experiment:
        details["experiment"] = experiment
    return JobStatus(
        job_id=str(job.name),
        provider=provider,
        state=_STATES.get(raw, JobState.running),
        raw_status=raw,
        base_model=getattr(job, "base_model", None),
        fine_tuned_model=getattr(tuned, "model", None) if tuned is not None else None,
        endpoint=getattr(tuned, "endpoint", None) if tuned is not None else None,
        error=message,
        created_at=getattr(job, "create_time", None),
        finished_at=getattr(job, "end_time", None),
        details=details,
        notes=[] if experiment else [METRICS_NOTE],
    )


def total_steps(job: Any) -> int | None:
    """The number of tuning steps Vertex computed for the job, when it reports one."""
    stats = getattr(job, "tuning_data_stats", None)
    supervised = getattr(stats, "supervised_tuning_data_stats", None) if stats else None
    steps = getattr(supervised, "tuning_step_count", None) if supervised else None
    return int(steps) if isinstance(steps, int | str) and str(steps).isdigit() else None


def to_checkpoints(job: Any) -> list[CheckpointInfo]:
    """The checkpoints of a tuned model (each is deployed on its own endpoint)."""
    tuned = getattr(job, "tuned_model", None)
    found = [
        CheckpointInfo(
            id=str(c.checkpoint_id),
            name=c.endpoint,
            step=c.step,
            epoch=float(c.epoch) if c.epoch is not None else None,
        )
        for c in (getattr(tuned, "checkpoints", None) or [])
        if c.checkpoint_id is not None
    ]
    return sorted(found, key=lambda c: (c.step is None, c.step or 0))


def job_events(job: Any) -> list[JobEvent]:
    """The job's life so far, from its own timestamps (Vertex has no event log), oldest first.

    Event ids are stable ("created", "started", "ended"), so they work as cursors.
    """
    events: list[JobEvent] = []
    created: datetime | None = getattr(job, "create_time", None)
    started: datetime | None = getattr(job, "start_time", None)
    ended: datetime | None = getattr(job, "end_time", None)
    if created is not None:
        events.append(JobEvent(id="created", message="Tuning job created", created_at=created))
    if started is not None:
        events.append(JobEvent(id="started", message="Tuning started", created_at=started))
    if ended is not None:
        status = to_job_status(job)
        level = {JobState.succeeded: "info", JobState.cancelled: "warn"}.get(status.state, "error")
        text = f"Tuning ended: {status.raw_status}"
        if status.error:
            text += f" ({status.error})"
        events.append(JobEvent(id="ended", message=text, level=level, created_at=ended))
    return events


__all__ = [
    "KEY_LABEL",
    "METRICS_NOTE",
    "build_tuning_config",
    "check_uris",
    "job_events",
    "job_key",
    "key_label",
    "state_name",
    "to_checkpoints",
    "to_job_status",
    "total_steps",
]
