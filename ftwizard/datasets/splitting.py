"""Deterministic, seeded train/validation splits.

Two streaming passes: the first notes each example's stratum and drops exact duplicates (so no
example can land on both sides); the second writes each kept example to its side. The same
input, share and seed always give the same split.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.datasets.fields import field_value
from ftwizard.datasets.loading import Record, SourceKind, iter_records
from ftwizard.datasets.writing import json_default, write_jsonl
from ftwizard.errors import InputError

MISSING_STRATUM = "<missing>"

StratumOf = Callable[[Any], str]


class SplitResult(BaseModel):
    """What ``split_file`` wrote."""

    train_path: str
    validation_path: str
    train_examples: int
    validation_examples: int
    duplicates_dropped: int = 0
    invalid_dropped: list[int] = Field(default_factory=list)
    seed: int
    stratify: str | None = None
    strata: dict[str, dict[str, int]] = Field(default_factory=dict)


def parse_val(text: str) -> float | int:
    """``"0.1"`` is a share of the examples, ``"50"`` a count; anything else is an error."""
    try:
        if text.strip().isdigit():
            count = int(text)
            if count < 1:
                raise ValueError
            return count
        share = float(text)
    except ValueError:
        raise InputError(
            f"--val {text!r} must be a share between 0 and 1 (e.g. 0.1) or a count (e.g. 50)",
            field="val",
        ) from None
    if not 0 < share < 1:
        raise InputError(f"--val {text} must be between 0 and 1 when it is a share", field="val")
    return share


def stratum_by_field(path: str) -> StratumOf:
    """Stratify on the value of a (dotted) field."""

    def of(data: Any) -> str:
        value = field_value(data, path)
        if value is None:
            return MISSING_STRATUM
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    return of


def example_key(rec: Record) -> bytes:
    """A digest that is equal for equal examples, whatever their key order or spacing."""
    canonical = json.dumps(
        rec.data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=json_default
    )
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).digest()


def allocate(sizes: Mapping[str, int], n_val: int) -> dict[str, int]:
    """Split ``n_val`` across strata in proportion to their sizes (largest remainder)."""
    total = sum(sizes.values())
    exact = {k: n_val * n / total for k, n in sizes.items()}
    quota = {k: math.floor(v) for k, v in exact.items()}
    left = n_val - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - quota[k]), k))[:left]:
        quota[k] += 1
    return quota


def plan_split(
    strata: list[str], val: float | int, seed: int
) -> tuple[set[int], dict[str, dict[str, int]]]:
    """Pick the validation indices: seeded, stratified, neither side empty."""
    n = len(strata)
    if n < 2:
        raise InputError(f"need at least 2 distinct valid examples to split, found {n}")
    n_val = round(n * val) if isinstance(val, float) else val
    n_val = min(max(n_val, 1), n - 1)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(strata):
        groups[s].append(i)
    quota = allocate({k: len(v) for k, v in groups.items()}, n_val)
    rng = random.Random(seed)
    chosen: set[int] = set()
    summary: dict[str, dict[str, int]] = {}
    for key in sorted(groups):
        members = groups[key][:]
        rng.shuffle(members)
        chosen.update(members[: quota[key]])
        summary[key] = {"train": len(members) - quota[key], "validation": quota[key]}
    return chosen, summary


def split_file(
    input_path: str | Path,
    out_dir: str | Path,
    *,
    val: float | int,
    seed: int = 0,
    stratify: str | None = None,
    stratum_of: StratumOf | None = None,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
) -> SplitResult:
    """Split ``input_path`` into ``out_dir/train.jsonl`` and ``out_dir/validation.jsonl``.

    ``val`` is a share (0 < val < 1) or a count. ``stratify`` names a (dotted) field whose
    values keep their proportions on both sides; ``"topic"`` uses the field ``topic`` when
    examples have one, otherwise topics computed from the text. Lines that cannot be parsed and
    exact duplicates are left out (and reported).
    """
    src, out = Path(input_path), Path(out_dir)
    if stratum_of is None and stratify is not None:
        stratum_of = _stratum_for(src, stratify, mapping, kind)
    strata: list[str] = []
    seen: set[bytes] = set()
    duplicates = 0
    invalid: list[int] = []
    for rec in iter_records(src, kind=kind, mapping=mapping, on_error="keep"):
        if rec.error is not None:
            invalid.append(rec.line)
            continue
        key = example_key(rec)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        strata.append(stratum_of(rec.data) if stratum_of else "")
    seen.clear()
    chosen, summary = plan_split(strata, val, seed)

    def rows(validation: bool) -> Iterator[dict[str, Any]]:
        index = -1
        kept: set[bytes] = set()
        for rec in iter_records(src, kind=kind, mapping=mapping, on_error="skip"):
            key = example_key(rec)
            if key in kept:
                continue
            kept.add(key)
            index += 1
            if (index in chosen) == validation:
                yield rec.data

    out.mkdir(parents=True, exist_ok=True)
    train_path, val_path = out / "train.jsonl", out / "validation.jsonl"
    if src.resolve() in (train_path.resolve(), val_path.resolve()):
        raise InputError("the output folder holds the input file; choose another -o", path=out)
    try:
        n_train = write_jsonl(train_path, rows(False))
        n_val = write_jsonl(val_path, rows(True))
    except OSError as exc:
        raise InputError(f"cannot write the split: {exc.strerror or exc}", path=out) from exc
    return SplitResult(
        train_path=str(train_path),
        validation_path=str(val_path),
        train_examples=n_train,
        validation_examples=n_val,
        duplicates_dropped=duplicates,
        invalid_dropped=invalid,
        seed=seed,
        stratify=stratify,
        strata=summary if stratify else {},
    )


def _stratum_for(
    src: Path, stratify: str, mapping: Mapping[str, str] | None, kind: SourceKind | None
) -> StratumOf:
    if stratify != "topic":
        return stratum_by_field(stratify)
    has_field = any(
        isinstance(r.data, dict) and "topic" in r.data
        for _, r in zip(
            range(50), iter_records(src, kind=kind, mapping=mapping, on_error="skip"), strict=False
        )
    )
    if has_field:
        return stratum_by_field("topic")
    from ftwizard.datasets.topics import topic_assigner

    return topic_assigner(src, mapping=mapping, kind=kind)
