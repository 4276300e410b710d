"""The streaming scan behind :func:`ftwizard.datasets.validation.validate_file`.

:class:`Scan` checks records as they are read and counts their tokens in batches (on a spare
core when there is one); :class:`FirstSeen` remembers, in flat arrays, the first line of each
example's hash for duplicate detection.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ftwizard.datasets.checks import check_example
from ftwizard.datasets.first_seen import FirstSeen
from ftwizard.datasets.formats import DatasetFormat
from ftwizard.datasets.images import may_hold_images
from ftwizard.datasets.loading import Record, SourceKind
from ftwizard.datasets.problems import Code, Problem, Severity
from ftwizard.datasets.stats import (
    auto_epochs,
    billed_tokens,
    histogram,
    token_stats,
)
from ftwizard.datasets.targets import (
    TARGET_MODELS,
    Backend,
    TargetModel,
)
from ftwizard.datasets.tokens import TokenCounter, counter_for, message_texts
from ftwizard.pricing import inference_cost_per_call, training_cost

if TYPE_CHECKING:
    from ftwizard.datasets.image_checks import ImageChecker
    from ftwizard.datasets.validation import ValidationReport

_COUNT_THREADS = 2
_SAMPLE_LINES = 20
SHORT_ANSWER_CHARS = 5
RECOMMENDED_MIN_EXAMPLES = {Backend.openai: 50, Backend.vertex: 100}
# Answers are treated as labels (and checked for imbalance) when there are few distinct ones.
_MAX_LABELS = 50
_IMBALANCE_SHARE = 0.7
_IMBALANCE_MIN_EXAMPLES = 20


def _digest(value: object) -> str:
    """JSON stand-in for values JSON cannot hold (image bytes from parquet): their digest."""
    if isinstance(value, bytes | bytearray):
        return hashlib.blake2b(value, digest_size=16).hexdigest()
    return repr(value)


_Pending = tuple[int, int, list[str], str | None]
"""An example waiting for its token count: line, fixed overhead, texts, final answer."""


class _Warnings:
    """Warnings grouped by code: one entry per code with its count and first lines."""

    def __init__(self) -> None:
        self._by_code: dict[Code, Problem] = {}

    def add(self, code: Code, message: str, line: int | None, field: str | None = None) -> None:
        problem = self._by_code.get(code)
        if problem is None:
            self._by_code[code] = Problem(
                line=line,
                code=code,
                message=message,
                severity=Severity.WARNING,
                lines=[line] if line is not None else [],
                field=field,
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


class Scan:
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
        self.seen = FirstSeen()
        self.answers: Counter[str] | None = Counter()
        self.invalid: set[int] = set()
        self.answered = 0
        self.examples = 0
        self.compare = False
        # Per-example counts in the other encodings of the compared models, by encoding name:
        # a price row for a cl100k model must not be priced from o200k counts.
        self.other_counters: dict[str, TokenCounter] = {}
        self.other_counts: dict[str, array[int]] = {}
        self.train_seen: FirstSeen | None = None
        # Created at the first example that may hold an image: text-only files never pay for it.
        self.image_checker: ImageChecker | None = None
        self.max_pixels: int | None = None
        self.read_error_code = (
            Code.INVALID_JSON
            if report.source_kind in (SourceKind.JSONL, SourceKind.JSON_ARRAY)
            else Code.INVALID_ROW
        )

    def error(self, line: int | None, code: Code, message: str, field: str | None = None) -> None:
        self.report.errors.append(Problem(line=line, code=code, message=message, field=field))
        if line is not None:
            self.invalid.add(line)

    def add(self, rec: Record) -> None:
        self.examples += 1
        line = rec.line
        if rec.error is not None:
            self.error(line, self.read_error_code, rec.error)
            return
        checked = check_example(rec.data, self.fmt, backend=self.target.backend)
        for code, message in checked.errors:
            self.error(line, code, message)
        for code, message in checked.warnings:
            self.warnings.add(code, message, line)
        image_tokens = 0
        # An example that passed the plain-chat check holds only text: skip scanning its line
        if checked.texts is None and may_hold_images(rec.raw, rec.data):
            found = self._images().check(rec.data)
            for code, field, message in found.errors:
                self.error(line, code, f"{field}: {message}" if field else message, field)
            warned: set[Code] = set()
            for code, field, message in found.warnings:
                if code not in warned:  # one count per example, however many images it has
                    warned.add(code)
                    self.warnings.add(code, message, line, field)
            if found.errors:
                return
            image_tokens = found.tokens
        if checked.errors:
            return
        key = (
            hash(rec.raw)
            if rec.raw is not None
            else hash(json.dumps(rec.data, sort_keys=True, ensure_ascii=False, default=_digest))
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
        self.pending.append((line, overhead + image_tokens, texts, answer))

    def _images(self) -> ImageChecker:
        if self.image_checker is None:
            from pathlib import Path

            from ftwizard.datasets.image_checks import ImageChecker

            self.image_checker = ImageChecker(
                self.target.backend.value,
                self.target.name,
                base_dir=Path(self.report.path).parent,
                max_pixels=self.max_pixels,
            )
        return self.image_checker

    def compare_with(self, others: list[TargetModel]) -> None:
        """Also count every example in the encodings of ``others`` that differ from ours."""
        self.compare = True
        for other in others:
            enc = other.encoding
            if enc and enc != self.target.encoding and enc not in self.other_counters:
                self.other_counters[enc] = counter_for(other)
                self.other_counts[enc] = array("I")

    def compare_targets(self) -> list[TargetModel]:
        """The models whose cost rows are added beside the target's."""
        return [
            other
            for other in TARGET_MODELS.values()
            if other.name != self.target.name
            and self.report.method in other.methods
            and other.backend is self.target.backend
        ]

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        flat: list[str] = []
        for _, _, texts, answer in batch:
            flat.extend(texts)
            if answer is not None:
                flat.append(answer)
        for enc, other in self.other_counters.items():
            counts, pos, out = other.count_many(flat), 0, self.other_counts[enc]
            for _, overhead, texts, answer in batch:
                out.append(overhead + sum(counts[pos : pos + len(texts)]))
                pos += len(texts) + (answer is not None)
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
        if self.image_checker is not None:
            self.image_checker.finish(report, target, self.warnings.add)
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
                        billed_tokens(
                            self.other_counts.get(other.encoding or "", self.counts),
                            other.max_tokens_per_example,
                        ),
                        report.epochs,
                    )
                    for other in self.compare_targets()
                ]
        report.errors.sort(key=lambda p: (p.line is None, p.line or 0))
