"""Batch mode of the dry run: one batch instead of direct calls, journaled to survive a crash.

:class:`BatchGeneration` is mixed into :class:`ftwizard.dryrun.engine.DryRun`; it submits the
generations as one batch (or re-attaches to a journaled one), waits for it, and reads it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ftwizard.dryrun.cost import batch_price
from ftwizard.dryrun.report import DryRunConfig
from ftwizard.providers.base import ChatProvider, Generation, GenerationRequest, ProviderError
from ftwizard.providers.models import ModelRef

if TYPE_CHECKING:
    from ftwizard.providers.anthropic.batches import BatchStatus
    from ftwizard.providers.batch_journal import (
        BatchCollection,
        BatchEntry,
        BatchRunner,
        GenerationEntry,
        Journal,
    )


class BatchGeneration:
    """The batch-mode half of a dry run (state lives on the :class:`DryRun` it is mixed into)."""

    config: DryRunConfig
    ref: ModelRef
    _cancelled: bool
    _journal_path: Path | None
    _sleep: Callable[[float], Any]
    _batch_status: BatchStatus | None
    _batch_ids: list[str]
    _reused: int
    _batch_waiting: bool

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
                on_result(index_of[rid], generation_of(entry))
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
                on_result(index_of[answer.request_id], generation_of(answer))
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


def batch_finished(status: BatchStatus) -> int:
    return status.succeeded + status.errored + status.canceled + status.expired


def generation_of(entry: GenerationEntry) -> Generation:
    return Generation(
        text=entry.text,
        model=entry.model,
        input_tokens=entry.input_tokens,
        output_tokens=entry.output_tokens,
        finish_reason=entry.finish_reason,
    )
