"""The dry run: sample the base model on the dataset, grade it, and say whether training pays.

``DryRun`` samples rows (seeded, stratified by topic), generates the base model's answers with
bounded concurrency, grades each answer as soon as it arrives (grading overlaps generation
instead of waiting for the last reply), re-grades a few samples when the grader uses a judge
model to measure the judge's own noise, and returns a :class:`DryRunReport` with the figures,
the cost and the verdict (rules: :mod:`ftwizard.dryrun.verdict`, table: docs/dryrun.md).

For a screen::

    estimate = estimate_dryrun_cost(config, spec)            # before asking "spend $0.04?"
    dry = DryRun(config, spec, sample_set=estimate.sample_set)
    report = await dry.run(on_progress=update_bar)           # in a worker
    dry.cancel()                                             # from a button: stops generating,
                                                             # grades what came back, returns

``cancel()`` makes :meth:`DryRun.run` return a report over the completed samples
(``cancelled=True``). If the task running :meth:`DryRun.run` is itself cancelled, what had
completed is still there: :meth:`DryRun.report`.

Batch mode (``DryRunConfig(batch=True)``, ``anthropic:`` and ``openai:`` models) sends every
generation in one batch (Anthropic Message Batches, the OpenAI Batch API) at half the
per-token price; it may take hours instead of minutes. With a ``journal`` file the batch id is
journaled right after the batch is created (:mod:`ftwizard.providers.batch_journal`, the journal
distillation uses), so a fresh :class:`DryRun` on the same journal after a crash re-attaches to
that batch instead of paying for a second one, and answers already read back are reused.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field, model_validator

from ftwizard.credentials import redact
from ftwizard.datasets.topics import TopicTree
from ftwizard.dryrun.metrics import Histogram, ScoreStats, normalize
from ftwizard.dryrun.sampling import DEFAULT_SAMPLES, SampleSet, sample_rows
from ftwizard.dryrun.verdict import Thresholds, Verdict, VerdictInputs, decide
from ftwizard.errors import FtwizardError
from ftwizard.graders.judges import judge_model
from ftwizard.graders.results import GradeResult, Sample
from ftwizard.graders.samples import answer_of, prompt_messages
from ftwizard.graders.spec import AnyGrader, ScoreModelGrader
from ftwizard.providers.base import ChatProvider, Generation, GenerationRequest, ProviderError
from ftwizard.providers.concurrency import generate_many
from ftwizard.providers.models import ModelRef, parse_model
from ftwizard.providers.retry import RetryEvent

if TYPE_CHECKING:
    from ftwizard.providers.anthropic.batches import BatchStatus
    from ftwizard.providers.batch_journal import (
        BatchCollection,
        BatchEntry,
        BatchRunner,
        GenerationEntry,
        Journal,
    )

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
_FATAL_STATUS = frozenset({401, 403, 404})
_PARSE_WORDS = ("json", "parse", "decode")

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

    def model_ref(self) -> ModelRef:
        """The parsed model string (``InputError`` when it is not ``provider:NAME``)."""
        return parse_model(self.model, base_url=self.base_url)


class SampleOutcome(BaseModel):
    """One sampled row: what the model said and what the grader made of it."""

    index: int
    line: int
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
    def generation_failures(self) -> int:
        """Rows whose generation failed after retries."""
        return sum(1 for e in self.errors if e.stage == "generation")

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
            "usage": self.usage.model_dump(),
            "cost_usd": self.cost.total_usd,
            "sampled": self.sampled,
            "cancelled": self.cancelled,
            "aborted": self.aborted,
            "batch_ids": self.batch_ids,
        }


# --- helpers ----------------------------------------------------------------------------------


def score_scale(spec: AnyGrader) -> tuple[float, float]:
    """The range a grader's scores run over: a top-level score_model's ``range``, else 0-1."""
    if isinstance(spec, ScoreModelGrader):
        return (float(spec.range[0]), float(spec.range[1]))
    return (0.0, 1.0)


def uses_output_json(spec: AnyGrader) -> bool:
    """Whether the grader reads ``sample.output_json`` (so non-JSON outputs fail to parse)."""
    from ftwizard.graders.spec import spec_to_dict

    return "output_json" in json.dumps(spec_to_dict(spec))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_STORED_CHARS else text[:MAX_STORED_CHARS] + " [...]"


def _prompt_text(messages: Sequence[Any]) -> str:
    return _clip("\n\n".join(f"{m.role}: {m.content}" for m in messages))


def _estimate_tokens(text: str) -> int:
    # About four characters per token: good enough to price a dry run, and labelled so.
    return math.ceil(len(text) / 4)


def _is_fatal(error: ProviderError) -> bool:
    if error.status_code in _FATAL_STATUS:
        return True
    # No status and not retryable: a missing key or project, a bad model path.
    return error.status_code is None and not error.retryable


def _price_notes(model: str, usd: float | None, what: str) -> list[str]:
    return [f"no price known for {what} model '{model}'"] if usd is None else []


def batch_price(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for tokens sent through a batch API: half the direct price.

    Both Anthropic Message Batches and the OpenAI Batch API bill every token at 50 % of the
    direct rate; ``pricing.teacher_cost(batch=True)`` halves Anthropic prices only, so the
    halving is done here for both.
    """
    from ftwizard.pricing import teacher_cost

    usd = teacher_cost(model, input_tokens, output_tokens)
    return None if usd is None else usd / 2


