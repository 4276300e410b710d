"""Distillation: relabel prompts with a teacher, keep only the answers the grader accepts.

The dataset step's optional branch. :func:`ftwizard.distill.estimate.estimate_distill_cost`
says what a run will cost before anything is spent; :func:`run_distill` generates the
teacher's answers (Anthropic Message Batches for bulk at half price, direct calls otherwise,
any OpenAI-compatible server directly), grades them against each row's ground truth, keeps the
rows scoring at least the threshold, and writes the new training file (JSONL or Parquet, by
suffix) and a metadata file beside it. Every paid-for answer goes to a journal first
(``ftwizard/distill/journal.py``), so a crashed or stopped run resumes without paying twice.
"""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ftwizard.distill.estimate import check_mode, has_batch_api, requests_for, uses_batch
from ftwizard.distill.generation import ProgressHook, StopHook, TeacherRun
from ftwizard.distill.journal import GenerationEntry, Journal
from ftwizard.distill.options import (
    DistillOptions,
    DistillResult,
    RowFailure,
    accuracy_text,
    journal_path_for,
    metadata_path_for,
)
from ftwizard.distill.prompts import SourceRow, read_source_rows, row_key, training_row
from ftwizard.errors import InputError
from ftwizard.files import check_output_path

_MAX_FAILURES_LISTED = 50


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

    check_mode(options)
    if options.merge_into is not None and not options.key_columns:
        raise InputError("merging into a dataset needs key columns", field="key_columns")
    out = Path(output)
    check_output_path(out)
    journal_file = Path(journal) if journal is not None else journal_path_for(out)
    rows = list(read_source_rows(data, context_field=options.context_field))
    if not rows:
        raise InputError("the data file has no rows to relabel", path=data)
    if options.merge_into is not None:
        for row in rows:
            row_key(row.data, options.key_columns, path=data, line=row.line)
    ids, unique = requests_for(rows, options)

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
    if pending and not has_batch_api(options):
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
    batch = uses_batch(options, len(todo)) or bool(pending)
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
