"""The options, estimate and result of a distillation run, and the files it writes beside
its output (secret-free models a session can store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from ftwizard.distill.prompts import MergeSummary
from ftwizard.providers.models import ModelRef
from ftwizard.providers.retry import RetryPolicy

# Message Batches accept up to 100,000 requests; smaller batches finish (and are journaled)
# sooner, so less is waiting on one remote job.
DEFAULT_BATCH_SIZE = 10_000


class DistillOptions(BaseModel):
    """How a relabeling run is done (secret-free: a session can store it)."""

    teacher: ModelRef
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float = Field(default=120.0, gt=0)
    threshold: float = 1.0
    mode: Literal["auto", "batch", "direct"] = "auto"
    batch_min_rows: int = Field(default=100, ge=1)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000)
    poll_interval_s: float = Field(default=30.0, ge=0)
    system_prompt: str | None = None
    context_field: str | None = "context"
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    concurrency: int = Field(default=8, ge=1)
    keep_fields: list[str] = []
    merge_into: Path | None = None
    key_columns: list[str] = []
    response_field: str = "teacher_response"
    drop_unmatched: bool = False
    expected_output_tokens: int = Field(default=256, ge=1)


class DistillEstimate(BaseModel):
    """What a run would request and cost; ``usd_*`` are ``None`` when the price is unknown."""

    teacher: str
    rows: int
    requests: int
    already_paid: int
    to_request: int
    batch: bool
    input_tokens: int
    output_tokens_expected: int
    output_tokens_max: int
    usd_expected: float | None
    usd_max: float | None
    basis: str


class RowFailure(BaseModel):
    """A row the teacher produced no answer for."""

    line: int
    message: str


class DistillResult(BaseModel):
    """The metadata of a run, written beside the training file."""

    teacher: str
    teacher_kind: str
    mode: Literal["batch", "direct"]
    data: str
    output: str
    journal: str
    grader: str | None
    threshold: float
    n: int
    answered: int
    failed: int
    graded: int
    correct: int
    kept: int
    teacher_accuracy: float | None
    accuracy_text: str
    grade_errors: int
    reused: int
    requests_sent: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cost_usd_this_run: float | None
    batch_ids: list[str]
    output_rows: int
    merge: MergeSummary | None = None
    failures: list[RowFailure] = []
    created_at: str

    def to_cli_json(self) -> dict[str, object]:
        """The object ``ftwizard distill --json`` prints."""
        return {
            "n": self.n,
            "kept": self.kept,
            "teacher_accuracy": self.teacher_accuracy,
            "cost_usd": self.cost_usd,
            "failed": self.failed,
            "reused": self.reused,
            "output": self.output,
        }


def accuracy_text(correct: int, graded: int) -> str:
    """The teacher's accuracy the way practitioners write it: ``318 / 377 correct, 84.4 %``."""
    if graded == 0:
        return "0 / 0 correct"
    return f"{correct} / {graded} correct, {100 * correct / graded:.1f} %"


def journal_path_for(output: str | Path) -> Path:
    """The default journal beside ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".journal.jsonl")


def metadata_path_for(output: str | Path) -> Path:
    """The metadata file beside ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".meta.json")


SummaryT = TypeVar("SummaryT", bound=BaseModel)


def session_summary(result: Any, summary: type[SummaryT]) -> SummaryT:
    """The part of a run's ``result`` the session keeps: every field ``summary`` declares,
    taken from ``result`` by name, and ``metadata_file``, the full statistics beside the
    output."""
    fields = set(summary.model_fields) - {"metadata_file"}
    return summary(
        **{name: getattr(result, name) for name in fields},
        metadata_file=str(metadata_path_for(result.output)),
    )