def _cost(
    ref: ModelRef,
    usage: TokenUsage,
    judge: str | None,
    *,
    batch: bool = False,
) -> CostFigure:
    from ftwizard.pricing import inference_cost_per_call, teacher_cost

    notes: list[str] = []
    generation: float | None = 0.0
    if batch:
        generation = batch_price(ref.name, usage.input_tokens, usage.output_tokens)
        notes += _price_notes(ref.name, generation, "the base")
        if generation is not None:
            notes.append("generation priced at the batch API rate (half price)")
    elif ref.is_paid:
        # Priced by model name wherever it is served: a proxy in front of OpenAI bills the same;
        # a self-hosted model has no row in the price table and stays unknown.
        generation = inference_cost_per_call(
            ref.name, usage.input_tokens, usage.output_tokens
        ).base_usd
        if generation is None and ref.compatible_base_url() is not None:
            notes.append(f"'{ref.name}' on an OpenAI-compatible server: its price is unknown here")
        else:
            notes += _price_notes(ref.name, generation, "the base")
    judge_usd: float | None = 0.0
    if judge is not None and (usage.judge_input_tokens or usage.judge_output_tokens):
        judge_usd = teacher_cost(judge, usage.judge_input_tokens, usage.judge_output_tokens)
        notes += _price_notes(judge, judge_usd, "the judge")
    total = None if generation is None or judge_usd is None else generation + judge_usd
    return CostFigure(generation_usd=generation, judge_usd=judge_usd, total_usd=total, notes=notes)


class _CountingProvider:
    """Wraps a judge to count its tokens (model graders only return scores)."""

    def __init__(self, inner: ChatProvider, usage: TokenUsage) -> None:
        self.inner = inner
        self.name = inner.name
        self.usage = usage

    async def generate(self, request: GenerationRequest) -> Generation:
        result = await self.inner.generate(request)
        self.usage.judge_input_tokens += result.input_tokens
        self.usage.judge_output_tokens += result.output_tokens
        return result


# --- estimate ---------------------------------------------------------------------------------


def estimate_dryrun_cost(
    config: DryRunConfig,
    spec: AnyGrader,
    *,
    sample_set: SampleSet | None = None,
    topics: TopicTree | None = None,
) -> DryRunEstimate:
    """What the dry run described by ``config`` will cost, before it runs.

    Prompt tokens are estimated from the sampled rows (about four characters a token); output
    tokens from the rows' own answers when they have them, else ``max_tokens`` or 512. A model
    grader adds one judge call per sample plus the re-grade subset. Pass the returned
    ``sample_set`` to :class:`DryRun` so it runs on exactly the rows that were priced.
    """
    ref = config.model_ref()
    rows = sample_set or sample_rows(
        config.data, config.samples, seed=config.seed, topics=topics, topic_field=config.topic_field
    )
    input_tokens = output_tokens = 0
    for row in rows.rows:
        input_tokens += sum(_estimate_tokens(m.content) + 4 for m in prompt_messages(row.item))
        answer = answer_of(row.item)
        guess = _estimate_tokens(answer) if answer else ASSUMED_OUTPUT_TOKENS
        output_tokens += min(guess, config.max_tokens) if config.max_tokens else guess
    judge = judge_model(spec)
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    judge_calls = 0
    if judge is not None:
        judge_calls = len(rows.rows) + min(config.regrade, len(rows.rows))
        # The judge reads the prompt and the answer again, plus its own instructions.
        per_call = (input_tokens + output_tokens) / max(1, len(rows.rows)) + 200
        usage.judge_input_tokens = round(per_call * judge_calls)
        usage.judge_output_tokens = ASSUMED_JUDGE_OUTPUT_TOKENS * judge_calls
    cost = _cost(ref, usage, judge, batch=config.batch)
    cost.notes.insert(0, "estimate: about 4 characters per token")
    return DryRunEstimate(
        model=ref.spec,
        samples=len(rows.rows),
        paid=ref.is_paid or judge is not None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        judge_calls=judge_calls,
        judge_input_tokens=usage.judge_input_tokens,
        judge_output_tokens=usage.judge_output_tokens,
        cost=cost,
        sample_set=rows,
    )


