"""Choosing a checkpoint by evidence, and what the checkpoints say about the run.

"Best" is the highest grader score when the checkpoints were scored (ties go to the earlier
step: the same score for less training), and the validation metric only when they were not;
every answer says which it used. :func:`choice_note` says when the model in use is not the
best, :func:`training_advice` when the curves say more epochs may help or an earlier
checkpoint is better.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftwizard.errors import InputError
from ftwizard.providers.training import CheckpointInfo, best_checkpoint
from ftwizard.session import CheckpointScore, Session

GRADER_SCORE = "grader score"
# A last checkpoint this far above the mean of the earlier ones is "well above" them.
RISING_MARGIN = 0.05
# A drop from the best this large (on a 0-1 score) makes an early best worth choosing.
FALLING_MARGIN = 0.02
# A grader's top score: a last checkpoint there needs no more epochs.
PERFECT = 1.0
# Validation loss still falling by this share over the last two points: not converged.
LOSS_FALLING_SHARE = 0.02


@dataclass(frozen=True)
class Choice:
    """A checkpoint and the evidence it was picked by (``by``: "grader score" or a metric)."""

    checkpoint: CheckpointInfo
    by: str
    value: float


def scored(session: Session) -> list[CheckpointScore]:
    """The checkpoints that have a grader score, in step order."""
    section = session.training.checkpoint_eval
    if section is None:
        return []
    return sorted(
        (s for s in section.scores if s.score is not None), key=lambda s: (s.step or 0, s.id)
    )


def _checkpoints(session: Session) -> list[CheckpointInfo]:
    return [CheckpointInfo.model_validate(c) for c in session.training.checkpoints]


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


def best_checkpoint_of(session: Session) -> tuple[CheckpointInfo, str] | None:
    """The best recorded checkpoint by validation metric and that metric (validation loss
    first, else validation reward), or ``None`` when no checkpoint has a validation figure.
    :func:`ftwizard.training.choice.best_choice` prefers grader scores when there are any."""
    checkpoints = _checkpoints(session)
    for metric in _BEST_METRICS:
        pick = best_checkpoint(checkpoints, metric=metric)
        if pick is not None:
            return pick, metric
    return None


def best_choice(session: Session) -> Choice | None:
    """The best checkpoint by grader score (ties: the earlier step), else by validation
    metric; ``None`` when there is no evidence either way."""
    by_id = {c.id: c for c in _checkpoints(session)}
    ranked = [s for s in scored(session) if s.id in by_id and by_id[s.id].name]
    if ranked:
        top = max(ranked, key=lambda s: (s.score or 0.0, -(s.step or 0)))
        return Choice(by_id[top.id], GRADER_SCORE, float(top.score or 0.0))
    pick = best_checkpoint_of(session)
    if pick is None:
        return None
    checkpoint, metric = pick
    return Choice(checkpoint, metric, float(checkpoint.metrics.get(metric, 0.0)))


def choose_best(session: Session) -> Choice:
    """Make the best checkpoint the model to deploy; :class:`InputError` when there is no
    evidence to choose by."""
    best = best_choice(session)
    if best is None:
        raise InputError(
            "no checkpoint has a grader score or a validation figure to compare",
            field="training.checkpoints",
        )
    session.training.chosen_checkpoint = best.checkpoint.name
    session.training.chosen_by = best.by
    return best


def chosen_row(session: Session) -> tuple[str, str] | None:
    """The id of the checkpoint in use and how it was picked (the final model counts as the
    last checkpoint, picked as "final")."""
    section = session.training
    checkpoints = _checkpoints(session)
    if section.chosen_checkpoint:
        for checkpoint in checkpoints:
            if checkpoint.name == section.chosen_checkpoint:
                return checkpoint.id, section.chosen_by or "hand"
        return None
    if checkpoints:
        last = max(checkpoints, key=lambda c: c.step or 0)
        return last.id, "final"
    return None


def _score_of(session: Session, checkpoint_id: str) -> float | None:
    for score in scored(session):
        if score.id == checkpoint_id:
            return score.score
    return None


def choice_note(session: Session) -> str | None:
    """A sentence when the checkpoint in use is not the best one, naming both, else ``None``."""
    best = best_choice(session)
    chosen = chosen_row(session)
    if best is None or chosen is None or chosen[0] == best.checkpoint.id:
        return None
    if best.by == GRADER_SCORE:
        mine = _score_of(session, chosen[0])
        if mine is not None and mine >= best.value:
            return None  # a tie with the best: as good by the evidence
        figure = f"{mine:.3f}" if mine is not None else "not scored"
        return (
            f"The model in use ({chosen[0]}, grader score {figure}) is not the best checkpoint:"
            f" {best.checkpoint.id} scored {best.value:.3f}."
        )
    return (
        f"The model in use ({chosen[0]}) is not the best checkpoint by {best.by}: "
        f"{best.checkpoint.id} ({best.value:.4f})."
    )


def _valid_losses(session: Session) -> list[tuple[int, float]]:
    points: list[tuple[int, float]] = []
    for raw in session.training.metrics:
        step = raw.get("step")
        value = raw.get("full_valid_loss", raw.get("valid_loss"))
        if isinstance(step, int) and isinstance(value, int | float):
            points.append((step, float(value)))
    return points


def training_advice(session: Session) -> list[str]:
    """What the checkpoints say about the length of training, with the figures.

    - the last checkpoint scores well above the earlier ones and still rose at the end, or
      validation loss still fell at the end: more epochs may help;
    - the best score is early and later checkpoints fall below it: choose the early one.
    """
    advice: list[str] = []
    scores = scored(session)
    if len(scores) >= 2:
        values = [s.score or 0.0 for s in scores]
        last, before = values[-1], values[:-1]
        best_index = max(range(len(values)), key=lambda i: (values[i], -i))
        figures = ", ".join(f"{s.id} {s.score:.2f}" for s in scores)
        if (
            best_index == len(values) - 1
            and last < PERFECT  # a perfect score has nothing left to gain
            and last - sum(before) / len(before) >= RISING_MARGIN
            and last > values[-2]
        ):
            advice.append(
                f"Undertrained? The last checkpoint scores {last:.2f}, well above the earlier "
                f"ones, and the score was still rising ({figures}): more epochs may help."
            )
        elif best_index < len(values) - 1 and values[best_index] - last >= FALLING_MARGIN:
            best = scores[best_index]
            advice.append(
                f"The best checkpoint is an early one: {best.id} scores "
                f"{values[best_index]:.2f} and later ones fall to {last:.2f} ({figures}). "
                f"Choose {best.id}."
            )
    losses = _valid_losses(session)
    if len(losses) >= 2:
        (_, previous), (step, final) = losses[-2], losses[-1]
        if previous > 0 and (previous - final) / previous >= LOSS_FALLING_SHARE:
            advice.append(
                f"Validation loss was still falling at the end ({previous:.4f} -> {final:.4f} "
                f"at step {step}): more epochs may help."
            )
    return advice


__all__ = [
    "GRADER_SCORE",
    "Choice",
    "best_checkpoint_of",
    "best_choice",
    "choice_note",
    "choose_best",
    "chosen_row",
    "scored",
    "training_advice",
]
