"""The ledger line of one scored checkpoint (kept apart so the ledger's reader and the code
that writes these lines share it without importing each other)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from ftwizard.session import ModelIdentity, Session


class CheckpointEntry(BaseModel):
    """One checkpoint of a run scored with the session's grader (``ftwizard checkpoints
    --eval``): what was scored (its weights' digest or hosted id), on which rows, and the
    score."""

    kind: Literal["checkpoint"] = "checkpoint"
    key: str
    recorded_at: datetime
    session_id: str
    checkpoint: str
    step: int | None = None
    epoch: float | None = None
    identity: ModelIdentity | None = None
    grader_digest: str
    held_out_file: str
    rows: int
    score: float | None = None
    ci95: tuple[float, float] | None = None
    n: int = 0

    def same_facts(self, other: CheckpointEntry) -> bool:
        """Whether two lines record the same score of the same weights."""
        skip = {"recorded_at"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


def run_key(session: Session) -> str:
    """The ledger's key of the session's run: its remote job id, else its local key or folder."""
    training = session.training
    remote = training.intent.job_id if training.intent else None
    local = training.intent.key if training.intent else None
    return f"{session.id}:{remote or local or training.run_dir or 'run'}"


def checkpoint_entries(session: Session, *, now: datetime | None = None) -> list[CheckpointEntry]:
    """A ledger line per scored checkpoint of the session's run."""
    section = session.training.checkpoint_eval
    if section is None:
        return []
    when = now or datetime.now(UTC)
    return [
        CheckpointEntry(
            key=run_key(session),
            recorded_at=when,
            session_id=session.id,
            checkpoint=score.id,
            step=score.step,
            epoch=score.epoch,
            identity=score.identity,
            grader_digest=section.grader_digest,
            held_out_file=section.held_out_file,
            rows=section.rows,
            score=score.score,
            ci95=score.ci95,
            n=score.n,
        )
        for score in section.scores
        if score.score is not None
    ]


__all__ = ["CheckpointEntry", "checkpoint_entries", "run_key"]
