"""Validate a dataset file: every problem by line, token counts, epochs and cost.

One streaming pass: records are checked as they are read and token counts are computed in
batches, so memory stays flat whatever the file size (only per-example token counts and a hash
per example for duplicate detection are kept).
"""

from __future__ import annotations

import json
import os
from array import array
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.datasets.checks import check_example
from ftwizard.datasets.formats import FORMAT_METHOD, DatasetFormat, detect_format
from ftwizard.datasets.loading import Record, SourceKind, detect_source_kind, iter_records
from ftwizard.datasets.problems import Code, Problem, Severity
from ftwizard.datasets.stats import (
    TokenStats,
    auto_epochs,
    billed_tokens,
    histogram,
    token_stats,
)
from ftwizard.datasets.targets import (
    TARGET_MODELS,
    Backend,
    Method,
    TargetModel,
    resolve_target,
)
from ftwizard.datasets.tokens import TokenCounter, counter_for, message_texts
from ftwizard.pricing import CostEstimate, InferenceCost, inference_cost_per_call, training_cost

_CHUNK = 1024
_COUNT_THREADS = 2
_DETECT_SAMPLE = 200
_SAMPLE_LINES = 20
SHORT_ANSWER_CHARS = 5
RECOMMENDED_MIN_EXAMPLES = {Backend.openai: 50, Backend.vertex: 100}
# Answers are treated as labels (and checked for imbalance) when there are few distinct ones.
_MAX_LABELS = 50
_IMBALANCE_SHARE = 0.7
_IMBALANCE_MIN_EXAMPLES = 20

_Pending = tuple[int, int, list[str], str | None]
"""An example waiting for its token count: line, fixed overhead, texts, final answer."""

Progress = Callable[[int, float | None], None]
"""Called with the number of examples read so far and the fraction of the file read (or None)."""


class ValidationReport(BaseModel):
    """Everything validation found about one file. ``to_json`` gives the CLI's JSON shape."""

    path: str
    format: DatasetFormat
    format_detected: bool = True
    source_kind: SourceKind
    method: Method
    model: str
    backend: Backend
    examples: int = 0
    valid_examples: int = 0
    errors: list[Problem] = Field(default_factory=list)
    warnings: list[Problem] = Field(default_factory=list)
    tokens: TokenStats = Field(default_factory=TokenStats)
    histogram: list[tuple[int, int, int]] = Field(default_factory=list)
    epochs: int = 1
    epochs_auto: bool = True
    billed_tokens_per_epoch: int = 0
    cost: list[CostEstimate] = Field(default_factory=list)
    prompt_tokens_mean: float | None = None
    """Mean tokens per example before its final answer (what a call sends)."""
    answer_tokens_mean: float | None = None
    """Mean tokens of the final answer (what a call returns)."""
    inference: InferenceCost | None = None
    """Cost of one call like an average example, base vs fine-tuned model."""
    invalid_lines: list[int] = Field(default_factory=list)
    validation: ValidationReport | None = None

    @property
    def ok(self) -> bool:
        """True when no errors were found (in this file and its validation file)."""
        return not self.errors and (self.validation is None or self.validation.ok)

    def to_json(self) -> dict[str, Any]:
        """The object ``ftwizard validate --json`` prints."""
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format.value,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
            "tokens": self.tokens.to_json(),
            "cost": [c.to_json() for c in self.cost],
        }
        if self.validation is not None:
            out["validation"] = self.validation.to_json()
        return out


class _Warnings:
    """Warnings grouped by code: one entry per code with its count and first lines."""

    def __init__(self) -> None:
        self._by_code: dict[Code, Problem] = {}

    def add(self, code: Code, message: str, line: int | None) -> None:
        problem = self._by_code.get(code)
        if problem is None:
            self._by_code[code] = Problem(
                line=line,
                code=code,
                message=message,
                severity=Severity.WARNING,
                lines=[line] if line is not None else [],
            )
            return
        problem.count += 1
        if line is not None and len(problem.lines) < _SAMPLE_LINES:
            problem.lines.append(line)

    def problems(self) -> list[Problem]:
        out = []
        for p in self._by_code.values():
            if p.count > 1:
                p.message = f"{p.message} ({p.count} examples)"
            out.append(p)
        return out


