"""Writing datasets: JSONL, CSV or Parquet by the output's suffix, always atomically.

Rows are written to a temporary file beside the target and moved into place at the end, so an
interrupted write leaves no half-written file and never touches anything else. In CSV and
Parquet, structured fields (``messages``, ``contents``...) are stored as JSON text, which
:func:`~ftwizard.datasets.loading.iter_records` parses back.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ftwizard.errors import FtwizardError, InputError
from ftwizard.files import check_output_path, write_error

_PARQUET_BATCH = 1024


def write_records(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to ``path`` as CSV (``.csv``), Parquet (``.parquet``) or JSONL (others).

    Returns the number of rows written.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _atomic(p, lambda fh: _write_csv(fh, rows, "\t" if suffix == ".tsv" else ","))
    if suffix in (".parquet", ".pq"):
        return _write_parquet(p, rows)
    return write_jsonl(p, rows)


def json_default(value: Any) -> Any:
    """JSON for what JSON lacks: bytes (image bytes from a Hugging Face ``Image`` column) as
    base64 text, which the image readers decode again."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` as JSONL atomically; returns the number written."""

    def write(fh: TextIO) -> int:
        n = 0
        for row in rows:
            text = json.dumps(row, ensure_ascii=False, default=json_default)
            try:
                fh.write(text)
            except UnicodeEncodeError:
                # readers refuse lone surrogates, so this is text made on the way (an answer)
                raise InputError(
                    f"row {n + 1} holds a lone UTF-16 surrogate, which UTF-8 cannot store; "
                    "nothing was written",
                    path=path,
                ) from None
            fh.write("\n")
            n += 1
        return n

    return _atomic(Path(path), write)


def _atomic(path: Path, write: Any) -> int:
    check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            n = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _write_csv(fh: TextIO, rows: Iterable[dict[str, Any]], delimiter: str) -> int:
    writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
    header: list[str] | None = None
    n = 0
    for row in rows:
        if header is None:
            header = list(row)
            writer.writerow(header)
        extra = [k for k in row if k not in header]
        if extra:
            raise InputError(
                f"row {n + 1} has field(s) {', '.join(map(repr, extra))} that the first row "
                "lacks; CSV needs the same fields in every row: write JSONL instead",
                field=extra[0],
            )
        writer.writerow([_cell(row.get(k)) for k in header])
        n += 1
    return n


_IMAGE_COLUMNS = frozenset({"images", "image", "image_path"})


def _json_columns(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for n, row in enumerate(rows, start=1):
        out = {
            k: v
            if v is None or isinstance(v, str | int | float | bool) or k in _IMAGE_COLUMNS
            else json.dumps(v, ensure_ascii=False)
            for k, v in row.items()
        }
        if _IMAGE_COLUMNS.intersection(out):
            # Image columns hold the image bytes (Hugging Face's Image struct), never bare paths
            from ftwizard.datasets.image_conversion import embedded

            for key in _IMAGE_COLUMNS.intersection(out):
                if out[key] is not None:
                    try:
                        out[key] = embedded(out[key])
                    except FtwizardError as exc:
                        raise InputError(
                            f"row {n}: {exc}; Parquet embeds every image's bytes. Fix the "
                            "image or leave the example out (validate, then drop invalid lines)",
                            field=key,
                        ) from None
        yield out


def _write_parquet(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError(
            "writing Parquet needs pyarrow; install it with `pip install ftwizard[parquet]`",
            path=path,
        ) from exc
    check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    os.close(fd)
    writer = None
    n = 0
    try:
        batch: list[dict[str, Any]] = []
        for row in _json_columns(rows):
            batch.append(row)
            if len(batch) >= _PARQUET_BATCH:
                writer = _write_batch(pa, pq, writer, tmp, batch)
                n += len(batch)
                batch = []
        if batch or writer is None:
            writer = _write_batch(pa, pq, writer, tmp, batch)
            n += len(batch)
        writer.close()
        os.replace(tmp, path)
    except OSError as exc:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise write_error(exc, path) from None
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _write_batch(pa: Any, pq: Any, writer: Any, tmp: str, batch: list[dict[str, Any]]) -> Any:
    if writer is None:
        table = pa.Table.from_pylist(batch)
        if batch and _IMAGE_COLUMNS.intersection(batch[0]):
            from ftwizard.datasets.image_conversion import hf_features

            meta = {"huggingface": json.dumps(hf_features(batch[0]))}
            table = table.replace_schema_metadata(meta)
        writer = pq.ParquetWriter(tmp, table.schema)
    else:
        try:
            table = pa.Table.from_pylist(batch, schema=writer.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
            raise InputError(
                f"rows change their fields or types partway ({exc}); write JSONL instead"
            ) from exc
    writer.write_table(table)
    return writer
