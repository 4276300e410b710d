"""A journal of paid-for answers and submitted batches, shared by distillation and the dry run.

An append-only JSONL file. Each paid-for answer is appended (and fsynced) the moment it
arrives, and a batch id is appended as soon as the batch exists, so a run that crashes — or is
killed — resumes without paying for anything twice: finished answers are read back, and an
unfinished batch is re-attached by its id instead of being submitted again.

Entries are keyed by a request id chosen by the caller (distillation: a hash of exactly what
the teacher was sent; the dry run: that hash plus the sample's index), which is also the
batch item's ``custom_id``, so a journal never hands a stale answer to a changed request.

:func:`submit_batch` and :func:`collect_batch` are the one way both callers run a batch
(Anthropic Message Batches, or the OpenAI Batch API for the dry run) against a journal:
submit, journal the id before anything else can fail, wait, journal the answers and mark the
batch done.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal, Protocol

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from ftwizard.errors import InputError
from ftwizard.files import output_target, write_error
from ftwizard.inputs import iter_lines, line_too_long, open_input
from ftwizard.providers.base import Generation, GenerationRequest

if TYPE_CHECKING:
    from ftwizard.providers.anthropic.batches import BatchItemResult, BatchStatus


class GenerationEntry(BaseModel):
    """An answer that was paid for."""

    kind: Literal["generation"] = "generation"
    request_id: str
    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    # The dry run counts truncated answers; older journals lack the field.
    finish_reason: str | None = None
    batch_id: str | None = None
    cost_usd: float | None = None


class BatchEntry(BaseModel):
    """A Message Batch that was created, with the requests it carries."""

    kind: Literal["batch"] = "batch"
    batch_id: str
    request_ids: list[str]
    model: str


class BatchDoneEntry(BaseModel):
    """A batch whose results have all been read back into the journal."""

    kind: Literal["batch_done"] = "batch_done"
    batch_id: str


JournalEntry = Annotated[GenerationEntry | BatchEntry | BatchDoneEntry, Field(discriminator="kind")]
_ENTRY: TypeAdapter[JournalEntry] = TypeAdapter(JournalEntry)


class JournalState(BaseModel):
    """What a journal says has already happened."""

    generations: dict[str, GenerationEntry] = {}
    open_batches: dict[str, BatchEntry] = {}
    batch_ids: list[str] = []


class Journal:
    """Append-only JSONL of :data:`JournalEntry`, fsynced after every append."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> JournalState:
        """Read the journal; a torn last line (a crash mid-write) is ignored.

        A bad line anywhere else means the file was edited or corrupted: an
        :class:`InputError` names it rather than silently paying for those rows again.
        """
        state = JournalState()
        if not self.path.exists() and not self.path.is_symlink():
            return state
        pending: InputError | None = None
        with open_input(self.path, field="--journal") as handle:
            for number, raw in iter_lines(handle, self.path):
                if pending is not None:
                    raise pending  # a bad line that was not the last one
                if raw is None:
                    pending = InputError(line_too_long(), path=self.path, line=number)
                    continue
                if not raw.strip():
                    continue
                try:
                    entry = _ENTRY.validate_json(raw)
                except ValidationError as exc:
                    # Fine only as an unfinished last line: being written when the process died.
                    pending = InputError(
                        f"journal line is not a journal entry ({exc.errors()[0]['msg']}); "
                        "restore the file or remove the line (its rows will be requested "
                        "again)",
                        path=self.path,
                        line=number,
                    )
                    if raw.endswith(b"\n"):
                        raise pending from None
                    continue
                if isinstance(entry, GenerationEntry):
                    state.generations[entry.request_id] = entry
                elif isinstance(entry, BatchEntry):
                    state.open_batches[entry.batch_id] = entry
                    state.batch_ids.append(entry.batch_id)
                else:
                    state.open_batches.pop(entry.batch_id, None)
        return state

    def append(self, entries: Iterable[GenerationEntry | BatchEntry | BatchDoneEntry]) -> None:
        """Append ``entries`` and fsync, so they survive a crash right after."""
        text = "".join(e.model_dump_json() + "\n" for e in entries)
        if not text:
            return
        target = output_target(self.path, field="--journal")  # a regular file, never a FIFO
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a+b") as fh:
                _drop_torn_tail(fh)
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_error(exc, self.path) from None


