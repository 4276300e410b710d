"""The ledger line of one scored checkpoint (kept apart so the ledger's reader and the code
that writes these lines share it without importing each other)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from ftwizard.session import ModelIdentity


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


__all__ = ["CheckpointEntry"]
