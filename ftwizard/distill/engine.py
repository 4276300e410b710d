"""Distillation: relabel prompts with a teacher, keep only the answers the grader accepts.

The dataset step's optional branch. :func:`estimate_distill_cost` says what a run will cost
before anything is spent; :func:`run_distill` generates the teacher's answers (Anthropic
Message Batches for bulk at half price, direct calls otherwise, any OpenAI-compatible server
directly), grades them against each row's ground truth, keeps the rows scoring at least the
threshold, and writes the new training file (JSONL or Parquet, by suffix) and a metadata file
beside it. Every paid-for answer goes to a journal first (``ftwizard/distill/journal.py``), so
a crashed or stopped run resumes without paying twice.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ftwizard.distill.generation import (
    DistillCancelled,
    DistillProgress,
    ProgressHook,
    StopHook,
    TeacherRun,
)
from ftwizard.distill.journal import GenerationEntry, Journal
from ftwizard.distill.prompts import (
    MergeSummary,
    SourceRow,
    read_source_rows,
    request_id,
    row_key,
    teacher_request,
    training_row,
)
from ftwizard.errors import InputError
from ftwizard.providers.base import GenerationRequest
from ftwizard.providers.models import ModelRef
from ftwizard.providers.retry import RetryPolicy

# Message Batches accept up to 100,000 requests; smaller batches finish (and are journaled)
# sooner, so less is waiting on one remote job.
DEFAULT_BATCH_SIZE = 10_000
# Characters per token, for estimates made before any tokenizer or call.
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
_MAX_FAILURES_LISTED = 50


class DistillOptions(BaseModel):
    """How a relabeling run is done (secret-free: a session can store it)."""

    teacher: ModelRef
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float = Field(default=120.0, gt=0)
    threshold: float = 1.0
    mode: Literal["auto", "batch", "direct"] = "auto"
    batch_min_rows: int = Field(default=100, ge=1)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=100_000)
    poll_interval_s: float = Field(default=30.0, ge=0)
    system_prompt: str | None = None
    context_field: str | None = "context"
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = None
    concurrency: int = Field(default=8, ge=1)
    keep_fields: list[str] = []
    merge_into: Path | None = None
    key_columns: list[str] = []
    response_field: str = "teacher_response"
    drop_unmatched: bool = False
    expected_output_tokens: int = Field(default=256, ge=1)


class DistillEstimate(BaseModel):
    """What a run would request and cost; ``usd_*`` are ``None`` when the price is unknown."""

    teacher: str
    rows: int
    requests: int
    already_paid: int
    to_request: int
    batch: bool
    input_tokens: int
    output_tokens_expected: int
    output_tokens_max: int
    usd_expected: float | None
    usd_max: float | None
    basis: str


class RowFailure(BaseModel):
    """A row the teacher produced no answer for."""

    line: int
    message: str


class DistillResult(BaseModel):
    """The metadata of a run, written beside the training file."""

    teacher: str
    teacher_kind: str
    mode: Literal["batch", "direct"]
    data: str
    output: str
    journal: str
    grader: str | None
    threshold: float
    n: int
    answered: int
    failed: int
    graded: int
    correct: int
    kept: int
    teacher_accuracy: float | None
    accuracy_text: str
    grade_errors: int
    reused: int
    requests_sent: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cost_usd_this_run: float | None
    batch_ids: list[str]
    output_rows: int
    merge: MergeSummary | None = None
    failures: list[RowFailure] = []
    created_at: str

    def to_cli_json(self) -> dict[str, object]:
        """The object ``ftwizard distill --json`` prints."""
        return {
            "n": self.n,
            "kept": self.kept,
            "teacher_accuracy": self.teacher_accuracy,
            "cost_usd": self.cost_usd,
            "failed": self.failed,
            "reused": self.reused,
            "output": self.output,
        }


def accuracy_text(correct: int, graded: int) -> str:
    """The teacher's accuracy the way practitioners write it: ``318 / 377 correct, 84.4 %``."""
    if graded == 0:
        return "0 / 0 correct"
    return f"{correct} / {graded} correct, {100 * correct / graded:.1f} %"


def journal_path_for(output: str | Path) -> Path:
    """The default journal beside ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".journal.jsonl")


def metadata_path_for(output: str | Path) -> Path:
    """The metadata file beside ``output``."""
    out = Path(output)
    return out.with_name(out.name + ".meta.json")


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _uses_batch(options: DistillOptions, to_request: int) -> bool:
    if options.mode == "batch":
        return True
    if options.mode == "direct":
        return False
    # Automatically only where a batch API surely exists: not on third-party servers.
    teacher = options.teacher
    hosted = teacher.provider == "anthropic" or (
        teacher.provider == "openai" and teacher.compatible_base_url() is None
    )
    return hosted and to_request >= options.batch_min_rows


def _has_batch_api(options: DistillOptions) -> bool:
    """Whether the teacher speaks a batch API: Anthropic Message Batches or OpenAI's."""
    return options.teacher.provider in ("anthropic", "openai")