def detect_file_format(
    path: str | Path,
    *,
    kind: SourceKind | None = None,
    mapping: Mapping[str, str] | None = None,
) -> DatasetFormat | None:
    """Detect the format of a file from its first examples; ``None`` when nothing matches."""
    sample = []
    for rec in iter_records(path, kind=kind, mapping=mapping, on_error="skip"):
        sample.append(rec.data)
        if len(sample) >= _DETECT_SAMPLE:
            break
    return detect_format(sample)


def validate_file(
    path: str | Path,
    *,
    fmt: DatasetFormat | str | None = None,
    model: str | None = None,
    epochs: int | None = None,
    validation_file: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | str | None = None,
    progress: Progress | None = None,
    is_validation: bool = False,
    compare: bool | None = None,
    threads: int | None = None,
    counter: TokenCounter | None = None,
) -> ValidationReport:
    """Validate ``path`` for training ``model`` (default: a model that fits the format).

    ``threads`` counts tokens on that many worker threads while the file is read (default: two
    when a CPU core is idle, else none); the result is the same either way.

    ``counter`` replaces the model's token counter (for instance one that asks the provider's
    API, whose counts are exact where ours are estimates).

    ``compare`` (default: when no model is named) adds the cost of the other models of the same
    backend that train this method, counted with the same tokens.

    Reports every problem with its 1-based line; counts tokens the cookbook's way with the
    model's tokenizer (labelled estimates when it cannot be loaded); computes the distribution,
    epochs (the cookbook's auto rule when ``epochs`` is None) and the cost. Raises
    :class:`~ftwizard.errors.InputError` only for unusable input (missing file, directory,
    unreadable).
    """
    p = Path(path)
    source = SourceKind(kind) if kind is not None else detect_source_kind(p)
    detected = True
    if fmt is None:
        found = detect_file_format(p, kind=source, mapping=mapping)
        detected = found is not None
        dataset_format = found or DatasetFormat.CHAT
    else:
        dataset_format = DatasetFormat(fmt)
    method = FORMAT_METHOD[dataset_format]
    target = resolve_target(model, method)
    if dataset_format is DatasetFormat.GEMINI and model is None:
        target = resolve_target("gemini-2.5-flash", method)
    if counter is None:
        counter = counter_for(target)

    report = ValidationReport(
        path=str(p),
        format=dataset_format,
        format_detected=detected,
        source_kind=source,
        method=method,
        model=target.name,
        backend=target.backend,
    )
    scan = _scan_file(
        p,
        report,
        target,
        counter,
        source=source,
        mapping=mapping,
        progress=progress,
        threads=threads,
        compare=model is None if compare is None else compare,
    )
    scan.finish(epochs, is_validation=is_validation, has_validation=validation_file is not None)
    if progress is not None:
        progress(report.examples, 1.0)

    if validation_file is not None:
        v = Path(validation_file)
        v_source = detect_source_kind(v)
        report.validation = ValidationReport(
            path=str(v),
            format=dataset_format,
            source_kind=v_source,
            method=method,
            model=target.name,
            backend=target.backend,
        )
        v_scan = _scan_file(
            v,
            report.validation,
            target,
            counter,
            source=v_source,
            mapping=mapping,
            threads=threads,
            train_seen=scan.seen,
        )
        v_scan.finish(1, is_validation=True, has_validation=False)
    return report