def _drop_torn_tail(fh: BinaryIO) -> None:
    """Cut a last line left unfinished by a crash, so appends start on a fresh line."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return
    fh.seek(end - 1)
    if fh.read(1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - 65536)
        fh.seek(start)
        chunk = fh.read(position - start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            fh.truncate(start + cut + 1)
            return
        position = start
    fh.truncate(0)


def request_digest(request: GenerationRequest) -> str:
    """40 hex digits of a hash of exactly what a request sends (model, messages, limits)."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


# --- batches against a journal ----------------------------------------------------------------


class BatchCollection(BaseModel):
    """What one ended batch gave back: the journaled answers, and why the others got none."""

    entries: list[GenerationEntry] = []
    failures: dict[str, str] = {}


EntryFactory = Callable[[str, Generation, str], GenerationEntry]
StatusHook = Callable[["BatchStatus"], None]


class BatchRunner(Protocol):
    """What both batch APIs offer: ``AnthropicBatchRunner`` and ``OpenAIBatchRunner``."""

    async def submit(self, requests: Iterable[tuple[str, GenerationRequest]]) -> str: ...

    async def wait(
        self,
        batch_id: str,
        *,
        on_status: StatusHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> BatchStatus: ...

    async def results(self, batch_id: str) -> dict[str, BatchItemResult]: ...

    async def cancel(self, batch_id: str) -> BatchStatus: ...


async def submit_batch(
    runner: BatchRunner,
    journal: Journal | None,
    items: Sequence[tuple[str, GenerationRequest]],
) -> BatchEntry:
    """Create a batch of ``(request_id, request)`` items and journal its id at once.

    Journaled before anything else happens: from here on a crash re-attaches to the batch
    (:func:`collect_batch` on the journal's ``open_batches``), never pays for a second one.
    ``journal=None`` journals nothing: the batch runs, but a crash cannot re-attach to it.
    """
    batch_id = await runner.submit(items)
    entry = BatchEntry(
        batch_id=batch_id, request_ids=[rid for rid, _ in items], model=items[0][1].model
    )
    if journal is not None:
        journal.append([entry])
    return entry


async def collect_batch(
    runner: BatchRunner,
    journal: Journal | None,
    batch: BatchEntry,
    *,
    entry_for: EntryFactory,
    on_status: StatusHook | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BatchCollection:
    """Wait for ``batch`` to end, journal its answers and mark it done, in one fsynced append.

    ``entry_for(request_id, generation, batch_id)`` makes (and prices) each answer's entry.
    Items that errored, were canceled or expired are returned in ``failures``; a rerun on the
    same journal asks for them again, in a new batch.
    """
    await runner.wait(batch.batch_id, on_status=on_status, sleep=sleep)
    outcomes = await runner.results(batch.batch_id)
    collected = BatchCollection()
    for rid in batch.request_ids:
        outcome = outcomes.get(rid)
        if outcome is not None and outcome.generation is not None:
            collected.entries.append(entry_for(rid, outcome.generation, batch.batch_id))
        else:
            why = outcome.error if outcome is not None else "missing from the batch results"
            collected.failures[rid] = f"batch {batch.batch_id}: {why or 'no answer'}"
    if journal is not None:
        journal.append([*collected.entries, BatchDoneEntry(batch_id=batch.batch_id)])
    return collected


__all__ = [
    "BatchCollection",
    "BatchDoneEntry",
    "BatchEntry",
    "BatchRunner",
    "GenerationEntry",
    "Journal",
    "JournalEntry",
    "JournalState",
    "collect_batch",
    "request_digest",
    "submit_batch",
]


def batch_runner_for(provider: Any, *, poll_interval_s: float) -> Any:
    """The batch API runner for a provider: Anthropic Message Batches or the OpenAI Batch API.

    An OpenAI-compatible server gets the OpenAI runner too: it is the user's explicit choice,
    and a server without ``/v1/batches`` answers with an error that says so. Raises
    :class:`InputError` for any other provider (Vertex, local), which has no batch API.
    """
    from ftwizard.providers.anthropic.batches import AnthropicBatchRunner
    from ftwizard.providers.anthropic.chat import AnthropicChatProvider
    from ftwizard.providers.openai.batches import OpenAIBatchRunner
    from ftwizard.providers.openai.chat import OpenAIChatProvider

    if isinstance(provider, AnthropicChatProvider):
        return AnthropicBatchRunner(provider, poll_interval_s=poll_interval_s)
    if isinstance(provider, OpenAIChatProvider):
        return OpenAIBatchRunner(provider, poll_interval_s=poll_interval_s)
    raise InputError(
        f"batch mode is available for anthropic: and openai: models, not '{provider.name}'",
        field="batch",
    )
