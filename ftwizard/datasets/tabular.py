"""Reading tabular training data (CSV, Parquet, Hugging Face folders) and renaming columns."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ftwizard.datasets.loading import Record, open_binary
from ftwizard.errors import InputError
from ftwizard.json_input import loads

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


# Fields that are text or, in TRL's conversational style, a message list written as JSON text.
MAYBE_STRUCTURED_FIELDS = frozenset({"prompt", "completion", "chosen", "rejected"})


def iter_csv(p: Path) -> Iterator[Record]:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    with open_binary(p) as raw_fh:
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


def iter_parquet(p: Path) -> Iterator[Record]:
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


def iter_hf(p: Path, split: str | None) -> Iterator[Record]:
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
    if _has_images(datasets, loaded):
        # Arrow rows: Image columns as {"bytes", "path"}, as in Parquet, not decoded to Pillow
        # images (nothing is cast or cached in the user's folder)
        for table in loaded.with_format("arrow").iter(batch_size=1024):
            for item in table.to_pylist():
                row += 1
                yield Record(row, item)
        return
    for batch in loaded.iter(batch_size=1024):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            row += 1
            yield Record(row, dict(zip(keys, values, strict=True)))


def _has_images(datasets: Any, loaded: Any) -> bool:
    return any(
        isinstance(f, datasets.Image) or isinstance(getattr(f, "feature", None), datasets.Image)
        for f in loaded.features.values()
    )


def apply_mapping(
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
                    value = loads(value)
                except ValueError:
                    error = (
                        f"column {key!r} must hold JSON text for the field {name!r}; "
                        "fix the cell or map another column"
                    )
            elif (
                parse_json
                and name in MAYBE_STRUCTURED_FIELDS
                and isinstance(value, str)
                and value.startswith("[{")
            ):
                # plain text that happens to start like JSON stays text
                with contextlib.suppress(ValueError):
                    value = loads(value)
            out[name] = value
        if mapping:
            missing = [col for col in mapping.values() if col not in rec.data]
            if missing:
                error = (
                    f"mapped column(s) {', '.join(map(repr, missing))} not found; "
                    f"available: {', '.join(map(repr, rec.data))}"
                )
        yield Record(rec.line, out if error is None else None, error, rec.raw)