def _scan_file(
    p: Path,
    report: ValidationReport,
    target: TargetModel,
    counter: TokenCounter,
    *,
    source: SourceKind,
    mapping: Mapping[str, str] | None,
    progress: Progress | None = None,
    threads: int | None = None,
    compare: bool = False,
    train_seen: _FirstSeen | None = None,
) -> _Scan:
    """Read and check every record of ``p``; the caller finishes the scan."""
    scan = _Scan(report, report.format, target, counter, threads=threads)
    scan.compare = compare
    scan.train_seen = train_seen
    total_bytes = p.stat().st_size if p.is_file() else None
    read_bytes = 0
    try:
        for rec in iter_records(p, kind=source, mapping=mapping, on_error="keep"):
            scan.add(rec)
            if rec.raw is not None:
                read_bytes += len(rec.raw) + 1
            if len(scan.pending) >= _CHUNK:
                scan.flush()
                if progress is not None:
                    fraction = min(1.0, read_bytes / total_bytes) if total_bytes else None
                    progress(scan.examples, fraction)
        scan.flush()
        scan.drain()
    finally:
        scan.close()
    return scan


def spare_cores() -> float:
    """Roughly how many CPU cores are idle now: extra threads only pay off on an idle core.

    Threads cost extra CPU for the hand-offs, so on a machine whose cores are all busy,
    counting in the reading thread finishes sooner.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return float(cores - 1)
    return cores - load


class _FirstSeen:
    """Maps an example's 64-bit hash to the line it first appeared on, in ~24 bytes per example.

    An open-addressing table in two typed arrays: a dict of Python ints would take ~100 bytes
    per example and make memory grow noticeably with the file.
    """

    def __init__(self) -> None:
        self._keys = array("q", bytes(8 * 1024))
        self._lines = array("I", bytes(4 * 1024))
        self._used = 0

    def first_line(self, key: int, line: int) -> int:
        """The line ``key`` was first seen on; records ``line`` when it is new."""
        key = key or 1  # 0 marks an empty slot
        keys = self._keys
        mask = len(keys) - 1
        i = key & mask
        while True:
            found = keys[i]
            if found == 0:
                keys[i] = key
                self._lines[i] = line
                self._used += 1
                if self._used * 2 > len(keys):
                    self._grow()
                return line
            if found == key:
                return self._lines[i]
            i = (i + 1) & mask

    def get(self, key: int) -> int:
        """The line ``key`` was first seen on, or 0 when it was never seen."""
        key = key or 1
        keys = self._keys
        mask = len(keys) - 1
        i = key & mask
        while True:
            found = keys[i]
            if found == 0:
                return 0
            if found == key:
                return self._lines[i]
            i = (i + 1) & mask

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        size = len(old_keys) * 2
        self._keys = array("q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        mask = size - 1
        for key, line in zip(old_keys, old_lines, strict=True):
            if key:
                i = key & mask
                while self._keys[i]:
                    i = (i + 1) & mask
                self._keys[i] = key
                self._lines[i] = line


class _Scan:
    """State of one validation pass."""

    def __init__(
        self,
        report: ValidationReport,
        fmt: DatasetFormat,
        target: TargetModel,
        counter: TokenCounter,
        *,
        threads: int | None = None,
    ) -> None:
        self.report = report
        self.fmt = fmt
        self.target = target
        self.counter = counter
        self.warnings = _Warnings()
        self.pending: list[_Pending] = []
        # Token counting of one chunk overlaps with parsing the next (tiktoken releases the GIL)
        if threads is None:
            threads = _COUNT_THREADS if spare_cores() >= 1 else 0
        self.executor = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ftwizard-tokens")
            if threads > 0 and getattr(counter, "thread_safe", False)
            else None
        )
        self.max_inflight = max(threads, 1)
        self.inflight: deque[tuple[Future[list[int]], list[_Pending]]] = deque()
        self.answer_tokens = 0
        self.prompt_tokens = 0
        self.counted_answers = 0
        self.counts = array("I")
        self.seen = _FirstSeen()
        self.answers: Counter[str] | None = Counter()
        self.invalid: set[int] = set()
        self.answered = 0
        self.examples = 0
        self.compare = False
        self.train_seen: _FirstSeen | None = None
        self.read_error_code = (
            Code.INVALID_JSON
            if report.source_kind in (SourceKind.JSONL, SourceKind.JSON_ARRAY)
            else Code.INVALID_ROW
        )

    def error(self, line: int | None, code: Code, message: str) -> None:
        self.report.errors.append(Problem(line=line, code=code, message=message))
        if line is not None:
            self.invalid.add(line)

    def add(self, rec: Record) -> None:
        self.examples += 1
        line = rec.line
        if rec.error is not None:
            self.error(line, self.read_error_code, rec.error)
            return
        checked = check_example(rec.data, self.fmt)
        for code, message in checked.errors:
            self.error(line, code, message)
        for code, message in checked.warnings:
            self.warnings.add(code, message, line)
        if checked.errors:
            return
        key = (
            hash(rec.raw)
            if rec.raw is not None
            else hash(json.dumps(rec.data, sort_keys=True, ensure_ascii=False))
        )
        first = self.seen.first_line(key, line)
        duplicate = first != line
        if duplicate:
            self.error(
                line,
                Code.DUPLICATE_EXAMPLE,
                f"same example as line {first}; remove it (transform: drop duplicates)",
            )
        if self.train_seen is not None:
            in_training = self.train_seen.get(key)
            if in_training:
                self.warnings.add(
                    Code.VALIDATION_OVERLAP,
                    f"same example as training line {in_training}; an example in both files "
                    "makes validation scores look better than they are. Remove it from one",
                    line,
                )
        answer = checked.answer
        if answer is not None:
            self.answered += 1
            stripped = answer.strip()
            if len(stripped) < SHORT_ANSWER_CHARS:
                self.warnings.add(
                    Code.SHORT_ANSWER,
                    f"very short answer ({len(stripped)} characters); check it is complete, "
                    "or ignore if the answers are labels",
                    line,
                )
            if self.answers is not None and len(stripped) <= 100:
                self.answers[stripped] += 1
                if len(self.answers) > _MAX_LABELS:
                    self.answers = None
            elif self.answers is not None:
                self.answers = None
        if checked.texts is not None:
            overhead, texts = checked.overhead, checked.texts
        else:
            overhead, texts = message_texts(checked.messages)
        self.pending.append((line, overhead, texts, answer))

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        flat: list[str] = []
        for _, _, texts, answer in batch:
            flat.extend(texts)
            if answer is not None:
                flat.append(answer)
        if self.executor is None:
            self._apply(batch, self.counter.count_many(flat))
            return
        self.inflight.append((self.executor.submit(self.counter.count_many, flat), batch))
        while len(self.inflight) > self.max_inflight:
            self._drain_one()

    def _drain_one(self) -> None:
        future, batch = self.inflight.popleft()
        self._apply(batch, future.result())

    def drain(self) -> None:
        """Wait for every chunk still being counted."""
        while self.inflight:
            self._drain_one()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def _apply(self, batch: list[_Pending], counts: list[int]) -> None:
        limit = self.target.max_tokens_per_example
        pos = 0
        approx = "" if self.counter.exact else "about "
        for line, overhead, texts, answer in batch:
            end = pos + len(texts)
            n = overhead + sum(counts[pos:end])
            pos = end
            if answer is not None:
                # the answer's own count rides at the end of its example's texts
                self.answer_tokens += counts[pos]
                self.prompt_tokens += n - counts[pos]
                self.counted_answers += 1
                pos += 1
            self.counts.append(n)
            if limit is not None and n > limit:
                self.error(
                    line,
                    Code.OVER_TOKEN_LIMIT,
                    f"example has {approx}{n:,} tokens, over {self.target.name}'s limit of "
                    f"{limit:,}; it would be truncated. Shorten or split it",
                )

    def finish(self, epochs: int | None, *, is_validation: bool, has_validation: bool) -> None:
        report, target = self.report, self.target
        report.examples = self.examples
        valid = report.examples - len(self.invalid)
        report.valid_examples = valid
        report.invalid_lines = sorted(self.invalid)
        if report.examples == 0:
            self.error(None, Code.EMPTY_FILE, "the file has no examples; add training examples")
        elif not is_validation and valid < target.min_examples:
            self.error(
                None,
                Code.TOO_FEW_EXAMPLES,
                f"{valid} valid example(s); {target.name} needs at least {target.min_examples}. "
                "Add examples or fix the invalid ones",
            )
        if report.method not in target.methods:
            supported = ", ".join(m.value.upper() for m in target.methods)
            self.error(
                None,
                Code.UNSUPPORTED_METHOD,
                f"{target.name} does not train {report.method.value.upper()} (it trains "
                f"{supported}); choose another model or convert the data",
            )
        recommended = RECOMMENDED_MIN_EXAMPLES.get(target.backend)
        if (
            not is_validation
            and recommended
            and report.examples
            and target.min_examples <= valid < recommended
        ):
            self.warnings.add(
                Code.FEW_EXAMPLES,
                f"only {valid} valid examples; {recommended} or more usually train better",
                None,
            )
        limit = target.max_validation_examples if is_validation else target.max_train_examples
        if limit is not None and report.examples > limit:
            self.error(
                None,
                Code.TOO_MANY_EXAMPLES,
                f"{report.examples:,} examples; {target.name} accepts at most {limit:,} in a "
                f"{'validation' if is_validation else 'training'} file. Split or sample it",
            )
        if (
            not is_validation
            and report.method in target.validation_required_for
            and not has_validation
        ):
            self.error(
                None,
                Code.MISSING_VALIDATION_FILE,
                f"{report.method.value.upper()} on {target.name} needs a validation file; "
                "give one, or split this file (ftwizard split)",
            )
        if self.answers and self.answered >= _IMBALANCE_MIN_EXAMPLES and len(self.answers) > 1:
            label, n = self.answers.most_common(1)[0]
            share = n / self.answered
            if share >= _IMBALANCE_SHARE:
                self.warnings.add(
                    Code.IMBALANCED_ANSWERS,
                    f"heavy imbalance: {share:.0%} of answers are {label!r}; the model may learn "
                    "to always answer it. Balance the classes or stratify the split",
                    None,
                )
        if not self.counter.exact:
            self.warnings.add(Code.TOKEN_ESTIMATE, f"token counts are {self.counter.note}", None)
        report.warnings = self.warnings.problems()
        stats = token_stats(self.counts, target.max_tokens_per_example)
        stats.exact = self.counter.exact
        stats.counter = self.counter.name
        stats.note = self.counter.note
        report.tokens = stats
        report.histogram = histogram(self.counts)
        report.epochs_auto = epochs is None
        report.epochs = epochs if epochs is not None else auto_epochs(valid)
        report.billed_tokens_per_epoch = billed_tokens(self.counts, target.max_tokens_per_example)
        if self.counted_answers:
            report.prompt_tokens_mean = self.prompt_tokens / self.counted_answers
            report.answer_tokens_mean = self.answer_tokens / self.counted_answers
            report.inference = inference_cost_per_call(
                target.name, round(report.prompt_tokens_mean), round(report.answer_tokens_mean)
            )
        if not is_validation:
            report.cost = [
                training_cost(
                    target.backend.value,
                    target.name,
                    report.billed_tokens_per_epoch,
                    report.epochs,
                )
            ]
            if self.compare:
                report.cost += [
                    training_cost(
                        other.backend.value,
                        other.name,
                        billed_tokens(self.counts, other.max_tokens_per_example),
                        report.epochs,
                    )
                    for other in TARGET_MODELS.values()
                    if other.name != target.name
                    and report.method in other.methods
                    and other.backend is target.backend
                ]
        report.errors.sort(key=lambda p: (p.line is None, p.line or 0))
