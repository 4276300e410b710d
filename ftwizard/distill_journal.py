"""The relabeling journal: every teacher answer and every submitted batch, written as it happens.

An append-only JSONL file beside the output. Each paid-for answer is appended (and fsynced)
the moment it arrives, and a batch id is appended as soon as the batch exists, so a run that
crashes — or is killed — resumes without asking the teacher for anything it already paid for:
finished answers are read back, and an unfinished batch is re-attached by its id instead of
being submitted again.

Entries are keyed by a request id: a hash of exactly what the teacher was sent (model,
messages, limits), so changing the teacher or its prompt never reuses a stale answer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from ftwizard.errors import InputError


class GenerationEntry(BaseModel):
    """A teacher answer that was paid for."""

    kind: Literal["generation"] = "generation"
    request_id: str
    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
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
        if not self.path.exists():
            return state
        lines = self.path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = _ENTRY.validate_json(line)
            except ValidationError as exc:
                if number == len(lines):
                    break  # the last line was being written when the process died
                raise InputError(
                    f"journal line is not a journal entry ({exc.errors()[0]['msg']}); "
                    "restore the file or remove the line (its rows will be requested again)",
                    path=self.path,
                    line=number,
                ) from None
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+b") as fh:
            _drop_torn_tail(fh)
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())


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
