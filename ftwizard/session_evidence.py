"""The session's evidence about weights: which weights a step used (:class:`ModelIdentity`)
and every checkpoint's grader score (:class:`CheckpointEval`). Re-exported by
:mod:`ftwizard.session`, whose training, deployment and evaluation sections hold them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ModelIdentity(BaseModel):
    """What exactly a step used: a hosted model's id, or a local weights file's digest.

    ``source`` is the path as given (it may pass through symlinks); ``path`` is that path
    resolved at hashing time, so a symlink re-pointed later shows as a change. ``size`` and
    ``mtime_ns`` let a check skip re-hashing a file that was not touched.
    """

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    source: str | None = None
    path: str | None = None
    sha256: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    # The merged export that was served, when one was.
    merged_source: str | None = None
    merged_path: str | None = None
    merged_sha256: str | None = None
    merged_size: int | None = None
    merged_mtime_ns: int | None = None

    def label(self) -> str:
        """``sha256 1a2b3c4d5e6f (adapter_model.safetensors)`` or the hosted model id."""
        if self.sha256:
            name = (self.path or "").rsplit("/", 1)[-1]
            return f"sha256 {self.sha256[:12]}" + (f" ({name})" if name else "")
        return self.model or "-"


class CheckpointScore(BaseModel):
    """One checkpoint's grader score on the held-out rows (``score`` ``None``: not scored,
    ``error`` says why)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    step: int | None = None
    epoch: float | None = None
    path: str | None = None  # local: the checkpoint folder as the trainer wrote it
    model: str | None = None  # the model string the rows were answered with
    identity: ModelIdentity | None = None
    score: float | None = None
    ci95: tuple[float, float] | None = None
    n: int = 0
    errors: int = 0
    error: str | None = None
    scored_at: datetime | None = None


class CheckpointEval(BaseModel):
    """Every checkpoint scored with the session's grader on the evaluate step's rows."""

    model_config = ConfigDict(extra="forbid")

    grader_digest: str
    held_out_file: str
    rows: int  # the first ``rows`` held-out rows
    scores: list[CheckpointScore] = Field(default_factory=list)
    cost_usd: float | None = None
    report_file: str | None = None


__all__ = ["CheckpointEval", "CheckpointScore", "ModelIdentity"]
