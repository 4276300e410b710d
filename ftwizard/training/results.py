"""What training produced: metrics, checkpoints (:func:`best_checkpoint_of`,
:func:`choose_checkpoint`), the final model and the step's summary.
"""

from __future__ import annotations

from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.training import (
    CheckpointInfo,
    JobState,
    MetricPoint,
)
from ftwizard.session import Backend, Session
from ftwizard.training.choice import best_checkpoint_of, best_choice, choice_note, training_advice
from ftwizard.training.follow import (
    apply_update,
    cancel_job,
    fetch_update,
    follow,
    job_id_of,
    pause_job,
    poll,
    resume_job,
)
from ftwizard.training.jobs import (
    build_local_config,
    build_spec,
    create_or_find_job,
    find_existing_job,
    new_attempt,
    prepare_attempt,
    record_job,
    start_or_attach,
    training_provider,
)
from ftwizard.training.plan import (
    _FINISHED,
    EDITABLE,
    LESSON,
    JobUpdate,
    SpendNotAllowed,
    TrainingBlocked,
    TrainingEstimate,
    TrainingPlan,
    confirm_training,
    current_hyperparameters,
    default_hyperparameters,
    estimate_training,
    plan_training,
    record_dryrun_override,
    set_hyperparameter,
    training_blocker,
)

# -- results ---------------------------------------------------------------------------------


def metric_points(session: Session) -> list[MetricPoint]:
    """The recorded metric points."""
    return [MetricPoint.model_validate(m) for m in session.training.metrics]


def checkpoints_of(session: Session) -> list[CheckpointInfo]:
    """The recorded checkpoints."""
    return [CheckpointInfo.model_validate(c) for c in session.training.checkpoints]


def choose_checkpoint(session: Session, checkpoint_id: str) -> CheckpointInfo:
    """Make checkpoint ``checkpoint_id`` the model to deploy."""
    for checkpoint in checkpoints_of(session):
        if checkpoint.id == checkpoint_id:
            if not checkpoint.name:
                raise InputError(
                    "this checkpoint has no callable model", field="training.checkpoints"
                )
            session.training.chosen_checkpoint = checkpoint.name
            session.training.chosen_by = "hand"
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
    best = best_choice(session)
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
        "best_checkpoint": best.checkpoint.id if best else None,
        "best_by": best.by if best else None,
        "best_value": best.value if best else None,
        "chosen_by": section.chosen_by,
        "choice_note": choice_note(session),
        "advice": training_advice(session),
        "checkpoints": len(section.checkpoints),
        "scored_checkpoints": sum(
            1
            for s in (section.checkpoint_eval.scores if section.checkpoint_eval else [])
            if s.score is not None
        ),
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
