"""Teacher generation for distillation: direct calls or Message Batches, journaled as they go.

Each answer is appended to the journal the moment it arrives (direct calls) or as soon as its
batch's results are read; a batch id is journaled right after the batch is created, before the
wait, so a crash from then on re-attaches to the batch instead of paying for a second one. The
batch half is :func:`ftwizard.providers.batch_journal.submit_batch` / ``collect_batch``, which
the dry run's batch mode uses too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from ftwizard.providers.base import Generation, GenerationRequest, ProviderError
from ftwizard.providers.batch_journal import (
    BatchEntry,
    GenerationEntry,
    Journal,
    collect_batch,
    submit_batch,
)


class DistillProgress(BaseModel):
    """Where a run stands, for a progress bar."""

    stage: Literal["batch", "generating", "grading", "writing"]
    done: int
    total: int
    batch_id: str | None = None
    cost_usd: float | None = None


class DistillCancelled(Exception):
    """Raised when ``should_stop`` asked a run to stop; the journal keeps what was paid for."""


ProgressHook = Callable[[DistillProgress], None]
StopHook = Callable[[], bool]


class TeacherRun:
    """Asks the teacher for what the journal lacks, journaling every answer as it arrives.

    ``generations`` holds every journaled answer (earlier runs' and this one's) by request id;
    ``failures`` the requests that got none, with why.
    """

    def __init__(
        self,
        *,
        model: str,
        concurrency: int,
        batch_size: int,
        journal: Journal,
        on_progress: ProgressHook | None,
        should_stop: StopHook | None,
    ) -> None:
        self.model = model
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.journal = journal
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.generations = journal.load().generations
        self.failures: dict[str, str] = {}
        self.sent = 0
        self.cost_this_run: float | None = 0.0

    def record(self, entries: Sequence[GenerationEntry]) -> None:
        """Journal paid-for answers (fsynced), then count them as done."""
        self.journal.append(entries)
        self.remember(entries)

    def remember(self, entries: Sequence[GenerationEntry]) -> None:
        """Count already-journaled answers as done, and what they cost this run."""
        for entry in entries:
            self.generations[entry.request_id] = entry
            self.failures.pop(entry.request_id, None)
            if entry.cost_usd is None:
                self.cost_this_run = None
            elif self.cost_this_run is not None:
                self.cost_this_run += entry.cost_usd

    def entry(self, rid: str, generation: Generation, batch_id: str | None) -> GenerationEntry:
        """The journal entry for an answer, priced (batches at half price)."""
        from ftwizard.pricing import teacher_cost

        return GenerationEntry(
            request_id=rid,
            text=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            finish_reason=generation.finish_reason,
            batch_id=batch_id,
            cost_usd=teacher_cost(
                self.model,
                generation.input_tokens,
                generation.output_tokens,
                batch=batch_id is not None,
            ),
        )

    def progress(self, stage: Any, done: int, total: int, batch_id: str | None = None) -> None:
        """Report progress to the hook, with what this run has spent so far."""
        if self.on_progress is not None:
            self.on_progress(
                DistillProgress(
                    stage=stage,
                    done=done,
                    total=total,
                    batch_id=batch_id,
                    cost_usd=self.cost_this_run,
                )
            )

    def check_stop(self) -> None:
        """Raise :class:`DistillCancelled` when the stop hook says so."""
        if self.should_stop is not None and self.should_stop():
            raise DistillCancelled("distillation stopped; run it again to resume")

    async def direct(self, provider: Any, todo: dict[str, GenerationRequest]) -> None:
        """One call per request, ``concurrency`` at a time; a failed call is a failure."""
        from ftwizard.providers.concurrency import generate_many

        ids = list(todo)
        finished = 0

        def on_result(index: int, result: Generation | ProviderError) -> None:
            nonlocal finished
            finished += 1
            self.sent += 1
            rid = ids[index]
            if isinstance(result, ProviderError):
                self.failures[rid] = result.message
            else:
                self.record([self.entry(rid, result, None)])
            self.progress("generating", finished, len(ids))
            self.check_stop()

        try:
            await generate_many(
                provider,
                [todo[rid] for rid in ids],
                concurrency=self.concurrency,
                on_result=on_result,
                return_errors=True,
            )
        except BaseExceptionGroup as failures:
            if failures.subgroup(DistillCancelled) is not None:
                raise DistillCancelled("distillation stopped; run it again to resume") from None
            raise

    async def collect_batch(self, runner: Any, batch: BatchEntry) -> None:
        """Wait for a batch, journal its answers, and mark it done."""

        def on_status(status: Any) -> None:
            finished = status.succeeded + status.errored + status.canceled + status.expired
            self.progress("batch", finished, len(batch.request_ids), batch.batch_id)
            self.check_stop()

        collected = await collect_batch(
            runner, self.journal, batch, entry_for=self.entry, on_status=on_status
        )
        self.remember(collected.entries)
        for rid, why in collected.failures.items():
            if rid not in self.generations:
                self.failures[rid] = why

    async def batches(self, runner: Any, todo: dict[str, GenerationRequest]) -> None:
        """Submit ``todo`` in batches of ``batch_size``, one after the other, and collect each."""
        ids = list(todo)
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            self.check_stop()
            # Journaled by submit_batch before waiting: a crash re-attaches, never resubmits.
            entry = await submit_batch(runner, self.journal, [(rid, todo[rid]) for rid in chunk])
            self.sent += len(chunk)
            await self.collect_batch(runner, entry)
