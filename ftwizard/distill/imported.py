"""Importing answers a teacher already gave (CSV files) instead of paying for them again.

The answers are matched to the dataset's rows by several key columns; a key column may be a
float (a coordinate, a timestamp) matched within a tolerance. Each matched answer is checked
against the row's ground truth (the grader, or an exact comparison ignoring case and outer
spaces), and only the correct ones are kept: the row's prompt (its images embedded as data
URIs) with the teacher's answer. The result is written (Parquet, JSONL or CSV by suffix) with a
metadata JSON beside it: match rate, the teacher's accuracy, what did not match.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.errors import InputError

_KEY = re.compile(r"^(?P<data>[^=~]+)(?:=(?P<csv>[^~]+))?(?:~(?P<tol>[^~]+))?$")
_MAX_LISTED = 20


class KeyColumn(BaseModel):
    """One key: the dataset's column, the CSV's column, and a tolerance for floats."""

    data: str
    csv: str
    tolerance: float | None = Field(default=None, ge=0)

    @classmethod
    def parse(cls, spec: str) -> KeyColumn:
        """``COLUMN``, ``COLUMN=CSV_COLUMN``, either with ``~TOLERANCE`` (a float key)."""
        match = _KEY.match(spec.strip())
        if not match:
            raise InputError(f"key '{spec}' is not COLUMN[=CSV_COLUMN][~TOLERANCE]", field="--key")
        tol = match.group("tol")
        try:
            tolerance = float(tol) if tol is not None else None
        except ValueError:
            raise InputError(
                f"key '{spec}': tolerance '{tol}' is not a number", field="--key"
            ) from None
        if tolerance is not None and (tolerance < 0 or not math.isfinite(tolerance)):
            raise InputError(f"key '{spec}': the tolerance must be 0 or more", field="--key")
        data = match.group("data").strip()
        return cls(data=data, csv=(match.group("csv") or data).strip(), tolerance=tolerance)


class Unmatched(BaseModel):
    """A dataset row no answer was found for."""

    line: int
    key: dict[str, Any]


class ImportResult(BaseModel):
    """The metadata written beside the imported file."""

    data: str
    answers: list[str]
    output: str
    keys: list[KeyColumn]
    answer_column: str
    grader: str | None
    threshold: float
    rows: int
    answer_rows: int
    matched: int
    match_rate: float
    match_text: str
    unused_answers: int
    ambiguous: int
    graded: int
    correct: int
    teacher_accuracy: float | None
    accuracy_text: str
    kept: int
    output_rows: int
    unmatched: list[Unmatched] = []
    created_at: str


class _Answer(BaseModel):
    exact: tuple[str, ...]
    floats: tuple[float, ...]
    text: str
    where: str
    used: bool = False


def _number(value: Any, *, path: Any, line: int, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"'{value}' is not a number", path=path, line=line, field=field) from None
    if not math.isfinite(number):
        raise InputError(f"'{value}' is not a finite number", path=path, line=line, field=field)
    return number


def _exact(value: Any) -> str:
    # A CSV holds text; "7" in a CSV must match 7 in JSON, and "7.0" too.
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def read_answers(
    files: Sequence[str | Path], keys: Sequence[KeyColumn], answer_column: str
) -> list[_Answer]:
    """Every answer row of the CSV files, in order; a missing column names the file."""
    out: list[_Answer] = []
    for name in files:
        path = Path(name)
        try:
            handle = path.open(encoding="utf-8-sig", newline="")
        except OSError:
            raise InputError("answers file not found", path=path) from None
        with handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            for needed in [answer_column, *(k.csv for k in keys)]:
                if needed not in columns:
                    raise InputError(
                        f"no column '{needed}' (columns: {', '.join(columns)})",
                        path=path,
                        line=1,
                        field=needed,
                    )
            for row in reader:
                line = reader.line_num
                exact = tuple(_exact(row[k.csv]) for k in keys if k.tolerance is None)
                floats = tuple(
                    _number(row[k.csv], path=path, line=line, field=k.csv)
                    for k in keys
                    if k.tolerance is not None
                )
                text = row[answer_column] or ""
                out.append(_Answer(exact=exact, floats=floats, text=text, where=f"{path}:{line}"))
    return out


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


async def import_answers(
    data: str | Path,
    answer_files: Sequence[str | Path],
    output: str | Path,
    *,
    keys: Sequence[KeyColumn],
    answer_column: str = "answer",
    grader: Any | None = None,
    grader_name: str | None = None,
    threshold: float = 1.0,
    keep_fields: Sequence[str] = (),
) -> ImportResult:
    """Match the teacher's CSV answers to ``data``, keep the correct ones, write ``output``."""
    from ftwizard.datasets.loading import iter_records
    from ftwizard.datasets.writing import write_records
    from ftwizard.distill.options import accuracy_text, metadata_path_for
    from ftwizard.distill.prompts import chat_turn, prompt_of
    from ftwizard.files import atomic_write_text, check_output_path
    from ftwizard.graders.samples import answer_of, grading_item
    from ftwizard.providers.media import anchor_images

    if not keys:
        raise InputError("give at least one key column", field="--key")
    out = Path(output)
    check_output_path(out, field="-o")
    answers = read_answers(answer_files, keys, answer_column)
    index: dict[tuple[str, ...], list[_Answer]] = {}
    for answer in answers:
        index.setdefault(answer.exact, []).append(answer)
    float_keys = [k for k in keys if k.tolerance is not None]
    base_dir = Path(data).parent
    matched: list[tuple[int, dict[str, Any], str]] = []
    unmatched: list[Unmatched] = []
    rows = ambiguous = 0
    for rec in iter_records(data):
        if not isinstance(rec.data, dict):
            raise InputError("each row must be a JSON object", path=data, line=rec.line)
        rows += 1
        row = anchor_images(rec.data, base_dir)
        for k in keys:
            if k.data not in row:
                raise InputError("row has no key column", path=data, line=rec.line, field=k.data)
        exact = tuple(_exact(row[k.data]) for k in keys if k.tolerance is None)
        floats = [_number(row[k.data], path=data, line=rec.line, field=k.data) for k in float_keys]
        hits = [
            a
            for a in index.get(exact, [])
            if all(
                abs(a.floats[i] - floats[i]) <= (k.tolerance or 0.0)
                for i, k in enumerate(float_keys)
            )
        ]
        if not hits:
            unmatched.append(Unmatched(line=rec.line, key={k.data: row[k.data] for k in keys}))
            continue
        # Two answers for one row: the nearest (then the first) wins, and it is counted.
        ambiguous += len(hits) > 1
        best = min(
            hits, key=lambda a: sum(abs(x - y) for x, y in zip(a.floats, floats, strict=True))
        )
        best.used = True
        matched.append((rec.line, row, best.text))

    verdicts = await _verdicts(matched, grader, threshold)
    graded = sum(v is not None for v in verdicts)
    correct = sum(bool(v) for v in verdicts)
    kept_rows = []
    for (_, row, text), ok in zip(matched, verdicts, strict=True):
        if ok is None:
            ok = (truth := answer_of(grading_item(row))) is not None and _normal(truth) == _normal(
                text
            )
            graded += 1
            correct += ok
        if ok:
            turns = [chat_turn(m) for m in prompt_of(row)]
            kept = {"messages": [*turns, {"role": "assistant", "content": text}]}
            kept.update({name: row[name] for name in keep_fields if name in row})
            kept_rows.append(kept)
    written = write_records(out, kept_rows)
    result = ImportResult(
        data=str(data),
        answers=[str(f) for f in answer_files],
        output=str(out),
        keys=list(keys),
        answer_column=answer_column,
        grader=grader_name,
        threshold=threshold,
        rows=rows,
        answer_rows=len(answers),
        matched=len(matched),
        match_rate=len(matched) / rows if rows else 0.0,
        match_text=f"{len(matched)} / {rows} rows matched"
        + (f", {100 * len(matched) / rows:.1f} %" if rows else ""),
        unused_answers=sum(not a.used for a in answers),
        ambiguous=ambiguous,
        graded=graded,
        correct=correct,
        teacher_accuracy=correct / graded if graded else None,
        accuracy_text=accuracy_text(correct, graded),
        kept=len(kept_rows),
        output_rows=written,
        unmatched=unmatched[:_MAX_LISTED],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    atomic_write_text(metadata_path_for(out), result.model_dump_json(indent=2))
    return result


async def _verdicts(
    matched: Sequence[tuple[int, dict[str, Any], str]], grader: Any | None, threshold: float
) -> list[bool | None]:
    """With a grader, whether each answer scores at least ``threshold``; else ``None`` each
    (the caller compares with the ground truth)."""
    if grader is None or not matched:
        return [None] * len(matched)
    from ftwizard.graders.results import Sample
    from ftwizard.graders.runner import GraderRunner
    from ftwizard.graders.samples import grading_item

    items = [grading_item(row) for _, row, _ in matched]
    samples = [Sample.from_output(text) for _, _, text in matched]
    with GraderRunner(grader) as runner:
        results = await runner.grade(items, samples)
    return [r.error is None and r.score >= threshold for r in results]


__all__ = ["ImportResult", "KeyColumn", "import_answers", "read_answers"]