# --- the run ----------------------------------------------------------------------------------


class DryRun:
    """One dry run. Build it, ``await run()``, and ``cancel()`` it from anywhere on the loop.

    ``provider`` defaults to the one ``config.model`` names; ``judge`` is needed by model
    graders. ``sample_set`` (from :func:`estimate_dryrun_cost`) skips re-reading the data.
    In batch mode ``journal`` is the file the batch id and its answers are journaled to (give
    the same file after a restart to re-attach; ``None`` journals nothing), and ``sleep`` is
    awaited between polls of the batch (tests pass one that returns at once).
    """

    def __init__(
        self,
        config: DryRunConfig,
        spec: AnyGrader,
        *,
        provider: ChatProvider | None = None,
        judge: ChatProvider | None = None,
        sample_set: SampleSet | None = None,
        topics: TopicTree | None = None,
        thresholds: Thresholds | None = None,
        journal: str | Path | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.spec = spec
        self.ref = config.model_ref()
        self.usage = TokenUsage()
        self.retries = 0
        self._own_provider = provider is None
        self._provider = provider
        self._judge = _CountingProvider(judge, self.usage) if judge is not None else None
        self._sample_set = sample_set
        self._topics = topics
        self._thresholds = thresholds
        self._outcomes: list[SampleOutcome] = []
        self._noise: GraderNoise | None = None
        self._phase: Phase = "sampling"
        self._cancelled = False
        self._aborted: str | None = None
        self._gen_task: asyncio.Task[Any] | None = None
        self._started = 0.0
        self._scale = score_scale(spec)
        self._needs_json = uses_output_json(spec)
        self._journal_path = Path(journal) if journal is not None else None
        self._sleep = sleep
        self._batch_status: BatchStatus | None = None
        self._batch_ids: list[str] = []
        self._reused = 0
        # Batch mode cancels the generation task only while it waits on a batch: cancelling
        # a submission half-way would leave a batch that exists but is not journaled.
        self._batch_waiting = False

    # -- control -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop generating; the run grades what came back and returns a partial report."""
        self._cancelled = True
        waiting = not self.config.batch or self._batch_waiting
        if self._gen_task is not None and not self._gen_task.done() and waiting:
            self._gen_task.cancel()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    # -- progress ----------------------------------------------------------------------------

    def progress(self) -> DryRunProgress:
        """The current figures (also what ``on_progress`` receives)."""
        scores = [o.score for o in self._outcomes if o.score is not None]
        generated = sum(1 for o in self._outcomes if o.output is not None)
        failed = sum(1 for o in self._outcomes if o.stage == "generation")
        return DryRunProgress(
            phase=self._phase,
            total=len(self._outcomes),
            generated=generated,
            generation_failed=failed,
            graded=len(scores),
            mean=math.fsum(scores) / len(scores) if scores else None,
            histogram=Histogram.of(scores),
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            retries=self.retries,
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            batch_id=self._batch_status.id if self._batch_status else None,
            batch_status=self._batch_status.processing_status if self._batch_status else None,
            batch_finished=_finished(self._batch_status) if self._batch_status else 0,
        )

    # -- running -----------------------------------------------------------------------------

    def _stop_generation_if_failed(self, task: asyncio.Task[None]) -> None:
        # Grading raised (a broken grader): generating more answers would be money for nothing.
        if task.cancelled() or task.exception() is None:
            return
        if self._gen_task is not None and not self._gen_task.done():
            self._gen_task.cancel()

    def _count_retry(self, event: RetryEvent) -> None:
        self.retries += 1

    def _provider_for_run(self) -> ChatProvider:
        if self._provider is None:
            from ftwizard.providers.models import build_generation_provider

            self._provider = build_generation_provider(self.ref, on_retry=self._count_retry)
        return self._provider

    async def run(
        self, on_progress: Callable[[DryRunProgress], None] | None = None
    ) -> DryRunReport:
        """Generate, grade and judge; return the report (partial when cancelled or aborted).

        Raises :class:`InputError` for unusable input (data, grader, model string) before any
        model is called.
        """
        from ftwizard.graders.runner import GraderRunner

        if self._started:
            raise RuntimeError("a DryRun runs once; build a new one to run again")
        self._started = time.monotonic()
        ref = self.ref
        if self._sample_set is None:
            self._sample_set = await asyncio.to_thread(
                sample_rows,
                self.config.data,
                self.config.samples,
                seed=self.config.seed,
                topics=self._topics,
                topic_field=self.config.topic_field,
            )
        rows = self._sample_set.rows
        requests = []
        for i, row in enumerate(rows):
            messages = prompt_messages(row.item)
            requests.append(
                GenerationRequest(
                    model=ref.name,
                    messages=messages,
                    max_tokens=self.config.max_tokens,
                    temperature=self.config.temperature,
                )
            )
            self._outcomes.append(
                SampleOutcome(
                    index=i, line=row.line, topic=row.topic, prompt=_prompt_text(messages)
                )
            )
        runner = GraderRunner(self.spec, judge=self._judge, concurrency=self.config.concurrency)
        runner.preflight()
        provider = self._provider_for_run()

        def notify() -> None:
            if on_progress is not None:
                on_progress(self.progress())

        ready: asyncio.Queue[int | None] = asyncio.Queue()
        # Full answers for the grader; the report keeps clipped copies.
        texts: dict[int, str] = {}
        retryable: set[int] = set()

        def on_failed(index: int, message: str) -> None:
            # A batch item that errored, expired or was canceled: that row only, no abort.
            outcome = self._outcomes[index]
            outcome.error, outcome.stage = redact(message), "generation"
            notify()

        def on_result(index: int, result: Generation | ProviderError) -> None:
            outcome = self._outcomes[index]
            if isinstance(result, ProviderError):
                outcome.error, outcome.stage = redact(result.message), "generation"
                if result.retryable:
                    retryable.add(index)
                if _is_fatal(result) and self._aborted is None:
                    self._aborted = outcome.error
                    if self._gen_task is not None:
                        self._gen_task.cancel()
            else:
                texts[index] = result.text
                outcome.output = _clip(result.text)
                outcome.input_tokens, outcome.output_tokens = (
                    result.input_tokens,
                    result.output_tokens,
                )
                outcome.finish_reason = result.finish_reason
                self.usage.input_tokens += result.input_tokens
                self.usage.output_tokens += result.output_tokens
                ready.put_nowait(index)
            notify()

        samples: dict[int, Sample] = {}

        async def grade_as_they_come() -> None:
            done = False
            while not done:
                batch = [await ready.get()]
                while not ready.empty():
                    batch.append(ready.get_nowait())
                if None in batch:
                    done = True
                indices = [i for i in batch if i is not None]
                if not indices:
                    continue
                results = await self._grade(runner, rows, indices, texts, samples)
                for i, result in zip(indices, results, strict=True):
                    self._record_grade(i, result, samples[i])
                notify()

        try:
            self._phase = "generating"
            notify()
            grader_task = asyncio.create_task(grade_as_they_come())
            grader_task.add_done_callback(self._stop_generation_if_failed)
            if self.config.batch:
                batch_run = self._generate_batch(provider, requests, on_result, on_failed, notify)
                await self._await_generation(batch_run, grader_task)
            else:
                await self._generate(
                    provider, requests, range(len(requests)), on_result, grader_task
                )
            again = sorted(retryable)
            if again and not self._cancelled and not self._aborted:
                # Rows that ran out of attempts on a transient failure (rate limits met again
                # and again, a 5xx streak) get one more pass now the rest of the load is gone.
                retryable.clear()
                for i in again:
                    self._outcomes[i].error = self._outcomes[i].stage = None
                await self._generate(provider, requests, again, on_result, grader_task)
            self._phase = "grading"
            ready.put_nowait(None)
            await grader_task
            if not self._cancelled and not self._aborted and judge_model(self.spec):
                self._phase = "regrading"
                notify()
                self._noise = await self._regrade(runner, rows, samples)
        finally:
            runner.close()
            if self._own_provider:
                from ftwizard.providers.models import close_provider

                await close_provider(provider)
        self._phase = "cancelled" if self._cancelled else "done"
        notify()
        return self.report()

    async def _generate(
        self,
        provider: ChatProvider,
        requests: Sequence[GenerationRequest],
        indices: Sequence[int],
        on_result: Callable[[int, Generation | ProviderError], None],
        grader_task: asyncio.Task[None],
    ) -> None:
        """Generate the rows ``indices``; return when done, cancelled by us, or aborted."""
        chosen = list(indices)
        await self._await_generation(
            generate_many(
                provider,
                [requests[i] for i in chosen],
                concurrency=self.config.concurrency,
                on_result=lambda j, result: on_result(chosen[j], result),
                return_errors=True,
            ),
            grader_task,
        )

    async def _await_generation(self, work: Any, grader_task: asyncio.Task[None]) -> None:
        """Run ``work`` as the cancellable generation task, and sort out how it ended."""
        self._gen_task = asyncio.create_task(work)
        try:
            await self._gen_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # The caller cancelled us: stop everything; report() keeps what completed.
                grader_task.cancel()
                raise
            if grader_task.done() and not grader_task.cancelled():
                failure = grader_task.exception()
                if failure is not None:
                    raise failure from None
        except BaseExceptionGroup as group:
            # Not a failed call (those are ProviderErrors, kept per row) but unusable input a
            # provider found, such as a local model path that does not exist.
            grader_task.cancel()
            usable, _rest = group.split(FtwizardError)
            if usable is not None:
                raise usable.exceptions[0] from None
            raise
        except Exception:
            # A batch call that failed for good, or a progress hook that raised: nothing will
            # feed the grader any more, so it must not be left waiting.
            grader_task.cancel()
            raise

    # -- batch mode --------------------------------------------------------------------------

    def _batch_runner(self, provider: ChatProvider) -> BatchRunner:
        from ftwizard.providers.batch_journal import batch_runner_for

        return cast(
            "BatchRunner", batch_runner_for(provider, poll_interval_s=self.config.poll_interval_s)
        )

    def _journal_entry(self, rid: str, generation: Generation, batch_id: str) -> GenerationEntry:
        from ftwizard.providers.batch_journal import GenerationEntry

        return GenerationEntry(
            request_id=rid,
            text=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            finish_reason=generation.finish_reason,
            batch_id=batch_id,
            cost_usd=batch_price(self.ref.name, generation.input_tokens, generation.output_tokens),
        )

    async def _generate_batch(
        self,
        provider: ChatProvider,
        requests: Sequence[GenerationRequest],
        on_result: Callable[[int, Generation | ProviderError], None],
        on_failed: Callable[[int, str], None],
        notify: Callable[[], None],
    ) -> None:
        """Generate every row through one batch, re-attaching to a journaled one.

        Answers the journal already holds are reused; a journaled batch that has not been read
        back is waited on again instead of submitted again; only rows with neither go into a
        new batch. Its id is journaled before the wait, so a crash from then on re-attaches.
        """
        from ftwizard.providers.batch_journal import (
            Journal,
            JournalState,
            request_digest,
            submit_batch,
        )

        runner = self._batch_runner(provider)
        # The digest ties a journaled answer to exactly this request; the index tells apart
        # two sampled rows that happen to ask the same thing (custom ids must be unique).
        ids = [f"r-{request_digest(r)}-{i}" for i, r in enumerate(requests)]
        index_of = {rid: i for i, rid in enumerate(ids)}
        journal = Journal(self._journal_path) if self._journal_path is not None else None
        state = journal.load() if journal is not None else JournalState()
        for rid, entry in state.generations.items():
            if rid in index_of:
                self._reused += 1
                on_result(index_of[rid], _generation_of(entry))
        # Only this dry run's batches: a journal shared with other runs keeps theirs open.
        batches = [
            b for b in state.open_batches.values() if any(rid in index_of for rid in b.request_ids)
        ]
        in_flight = {rid for b in batches for rid in b.request_ids}
        todo = [rid for rid in ids if rid not in state.generations and rid not in in_flight]
        if todo and not self._cancelled:
            # Without a journal the batch still runs; only re-attaching after a crash is lost.
            batches.append(
                await submit_batch(
                    runner, journal, [(rid, requests[index_of[rid]]) for rid in todo]
                )
            )

        def on_status(status: BatchStatus) -> None:
            self._batch_status = status
            notify()

        for batch in batches:
            self._batch_ids.append(batch.batch_id)
            collected = await self._collect(runner, journal, batch, on_status)
            for answer in collected.entries:
                on_result(index_of[answer.request_id], _generation_of(answer))
            for rid, why in collected.failures.items():
                # After our own cancel the items the batch dropped were not run, not failed.
                if rid in index_of and not self._cancelled:
                    on_failed(index_of[rid], why)

    async def _collect(
        self,
        runner: BatchRunner,
        journal: Journal | None,
        batch: BatchEntry,
        on_status: Callable[[BatchStatus], None],
    ) -> BatchCollection:
        """Wait for ``batch`` and read it back; :meth:`cancel` cancels the batch remotely.

        A cancelled batch still ends with the answers finished before the cancel, and those
        are graded. Cancelling the task running :meth:`run` (the process is going away) leaves
        the batch running: it is journaled, and a restart re-attaches to it.
        """
        from ftwizard.providers.batch_journal import collect_batch

        async def read_back() -> BatchCollection:
            return await collect_batch(
                runner,
                journal,
                batch,
                entry_for=self._journal_entry,
                on_status=on_status,
                sleep=self._sleep,
            )

        if self._cancelled:
            on_status(await runner.cancel(batch.batch_id))
            return await read_back()
        self._batch_waiting = True
        try:
            return await read_back()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancelled or task is None:
                raise
            task.uncancel()
        finally:
            self._batch_waiting = False
        on_status(await runner.cancel(batch.batch_id))
        return await read_back()

    async def _grade(
        self,
        runner: Any,
        rows: Sequence[Any],
        indices: list[int],
        texts: dict[int, str],
        samples: dict[int, Sample],
    ) -> list[GradeResult]:
        for i in indices:
            samples[i] = Sample.from_output(texts[i])
        return list(
            await runner.grade([rows[i].item for i in indices], [samples[i] for i in indices])
        )

    def _record_grade(self, index: int, result: GradeResult, sample: Sample) -> None:
        outcome = self._outcomes[index]
        outcome.raw_score = result.score
        outcome.score = normalize(result.score, *self._scale)
        outcome.notes = result.notes
        outcome.parsed_json = sample.output_json is not None
        if result.error:
            outcome.error, outcome.stage = redact(result.error), "grading"

    async def _regrade(
        self, runner: Any, rows: Sequence[Any], samples: dict[int, Sample]
    ) -> GraderNoise | None:
        graded = [o.index for o in self._outcomes if o.score is not None and o.stage is None]
        k = min(self.config.regrade, len(graded))
        if k < 2:
            return None
        chosen = sorted(random.Random(self.config.seed).sample(graded, k))
        again = await runner.grade([rows[i].item for i in chosen], [samples[i] for i in chosen])
        diffs = []
        for i, result in zip(chosen, again, strict=True):
            if result.error:
                continue
            first = self._outcomes[i].score
            assert first is not None
            diffs.append(abs(first - normalize(result.score, *self._scale)))
        if not diffs:
            return None
        return GraderNoise(
            samples=len(diffs), mean_abs_diff=math.fsum(diffs) / len(diffs), max_abs_diff=max(diffs)
        )

    # -- the report --------------------------------------------------------------------------

    def _is_parse_failure(self, outcome: SampleOutcome) -> bool:
        if outcome.output is None:
            return False
        if outcome.stage == "grading" and outcome.error:
            lowered = outcome.error.lower()
            if any(word in lowered for word in _PARSE_WORDS):
                return True
        return self._needs_json and outcome.score is not None and not outcome.parsed_json

    def report(self) -> DryRunReport:
        """The report over what has completed so far (the whole run once :meth:`run` returns)."""
        graded = [o for o in self._outcomes if o.score is not None]
        stats = ScoreStats.of([o.score for o in graded if o.score is not None])
        by_topic: dict[str, list[float]] = {}
        for o in graded:
            if o.topic is not None and o.score is not None:
                by_topic.setdefault(o.topic, []).append(o.score)
        per_topic = {}
        for topic, scores in sorted(by_topic.items()):
            s = ScoreStats.of(scores)
            per_topic[topic] = TopicStats(
                n=s.n, mean=s.mean, std=s.std, pct_gt0=s.pct_gt0, pct_eq1=s.pct_eq1
            )
        errors = [
            RowIssue(row=o.line, stage=o.stage, message=o.error)
            for o in self._outcomes
            if o.stage is not None and o.error is not None
        ]
        parse_failures = sum(1 for o in graded if self._is_parse_failure(o))
        truncated = sum(1 for o in graded if o.finish_reason in ("length", "max_tokens"))
        sampled = len(self._outcomes)
        verdict = decide(
            VerdictInputs(
                method=self.config.method,
                stats=stats,
                sampled=sampled,
                generation_failures=sum(1 for e in errors if e.stage == "generation"),
                grader_errors=sum(1 for e in errors if e.stage == "grading"),
                parse_failures=parse_failures,
                truncated=truncated,
                grader_noise=self._noise.mean_abs_diff if self._noise else None,
            ),
            self._thresholds,
        )
        not_run = sum(1 for o in self._outcomes if o.output is None and o.stage is None)
        if self._cancelled and not_run:
            verdict = _with_partial_note(
                verdict, f"cancelled: {not_run} of {sampled} samples were not generated"
            )
        if self._aborted:
            verdict = _with_partial_note(verdict, f"stopped early: {self._aborted}")
        judge = judge_model(self.spec)
        return DryRunReport(
            model=self.ref.spec,
            method=self.config.method,
            data=self.config.data,
            grader=f"{self.spec.type} '{self.spec.name}'",
            seed=self.config.seed,
            requested=self.config.samples,
            sampled=sampled,
            scale=self._scale,
            stats=stats,
            per_topic=per_topic,
            topic_source=self._sample_set.topic_source if self._sample_set else None,
            errors=errors,
            parse_failures=parse_failures,
            truncated=truncated,
            grader_noise=self._noise,
            usage=self.usage.model_copy(),
            cost=_cost(self.ref, self.usage, judge, batch=self.config.batch),
            verdict=verdict,
            samples=[o.model_copy() for o in self._outcomes],
            cancelled=self._cancelled,
            aborted=self._aborted,
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            batch_ids=list(self._batch_ids),
            reused=self._reused,
        )


def _finished(status: BatchStatus) -> int:
    return status.succeeded + status.errored + status.canceled + status.expired


def _generation_of(entry: GenerationEntry) -> Generation:
    return Generation(
        text=entry.text,
        model=entry.model,
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        finish_reason=entry.finish_reason,
    )


def _with_partial_note(verdict: Verdict, message: str) -> Verdict:
    from ftwizard.dryrun.verdict import Reason

    reason = Reason(rule="P1", level="warning", message=message)
    level = "WARNING" if verdict.verdict == "GO" else verdict.verdict
    return verdict.model_copy(update={"verdict": level, "reasons": [*verdict.reasons, reason]})


async def run_dryrun(
    config: DryRunConfig,
    spec: AnyGrader,
    *,
    provider: ChatProvider | None = None,
    judge: ChatProvider | None = None,
    sample_set: SampleSet | None = None,
    topics: TopicTree | None = None,
    on_progress: Callable[[DryRunProgress], None] | None = None,
) -> DryRunReport:
    """Run a dry run to the end (see :class:`DryRun` for cancellation)."""
    dry = DryRun(config, spec, provider=provider, judge=judge, sample_set=sample_set, topics=topics)
    return await dry.run(on_progress=on_progress)


__all__ = [
    "DryRun",
    "DryRunConfig",
    "DryRunEstimate",
    "DryRunProgress",
    "DryRunReport",
    "estimate_dryrun_cost",
    "run_dryrun",
]
