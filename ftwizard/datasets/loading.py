"""Streamed reading of training data: JSONL, a JSON array, CSV, Parquet and Hugging Face folders.

Everything here yields one :class:`Record` at a time, so a file of any size is read with flat
memory. Records carry the 1-based line number that a user sees in an editor (for a JSON array,
the line where the element starts; for Parquet and Hugging Face folders, the row number), so
every problem found later can point at the exact spot.

The user's file is only ever opened for reading, through :mod:`ftwizard.inputs` (regular files
only; a JSONL line or JSON array element over :data:`~ftwizard.inputs.MAX_LINE_BYTES` is an
error on its line, read without ever holding it whole).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from ftwizard.errors import InputError
from ftwizard.inputs import check_regular, iter_lines, line_too_long, open_input
from ftwizard.json_input import TOO_DEEP, JSONInputError, check_surrogates

_BOM = b"\xef\xbb\xbf"


class SourceKind(StrEnum):
    """How a dataset is stored on disk."""

    JSONL = "jsonl"
    JSON_ARRAY = "json"
    CSV = "csv"
    PARQUET = "parquet"
    HF_DISK = "hf"


@dataclass(slots=True)
class Record:
    """One example as read from disk.

    ``data`` is the parsed value (usually a dict) or ``None`` when the line could not be parsed,
    in which case ``error`` says why. ``raw`` holds the line's bytes for JSONL sources (used to
    copy lines unchanged and to spot exact duplicates cheaply); it is ``None`` for other sources.
    """

    line: int
    data: Any = None
    error: str | None = None
    raw: bytes | None = None

    @property
    def ok(self) -> bool:
        """True when the record was parsed."""
        return self.error is None


OnError = Literal["raise", "keep", "skip"]


def detect_source_kind(path: str | Path) -> SourceKind:
    """Guess how ``path`` is stored, from its suffix and, when ambiguous, its first byte.

    Raises :class:`InputError` for a missing path, an unrelated directory or an unreadable file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found; check the path", path=p)
    if p.is_dir():
        if _is_hf_folder(p):
            return SourceKind.HF_DISK
        raise InputError(
            "is a directory; give a data file (.jsonl, .json, .csv, .parquet) or a folder "
            "written by datasets' save_to_disk",
            path=p,
        )
    suffix = p.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        return SourceKind.CSV
    if suffix in {".parquet", ".pq"}:
        return SourceKind.PARQUET
    first = _first_significant_byte(p)
    if first == b"[":
        return SourceKind.JSON_ARRAY
    return SourceKind.JSONL


def _is_hf_folder(p: Path) -> bool:
    return any((p / name).is_file() for name in ("dataset_info.json", "dataset_dict.json"))


def _first_significant_byte(p: Path) -> bytes:
    try:
        with open_input(p) as fh:
            head = fh.read(4096)
            while head:
                stripped = head.removeprefix(_BOM).lstrip()
                if stripped:
                    return stripped[:1]
                head = fh.read(4096)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=p) from exc
    return b""


def iter_records(
    path: str | Path,
    *,
    kind: SourceKind | str | None = None,
    mapping: Mapping[str, str] | None = None,
    on_error: OnError = "raise",
    split: str | None = None,
) -> Iterator[Record]:
    """Yield the examples in ``path`` one by one, each with its 1-based line number.

    ``kind`` forces the storage kind (default: :func:`detect_source_kind`). ``mapping`` renames
    columns for CSV, Parquet and Hugging Face sources: ``{"prompt": "question"}`` makes the
    column ``question`` appear as the field ``prompt``; unmapped columns are kept as they are.
    Structured fields (``messages``, ``contents``...) stored as JSON text in a cell are parsed.
    ``split`` picks a split of a Hugging Face ``DatasetDict`` folder (default ``train``).

    ``on_error`` decides what a line that cannot be parsed does: ``"raise"`` stops with an
    :class:`InputError` naming the line, ``"keep"`` yields it with ``data=None`` and ``error``
    set (validation uses this to report every bad line), ``"skip"`` drops it silently.
    Blank lines are skipped but still counted, so line numbers match an editor's.
    """
    p = Path(path)
    source = SourceKind(kind) if kind is not None else detect_source_kind(p)
    if source is not SourceKind.HF_DISK and p.is_dir():
        raise InputError("is a directory, not a data file", path=p)
    if not p.exists():
        raise InputError("file not found; check the path", path=p)
    if source is not SourceKind.HF_DISK:
        check_regular(p)
    # The other readers import this module's Record, so they are imported here, not at the top.
    from ftwizard.datasets.json_array import iter_json_array
    from ftwizard.datasets.tabular import apply_mapping, iter_csv, iter_hf, iter_parquet

    if source is SourceKind.JSONL:
        records = _iter_jsonl(p)
    elif source is SourceKind.JSON_ARRAY:
        records = iter_json_array(p)
    elif source is SourceKind.CSV:
        records = apply_mapping(iter_csv(p), mapping, parse_json=True, path=p)
    elif source is SourceKind.PARQUET:
        records = apply_mapping(iter_parquet(p), mapping, parse_json=True, path=p)
    else:
        records = apply_mapping(iter_hf(p, split), mapping, parse_json=True, path=p)
    if source in (SourceKind.JSONL, SourceKind.JSON_ARRAY) and mapping:
        records = apply_mapping(records, mapping, parse_json=False)
    for rec in records:
        if rec.error is not None:
            if on_error == "raise":
                raise InputError(rec.error, path=p, line=rec.line)
            if on_error == "skip":
                continue
        yield rec


def open_binary(p: Path) -> io.BufferedReader:
    """Open a data file for reading: a regular file, or an :class:`InputError` saying why not."""
    return open_input(p)


_DECODER = json.JSONDecoder()


def _iter_jsonl(p: Path) -> Iterator[Record]:
    loads = _DECODER.decode
    with open_binary(p) as fh:
        for lineno, line in iter_lines(fh, p):
            if line is None:
                yield Record(lineno, None, line_too_long(), None)
                continue
            if lineno == 1 and line.startswith(_BOM):
                line = line[3:]
            stripped = line.strip()
            if not stripped:
                continue
            try:
                text = stripped.decode("utf-8")
                data = loads(text)
                check_surrogates(text, data)
            except UnicodeDecodeError:
                yield Record(
                    lineno, None, "line is not valid UTF-8; re-save the file as UTF-8", stripped
                )
                continue
            except RecursionError:
                yield Record(lineno, None, _json_error_message(JSONInputError(TOO_DEEP)), stripped)
                continue
            except ValueError as exc:
                yield Record(lineno, None, _json_error_message(exc), stripped)
                continue
            yield Record(lineno, data, None, stripped)


def _json_error_message(exc: ValueError) -> str:
    if isinstance(exc, JSONInputError):
        where = f"field '{exc.field}' " if exc.field else ""
        return f"{where}{exc.message}"
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"invalid JSON ({exc.msg}, column {exc.colno}); each line must be one complete "
            "JSON object"
        )
    return f"invalid JSON ({exc}); each line must be one complete JSON object"


def count_records(path: str | Path, **kwargs: Any) -> int:
    """Count the examples in ``path`` (parsed or not) without keeping them."""
    kwargs.setdefault("on_error", "keep")
    return sum(1 for _ in iter_records(path, **kwargs))
