"""The dry run's inputs and outputs: its config, per-sample outcomes, progress and report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ftwizard.dryrun.groups import DEFAULT_K_RFT, TRAINING_TEMPERATURE, GroupStats
from ftwizard.dryrun.metrics import Histogram, ScoreStats
from ftwizard.dryrun.sampling import DEFAULT_SAMPLES, SampleSet
from ftwizard.dryrun.verdict_types import Verdict
from ftwizard.providers.models import ModelRef, parse_model

REPORT_VERSION = 1
DEFAULT_CONCURRENCY = 16
DEFAULT_REGRADE = 20
# Output length assumed by the cost estimate when the rows carry no answer to measure.
ASSUMED_OUTPUT_TOKENS = 512
# Judge reply length assumed by the cost estimate (a score and a short reason).
ASSUMED_JUDGE_OUTPUT_TOKENS = 150
# Stored prompt/output text per sample; enough to read, small enough for session.json.
MAX_STORED_CHARS = 4000
# How often a batch dry run asks whether its batch has ended.
DEFAULT_POLL_INTERVAL_S = 30.0
# The providers whose batch API the dry run drives (Vertex batch prediction is not wired).
BATCH_PROVIDERS = frozenset({"anthropic", "openai"})
# Statuses that will fail every other request the same way: stop instead of repeating them.


Method = Literal["sft", "dpo", "rft"]
Phase = Literal["sampling", "generating", "grading", "regrading", "done", "cancelled"]
BatchState = Literal["in_progress", "canceling", "ended"]


class DryRunConfig(BaseModel):
    """What to dry-run: the data, the model string, and how many samples how fast."""

    data: str
    model: str
    base_url: str | None = None
    samples: int = Field(default=DEFAULT_SAMPLES, ge=1)
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    seed: int = 0
    method: Method = "rft"
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0)
    regrade: int = Field(default=DEFAULT_REGRADE, ge=0)
    # K answers per prompt (GRPO's group size); None: 4 for RFT, 1 for SFT and DPO.
    samples_per_prompt: int | None = Field(default=None, ge=1)
    topic_field: str | None = None
    # One batch instead of direct calls: half the price, hours instead of minutes.
    batch: bool = False
    poll_interval_s: float = Field(default=DEFAULT_POLL_INTERVAL_S, ge=0.0)

    @model_validator(mode="after")
    def _batch_needs_a_batch_api(self) -> DryRunConfig:
        # Refused here, at the boundary, so no caller prices or starts a batch it cannot run.
        provider = self.model.split(":", 1)[0] if ":" in self.model else ""
        if self.batch and provider not in BATCH_PROVIDERS:
            raise ValueError(
                f"batch mode is available for anthropic: and openai: models, not "
                f"'{self.model}'; run without batch mode"
            )
        return self

    @property
    def k(self) -> int:
        """Answers drawn per prompt."""
        if self.samples_per_prompt is not None:
            return self.samples_per_prompt
        return DEFAULT_K_RFT if self.method == "rft" else 1

    @property
    def sampling_temperature(self) -> float | None:
        """The temperature sent: the training one (1.0) when K > 1 and none was given."""
        if self.temperature is None and self.k > 1:
            return TRAINING_TEMPERATURE
        return self.temperature

    def model_ref(self) -> ModelRef:
        """The parsed model string (``InputError`` when it is not ``provider:NAME``)."""
        return parse_model(self.model, base_url=self.base_url)


class SampleOutcome(BaseModel):
    """One sampled row: what the model said and what the grader made of it."""

    index: int
    line: int
    # Which sampled prompt (0-based) and which of its K draws this answer is.
    group: int = 0
    draw: int = 0
    topic: str | None = None
    prompt: str
    output: str | None = None
    score: float | None = None
    raw_score: float | None = None
    error: str | None = None
    stage: Literal["generation", "grading"] | None = None
    notes: str = ""
    parsed_json: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


class RowIssue(BaseModel):
    """A row that failed to generate or to grade (``row`` is its line in the data file)."""

    row: int
    stage: Literal["generation", "grading"]
    message: str


class TokenUsage(BaseModel):
    """Tokens spent by the base model and, for model graders, by the judge."""

    input_tokens: int = 0
    output_tokens: int = 0
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0


class CostFigure(BaseModel):
    """Dollars for the base model and the judge; ``None`` where a price is unknown."""

    generation_usd: float | None = 0.0
    judge_usd: float | None = 0.0
    total_usd: float | None = 0.0
    notes: list[str] = Field(default_factory=list)


class GraderNoise(BaseModel):
    """How much a model grader disagrees with itself: mean |first - second| on 0-1 scores."""

    samples: int
    mean_abs_diff: float
    max_abs_diff: float


class TopicStats(BaseModel):
    """Per-topic figures (the CLI's ``per_topic``)."""

    n: int
    mean: float
    std: float
    pct_gt0: float
    pct_eq1: float


class DryRunEstimate(BaseModel):
    """What a dry run will cost, computed before anything is spent."""

    model: str
    samples: int
    samples_per_prompt: int = 1
    paid: bool
    input_tokens: int
    output_tokens: int
    judge_calls: int = 0
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    cost: CostFigure
    sample_set: SampleSet = Field(exclude=True)


class DryRunProgress(BaseModel):
    """Where a running dry run stands; sent after every generation and graded batch."""

    phase: Phase
    total: int
    generated: int = 0
    generation_failed: int = 0
    graded: int = 0
    mean: float | None = None
    histogram: Histogram = Field(default_factory=lambda: Histogram.of([]))
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    # Batch mode: the batch being waited on and what the API says of it.
    batch_id: str | None = None
    batch_status: BatchState | None = None
    batch_finished: int = 0


def draws_text(prompts: int, k: int) -> str:
    """The one wording for prompts x answers, the same on the screen and in the CLI:
    ``16 prompts x 4 answers = 64 answers`` (``--samples`` and Samples count prompts)."""
    p = "prompt" if prompts == 1 else "prompts"
    a = "answer" if k == 1 else "answers"
    total = prompts * k
    return f"{prompts} {p} x {k} {a} = {total} {'answer' if total == 1 else 'answers'}"


def graded_text(graded: int, answers: int) -> str:
    """How many of the answers were graded, in the same words as :func:`draws_text`."""
    return f"{graded} of {answers} answers graded"


class DryRunReport(BaseModel):
    """Everything a session stores about a dry run, and what the CLI prints."""

    version: int = REPORT_VERSION
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    model: str
    method: Method
    data: str
    grader: str
    seed: int
    requested: int
    sampled: int
    scale: tuple[float, float] = (0.0, 1.0)
    stats: ScoreStats
    per_topic: dict[str, TopicStats] = Field(default_factory=dict)
    topic_source: str | None = None
    errors: list[RowIssue] = Field(default_factory=list)
    parse_failures: int = 0
    truncated: int = 0
    grader_noise: GraderNoise | None = None
    groups: GroupStats | None = None
    groups_per_topic: dict[str, GroupStats] = Field(default_factory=dict)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    cost: CostFigure = Field(default_factory=CostFigure)
    verdict: Verdict
    samples: list[SampleOutcome] = Field(default_factory=list)
    cancelled: bool = False
    aborted: str | None = None
    elapsed_s: float = 0.0
    # Batch mode: the batches this run waited on, and answers taken from the journal instead.
    batch_ids: list[str] = Field(default_factory=list)
    reused: int = 0

    @property
    def k(self) -> int:
        """Answers drawn per prompt."""
        return self.groups.k if self.groups is not None else 1

    @property
    def draws(self) -> str:
        """``N prompts x K answers = M answers`` for this run."""
        return draws_text(self.sampled // max(1, self.k), self.k)

    @property
    def generation_failures(self) -> int:
        """Rows whose generation failed after retries."""
        return sum(1 for e in self.errors if e.stage == "generation")

    def nothing_measured(self) -> str | None:
        """Why this run measured nothing, or ``None`` when at least one answer was graded.

        A run with no graded answer has no figures to judge: it is an error that names its
        cause (the first failure, which says what to fix), never a verdict.
        """
        if self.stats.n > 0:
            return None
        head = f"the dry run measured nothing ({graded_text(0, self.sampled)})"
        generation = [e for e in self.errors if e.stage == "generation"]
        grading = [e for e in self.errors if e.stage == "grading"]
        if self.aborted:
            return f"{head}; it stopped at the first failure: {self.aborted}"
        if generation:
            return (
                f"{head}; {len(generation)} failed to generate, the first (row "
                f"{generation[0].row}) with: {generation[0].message}"
            )
        if grading:
            return (
                f"{head}; the grader failed on {len(grading)}, the first (row "
                f"{grading[0].row}) with: {grading[0].message}"
            )
        if self.cancelled:
            return f"{head}: it was stopped before any answer came back"
        return f"{head}: the sample of the data is empty"

    def lowest(self, k: int = 10) -> list[SampleOutcome]:
        """The ``k`` lowest-scoring graded samples (ties in row order), for browsing."""
        graded = [s for s in self.samples if s.score is not None]
        return sorted(graded, key=lambda s: (s.score, s.line))[:k]

    def to_cli_json(self) -> dict[str, Any]:
        """The ``ftwizard dryrun --json`` object."""
        return {
            "n": self.stats.n,
            "mean": self.stats.mean,
            "std": self.stats.std,
            "pct_gt0": self.stats.pct_gt0,
            "pct_eq1": self.stats.pct_eq1,
            "errors": [e.model_dump() for e in self.errors],
            "verdict": self.verdict.verdict,
            "reasons": self.verdict.reason_texts(),
            "per_topic": {k: v.model_dump() for k, v in self.per_topic.items()},
            "diagnosis": [str(d) for d in self.verdict.diagnosis],
            "next_moves": [str(m) for m in self.verdict.next_moves],
            "histogram": self.stats.histogram.model_dump(),
            "grader_noise": self.grader_noise.model_dump() if self.grader_noise else None,
            "groups": self.groups.to_cli_json() if self.groups else None,
            "groups_per_topic": {k: v.to_cli_json() for k, v in self.groups_per_topic.items()},
            "always_solved": self.groups.always_solved if self.groups else [],
            "never_solved": self.groups.never_solved if self.groups else [],
            "usage": self.usage.model_dump(),
            "cost_usd": self.cost.total_usd,
            "sampled": self.sampled,
            "cancelled": self.cancelled,
            "aborted": self.aborted,
            "batch_ids": self.batch_ids,
        }
