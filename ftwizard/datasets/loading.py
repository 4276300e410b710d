"""Streamed reading of training data: JSONL, a JSON array, CSV, Parquet and Hugging Face folders.

Everything here yields one :class:`Record` at a time, so a file of any size is read with flat
memory. Records carry the 1-based line number that a user sees in an editor (for a JSON array,
the line where the element starts; for Parquet and Hugging Face folders, the row number), so
every problem found later can point at the exact spot.

The user's file is only ever opened for reading.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from ftwizard.errors import InputError

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20

# Fields that hold structured values; in a CSV cell they are JSON text and are parsed back.
STRUCTURED_FIELDS = frozenset(
    {
        "messages",
        "contents",
        "tools",
        "input",
        "preferred_output",
        "non_preferred_output",
        "systemInstruction",
        "system_instruction",
        "functions",
    }
)


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
        with p.open("rb") as fh:
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
    if source is SourceKind.JSONL:
        records = _iter_jsonl(p)
    elif source is SourceKind.JSON_ARRAY:
        records = _iter_json_array(p)
    elif source is SourceKind.CSV:
        records = _apply_mapping(_iter_csv(p), mapping, parse_json=True, path=p)
    elif source is SourceKind.PARQUET:
        records = _apply_mapping(_iter_parquet(p), mapping, parse_json=True, path=p)
    else:
        records = _apply_mapping(_iter_hf(p, split), mapping, parse_json=True, path=p)
    if source in (SourceKind.JSONL, SourceKind.JSON_ARRAY) and mapping:
        records = _apply_mapping(records, mapping, parse_json=False)
    for rec in records:
        if rec.error is not None:
            if on_error == "raise":
                raise InputError(rec.error, path=p, line=rec.line)
            if on_error == "skip":
                continue
        yield rec


def _open_binary(p: Path) -> io.BufferedReader:
    try:
        return p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=p) from exc


_DECODER = json.JSONDecoder()


def _iter_jsonl(p: Path) -> Iterator[Record]:
    loads = _DECODER.decode
    with _open_binary(p) as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1 and line.startswith(_BOM):
                line = line[3:]
            stripped = line.strip()
            if not stripped:
                continue
            try:
                data = loads(stripped.decode("utf-8"))
            except UnicodeDecodeError:
                yield Record(
                    lineno, None, "line is not valid UTF-8; re-save the file as UTF-8", stripped
                )
                continue
            except ValueError as exc:
                yield Record(lineno, None, _json_error_message(exc), stripped)
                continue
            yield Record(lineno, data, None, stripped)


def _json_error_message(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"invalid JSON ({exc.msg}, column {exc.colno}); each line must be one complete "
            "JSON object"
        )
    return f"invalid JSON ({exc}); each line must be one complete JSON object"


def _iter_json_array(p: Path) -> Iterator[Record]:
    """Stream the elements of a top-level JSON array without reading the whole file.

    Decoding works on a sliding text buffer: an element that does not decode is retried with
    more data until the end of file, where it becomes an error.
    """
    decoder = json.JSONDecoder()
    with _open_binary(p) as raw_fh:
        fh = io.TextIOWrapper(raw_fh, encoding="utf-8-sig", newline="")
        buf = ""
        pos = 0
        line = 1  # line number at buf[pos]
        eof = False

        def fill() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            try:
                chunk = fh.read(_CHUNK)
            except UnicodeDecodeError as exc:
                raise InputError("file is not valid UTF-8; re-save it as UTF-8", path=p) from exc
            if not chunk:
                eof = True
                return False
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def skip_ws() -> None:
            nonlocal pos, line
            while True:
                n = len(buf)
                while pos < n and buf[pos] in " \t\r\n":
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < n or not fill():
                    return

        skip_ws()
        if pos >= len(buf) or buf[pos] != "[":
            raise InputError("expected a JSON array starting with '['", path=p, line=line)
        pos += 1
        expect_value = True
        first = True
        while True:
            skip_ws()
            if pos >= len(buf):
                raise InputError("JSON array is not closed with ']'", path=p, line=line)
            ch = buf[pos]
            if ch == "]" and (first or not expect_value):
                return
            if not expect_value:
                if ch != ",":
                    raise InputError(
                        "expected ',' or ']' between array elements", path=p, line=line
                    )
                pos += 1
                expect_value = True
                continue
            start_line = line
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    # A number cut at the chunk edge decodes early; read on to be sure.
                    if end == len(buf) and fill():
                        continue
                    break
                except json.JSONDecodeError as exc:
                    if fill():
                        continue
                    raise InputError(
                        f"invalid JSON in array element ({exc.msg})", path=p, line=start_line
                    ) from exc
            line += buf.count("\n", pos, end)
            pos = end
            yield Record(start_line, value)
            expect_value = False
            first = False


def _iter_csv(p: Path) -> Iterator[Record]:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    with _open_binary(p) as raw_fh:
        fh = io.TextIOWrapper(raw_fh, encoding="utf-8-sig", newline="")
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            start = reader.line_num + 1
            for row in reader:
                lineno = start
                start = reader.line_num + 1
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    yield Record(
                        lineno,
                        None,
                        f"row has {len(row)} cells but the header has {len(header)}; "
                        "quote cells that contain the delimiter",
                    )
                    continue
                yield Record(lineno, dict(zip(header, row, strict=True)))
        except UnicodeDecodeError as exc:
            raise InputError("file is not valid UTF-8; re-save it as UTF-8", path=p) from exc
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", path=p, line=reader.line_num) from exc


def _iter_parquet(p: Path) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError(
            "reading Parquet needs pyarrow; install it with `pip install ftwizard[parquet]`",
            path=p,
        ) from exc
    try:
        pf = pq.ParquetFile(p)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"not a readable Parquet file: {exc}", path=p) from exc
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for item in batch.to_pylist():
            row += 1
            yield Record(row, item)


def _iter_hf(p: Path, split: str | None) -> Iterator[Record]:
    try:
        import datasets
    except ImportError as exc:
        raise InputError(
            "reading a Hugging Face dataset folder needs the `datasets` package; "
            "install it with `pip install datasets`",
            path=p,
        ) from exc
    try:
        loaded = datasets.load_from_disk(str(p))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, ArrowInvalid...
        raise InputError(f"not a readable Hugging Face dataset folder: {exc}", path=p) from exc
    if isinstance(loaded, datasets.DatasetDict):
        name = split or ("train" if "train" in loaded else next(iter(loaded), None))
        if name is None or name not in loaded:
            raise InputError(f"split {split!r} not found; available: {', '.join(loaded)}", path=p)
        loaded = loaded[name]
    row = 0
    for batch in loaded.iter(batch_size=1024):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            row += 1
            yield Record(row, dict(zip(keys, values, strict=True)))


def _apply_mapping(
    records: Iterator[Record],
    mapping: Mapping[str, str] | None,
    *,
    parse_json: bool,
    path: Path | None = None,
) -> Iterator[Record]:
    """Rename columns; with ``path`` (tabular sources, one set of columns), a mapped column
    missing from the first row is unusable input rather than an error on every row."""
    rename = {col: field for field, col in (mapping or {}).items()}
    first = True
    for rec in records:
        if rec.error is not None or not isinstance(rec.data, dict):
            yield rec
            continue
        if first and path is not None and mapping:
            missing = [col for col in mapping.values() if col not in rec.data]
            if missing:
                raise InputError(
                    f"mapped column(s) {', '.join(map(repr, missing))} not found; "
                    f"the columns are {', '.join(map(repr, rec.data))}",
                    path=path,
                    field=missing[0],
                )
        first = False
        out: dict[str, Any] = {}
        error = None
        for key, value in rec.data.items():
            name = rename.get(key, key)
            if parse_json and name in STRUCTURED_FIELDS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    error = (
                        f"column {key!r} must hold JSON text for the field {name!r}; "
                        "fix the cell or map another column"
                    )
            out[name] = value
        if mapping:
            missing = [col for col in mapping.values() if col not in rec.data]
            if missing:
                error = (
                    f"mapped column(s) {', '.join(map(repr, missing))} not found; "
                    f"available: {', '.join(map(repr, rec.data))}"
                )
        yield Record(rec.line, out if error is None else None, error, rec.raw)


def count_records(path: str | Path, **kwargs: Any) -> int:
    """Count the examples in ``path`` (parsed or not) without keeping them."""
    kwargs.setdefault("on_error", "keep")
    return sum(1 for _ in iter_records(path, **kwargs))