def _check_mode(options: DistillOptions) -> None:
    if options.mode == "batch" and not _has_batch_api(options):
        raise InputError(
            "batch mode uses Anthropic Message Batches or the OpenAI Batch API; "
            f"a {options.teacher.provider}: teacher runs in direct mode",
            field="mode",
        )


def _requests(
    rows: Sequence[SourceRow], options: DistillOptions
) -> tuple[list[str], dict[str, GenerationRequest]]:
    ids: list[str] = []
    unique: dict[str, GenerationRequest] = {}
    for row in rows:
        request = teacher_request(
            row,
            options.teacher.name,
            system_prompt=options.system_prompt,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
        )
        rid = request_id(request)
        ids.append(rid)
        unique.setdefault(rid, request)
    return ids, unique


def estimate_distill_cost(
    data: str | Path, options: DistillOptions, *, journal: str | Path | None = None
) -> DistillEstimate:
    """What relabeling ``data`` would cost, before anything is spent.

    Input tokens are estimated from characters (about 4 per token); the expected output is
    the length of each row's existing answer when it has one, else
    ``options.expected_output_tokens``; the maximum is ``max_tokens`` per request. Answers
    already in the journal are not counted again.
    """
    from ftwizard.graders.samples import answer_of
    from ftwizard.pricing import teacher_cost
    from ftwizard.providers.anthropic.chat import DEFAULT_MAX_TOKENS

    rows = list(read_source_rows(data, context_field=options.context_field))
    ids, unique = _requests(rows, options)
    done = set(Journal(journal).load().generations) if journal is not None else set()
    todo = [rid for rid in unique if rid not in done]
    first_row = {}
    for row, rid in zip(rows, ids, strict=True):
        first_row.setdefault(rid, row)
    input_tokens = expected = 0
    for rid in todo:
        request = unique[rid]
        input_tokens += sum(
            _approx_tokens(m.content) + _TOKENS_PER_MESSAGE for m in request.messages
        )
        answer = answer_of(first_row[rid].data)
        expected += _approx_tokens(answer) if answer else options.expected_output_tokens
    max_out = len(todo) * (options.max_tokens or DEFAULT_MAX_TOKENS)
    batch = _uses_batch(options, len(todo))
    model = options.teacher.name
    usd_expected = teacher_cost(model, input_tokens, expected, batch=batch)
    usd_max = teacher_cost(model, input_tokens, max_out, batch=batch)
    basis = (
        f"~{input_tokens:,} input tokens (4 characters per token), ~{expected:,} output tokens "
        f"expected, at most {max_out:,}"
        + ("; Message Batches at half price" if batch else "")
        + ("" if usd_expected is not None else f"; no price known for {model}")
    )
    return DistillEstimate(
        teacher=model,
        rows=len(rows),
        requests=len(unique),
        already_paid=len(unique) - len(todo),
        to_request=len(todo),
        batch=batch,
        input_tokens=input_tokens,
        output_tokens_expected=expected,
        output_tokens_max=max_out,
        usd_expected=usd_expected,
        usd_max=usd_max,
        basis=basis,
    )


