"""Paged reading for previews: the first page of a million-line file opens at once.

:class:`PagedReader` remembers where each line it has passed starts (8 bytes a line), reading
only as far as the page asked for; jumping to a line reads up to it once, later jumps are direct.
JSONL files are paged by byte offset; other kinds are read through :func:`iter_records`.
"""

from __future__ import annotations

from array import array
from itertools import islice
from pathlib import Path
from typing import Any

from ftwizard.datasets.loading import Record, SourceKind, detect_source_kind, iter_records
from ftwizard.errors import InputError
from ftwizard.inputs import MAX_LINE_BYTES, line_too_long, open_input

_BOM = b"\xef\xbb\xbf"


class PagedReader:
    """Random access to the records of a dataset by 1-based line number."""

    def __init__(self, path: str | Path, *, kind: SourceKind | None = None) -> None:
        self.path = Path(path)
        self.kind = kind or detect_source_kind(self.path)
        self._offsets = array("Q", [0])  # _offsets[i] = byte where line i + 1 starts
        self._eof = False

    def _extend_to(self, line: int) -> None:
        """Index line starts up to ``line`` (or the end of the file)."""
        if self._eof or len(self._offsets) > line:
            return
        try:
            with open_input(self.path) as fh:
                fh.seek(self._offsets[-1])
                while len(self._offsets) <= line:
                    size = _line_size(fh)
                    if not size:
                        self._eof = True
                        self._offsets.pop()  # the last start is the end of the file
                        return
                    self._offsets.append(self._offsets[-1] + size)
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}", path=self.path) from exc

    @property
    def known_lines(self) -> int:
        """How many lines have been indexed so far (all of them once ``complete``)."""
        return len(self._offsets) - (0 if self._eof else 1)

    @property
    def complete(self) -> bool:
        """True once the whole file has been indexed."""
        return self._eof

    def page(self, first_line: int, count: int) -> list[Record]:
        """Up to ``count`` records from line ``first_line`` on (blank lines are skipped)."""
        if first_line < 1 or count < 1:
            return []
        if self.kind is not SourceKind.JSONL:
            records = iter_records(self.path, kind=self.kind, on_error="keep")
            return list(islice((r for r in records if r.line >= first_line), count))
        out: list[Record] = []
        line = first_line
        while len(out) < count:
            self._extend_to(line)
            if line > self.known_lines:
                break
            start = self._offsets[line - 1]
            with open_input(self.path) as fh:
                fh.seek(start)
                raw = fh.readline(MAX_LINE_BYTES + 1)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                out.append(Record(line, None, line_too_long(), None))
                line += 1
                continue
            if line == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            out.extend(_parse_line(raw, line))
            line += 1
        return out

    def count_lines(self) -> int:
        """Index the whole file and return its number of lines."""
        self._extend_to(2**62)
        return self.known_lines


def _parse_line(raw: bytes, line: int) -> list[Record]:
    import json

    stripped = raw.strip()
    if not stripped:
        return []
    try:
        return [Record(line, json.loads(stripped.decode("utf-8")), None, stripped)]
    except UnicodeDecodeError:
        return [Record(line, None, "line is not valid UTF-8; re-save the file as UTF-8", stripped)]
    except ValueError as exc:
        return [Record(line, None, f"invalid JSON ({exc})", stripped)]


def _line_size(fh: Any) -> int:
    """The byte length of the next line (0 at the end), read a block at a time."""
    size = 0
    while True:
        chunk = fh.readline(1024 * 1024)
        size += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return size
