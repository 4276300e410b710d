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

With ``samples_per_prompt`` K > 1 (the default for RFT) each sampled prompt is asked K times
at the training temperature; every draw is one outcome (``group`` is its prompt, ``draw`` its
number) and the report adds the group figures of :mod:`ftwizard.dryrun.groups`.

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
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftwizard.credentials import redact
from ftwizard.dryrun.batch import BatchGeneration, batch_finished
from ftwizard.dryrun.cost import (
    CountingProvider,
    clip_text,
    is_fatal,
    prompt_text,
    score_scale,
    uses_output_json,
)
from ftwizard.dryrun.metrics import Histogram
from ftwizard.dryrun.report import (
    DryRunConfig,
    DryRunProgress,
    DryRunReport,
    GraderNoise,
    Phase,
    SampleOutcome,
    TokenUsage,
)
from ftwizard.dryrun.sampling import SampleSet, sample_rows
from ftwizard.dryrun.scoring import Scoring
from ftwizard.dryrun.verdict_types import Thresholds
from ftwizard.errors import FtwizardError
from ftwizard.graders.judges import judge_model
from ftwizard.graders.results import Sample
from ftwizard.graders.samples import prompt_messages
from ftwizard.graders.spec import AnyGrader
from ftwizard.providers.base import ChatProvider, Generation, GenerationRequest, ProviderError
from ftwizard.providers.concurrency import generate_many
from ftwizard.providers.retry import RetryEvent

if TYPE_CHECKING:
    from ftwizard.datasets.topics import TopicTree
    from ftwizard.providers.anthropic.batches import BatchStatus


class DryRun(BatchGeneration, Scoring):
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
        # Calls that failed for good, counted as they fail: a row retried in the second pass
        # stays counted, so the figure a person watches never goes down.
        self.failed_calls = 0
        self._own_provider = provider is None
        self._provider = provider
        self._judge = CountingProvider(judge, self.usage) if judge is not None else None
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
        return DryRunProgress(
            phase=self._phase,
            total=len(self._outcomes),
            generated=generated,
            generation_failed=self.failed_calls,
            graded=len(scores),
            mean=math.fsum(scores) / len(scores) if scores else None,
            histogram=Histogram.of(scores),
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            retries=self.retries,
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            batch_id=self._batch_status.id if self._batch_status else None,
            batch_status=self._batch_status.processing_status if self._batch_status else None,
            batch_finished=batch_finished(self._batch_status) if self._batch_status else 0,
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
        k = self.config.k
        # One entry per draw: prompt i's K draws are entries i*K .. i*K+K-1.
        rows = [row for row in self._sample_set.rows for _ in range(k)]
        requests = []
        for i, row in enumerate(self._sample_set.rows):
            messages = prompt_messages(row.item)
            request = GenerationRequest(
                model=ref.name,
                messages=messages,
                max_tokens=self.config.max_tokens,
                temperature=self.config.sampling_temperature,
            )
            for j in range(k):
                requests.append(request)
                self._outcomes.append(
                    SampleOutcome(
                        index=len(self._outcomes),
                        line=row.line,
                        topic=row.topic,
                        prompt=prompt_text(messages),
                        group=i,
                        draw=j,
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
            self.failed_calls += 1
            notify()

        def on_result(index: int, result: Generation | ProviderError) -> None:
            outcome = self._outcomes[index]
            if isinstance(result, ProviderError):
                outcome.error, outcome.stage = redact(result.message), "generation"
                self.failed_calls += 1
                if result.retryable:
                    retryable.add(index)
                if is_fatal(result) and self._aborted is None:
                    self._aborted = outcome.error
                    if self._gen_task is not None:
                        self._gen_task.cancel()
            else:
                texts[index] = result.text
                outcome.output = clip_text(result.text)
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
            # This task starts before the first requests are sent; the python graders'
            # workers start in a thread while those requests are in flight.
            if runner.python_sources():
                await asyncio.to_thread(runner.start_workers)
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
        if self._cancelled:
            # Stop came before the generation existed (pressed in the same moment as Run).
            self._gen_task.cancel()
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
    "run_dryrun",
]