async def run_distill(
    data: str | Path,
    output: str | Path,
    options: DistillOptions,
    *,
    grader: Any | None = None,
    grader_name: str | None = None,
    judge: Any | None = None,
    journal: str | Path | None = None,
    on_progress: ProgressHook | None = None,
    should_stop: StopHook | None = None,
) -> DistillResult:
    """Relabel ``data`` with the teacher, keep the answers ``grader`` scores at least
    ``options.threshold``, and write ``output`` plus its metadata file.

    ``grader`` is a loaded grader spec (``None`` keeps every answer); ``judge`` serves its
    model graders. Resumable: answers and batch ids are journaled (default
    ``<output>.journal.jsonl``) as they arrive, and a rerun requests only what is missing.
    Rows the teacher could not answer are listed in ``failures`` and left out; rerunning asks
    for them again. ``should_stop()`` stops with :class:`DistillCancelled`.
    """
    from ftwizard.providers.batch_journal import batch_runner_for
    from ftwizard.providers.models import build_generation_provider, close_provider

    _check_mode(options)
    if options.merge_into is not None and not options.key_columns:
        raise InputError("merging into a dataset needs key columns", field="key_columns")
    out = Path(output)
    journal_file = Path(journal) if journal is not None else journal_path_for(out)
    rows = list(read_source_rows(data, context_field=options.context_field))
    if not rows:
        raise InputError("the data file has no rows to relabel", path=data)
    if options.merge_into is not None:
        for row in rows:
            row_key(row.data, options.key_columns, path=data, line=row.line)
    ids, unique = _requests(rows, options)

    state = Journal(journal_file)
    run = TeacherRun(
        model=options.teacher.name,
        concurrency=options.concurrency,
        batch_size=options.batch_size,
        journal=state,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    loaded = state.load()
    reused = sum(1 for rid in unique if rid in run.generations)
    provider = build_generation_provider(
        options.teacher, retry=options.retry, timeout_s=options.timeout_s
    )
    pending = dict(loaded.open_batches)
    if pending and not _has_batch_api(options):
        raise InputError(
            f"the journal has unfinished batches ({', '.join(pending)}) but this teacher has "
            "no batch API; resume with the same teacher",
            path=journal_file,
        )
    in_flight = {rid for b in pending.values() for rid in b.request_ids}
    todo = {
        rid: req
        for rid, req in unique.items()
        if rid not in run.generations and rid not in in_flight
    }
    batch = _uses_batch(options, len(todo)) or bool(pending)
    try:
        if batch:
            runner = batch_runner_for(provider, poll_interval_s=options.poll_interval_s)
            for entry in pending.values():
                await run.collect_batch(runner, entry)
            if todo:
                await run.batches(runner, todo)
        elif todo:
            await run.direct(provider, todo)
    finally:
        await close_provider(provider)

    answered_rows = [
        (row, rid) for row, rid in zip(rows, ids, strict=True) if rid in run.generations
    ]
    scores = await _grade(
        answered_rows, run.generations, grader, judge, options.concurrency, run.progress
    )
    kept_rows = [
        (row, run.generations[rid].text)
        for (row, rid), score in zip(answered_rows, scores, strict=True)
        if score is None or score[0] >= options.threshold
    ]
    graded = sum(1 for s in scores if s is not None)
    correct = sum(1 for s in scores if s is not None and s[0] >= options.threshold)
    grade_errors = sum(1 for s in scores if s is not None and s[1])

    run.progress("writing", 0, 1)
    merge = None
    if options.merge_into is not None:
        from ftwizard.distill.prompts import merge_answers

        answers = {
            row_key(row.data, options.key_columns, path=data, line=row.line): text
            for row, text in kept_rows
        }
        out_rows, merge = merge_answers(
            options.merge_into,
            answers,
            options.key_columns,
            response_field=options.response_field,
            drop_unmatched=options.drop_unmatched,
        )
    else:
        out_rows = [training_row(row, text, options.keep_fields) for row, text in kept_rows]
    from ftwizard.datasets.writing import write_records

    written = write_records(out, out_rows)

    used = {rid for _, rid in answered_rows}
    entries = [run.generations[rid] for rid in used]
    costs = [e.cost_usd for e in entries]
    failures = [
        RowFailure(line=row.line, message=run.failures.get(rid, "no answer"))
        for row, rid in zip(rows, ids, strict=True)
        if rid not in run.generations
    ]
    result = DistillResult(
        teacher=options.teacher.spec,
        teacher_kind=options.teacher.provider,
        mode="batch" if batch else "direct",
        data=str(data),
        output=str(out),
        journal=str(journal_file),
        grader=grader_name,
        threshold=options.threshold,
        n=len(rows),
        answered=len(answered_rows),
        failed=len(failures),
        graded=graded,
        correct=correct,
        kept=len(kept_rows),
        teacher_accuracy=correct / graded if graded else None,
        accuracy_text=accuracy_text(correct, graded),
        grade_errors=grade_errors,
        reused=reused,
        requests_sent=run.sent,
        input_tokens=sum(e.input_tokens for e in entries),
        output_tokens=sum(e.output_tokens for e in entries),
        cost_usd=_total(costs),
        cost_usd_this_run=None if run.cost_this_run is None else round(run.cost_this_run, 6),
        batch_ids=state.load().batch_ids,
        output_rows=written,
        merge=merge,
        failures=failures[:_MAX_FAILURES_LISTED],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    from ftwizard.files import atomic_write_text

    atomic_write_text(metadata_path_for(out), result.model_dump_json(indent=2))
    run.progress("writing", 1, 1)
    return result


async def _grade(
    answered: Sequence[tuple[SourceRow, str]],
    generations: dict[str, GenerationEntry],
    grader: Any | None,
    judge: Any | None,
    concurrency: int,
    progress: Callable[[Any, int, int], None],
) -> list[tuple[float, bool] | None]:
    """Each answered row's (score, had_error); ``None`` everywhere without a grader."""
    if grader is None:
        return [None] * len(answered)
    from ftwizard.graders.results import Sample
    from ftwizard.graders.runner import GraderRunner

    progress("grading", 0, len(answered))
    items = [row.data for row, _ in answered]
    samples = [Sample.from_output(generations[rid].text) for _, rid in answered]
    with GraderRunner(grader, judge=judge, concurrency=concurrency) as runner:
        results = await runner.grade(items, samples)
    progress("grading", len(answered), len(answered))
    return [(r.score, r.error is not None) for r in results]


def _total(costs: Sequence[float | None]) -> float | None:
    known = [c for c in costs if c is not None]
    return round(sum(known), 6) if len(known) == len(costs) else None


def run_distill_sync(*args: Any, **kwargs: Any) -> DistillResult:
    """:func:`run_distill` for callers without an event loop (the CLI)."""
    return asyncio.run(run_distill(*args, **kwargs))


__all__ = [
    "DistillCancelled",
    "DistillEstimate",
    "DistillOptions",
    "DistillProgress",
    "DistillResult",
    "RowFailure",
    "accuracy_text",
    "estimate_distill_cost",
    "journal_path_for",
    "metadata_path_for",
    "run_distill",
    "run_distill_sync",
]
