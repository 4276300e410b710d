"""The evaluate step: is the tuned model better, and how sure can we be?

Two kinds of evidence, each a pydantic report a session stores as it is:

- :func:`~ftwizard.evaluate.grader_comparison.run_grader_comparison` → :class:`GraderComparison`:
  base and tuned model on held-out rows under the session's grader (means, intervals, flips);
- :func:`evaluate_ab` → :class:`PairwiseReport`: a blind pairwise comparison by one or more
  judges, with the order mapping recorded per item (``ftwizard/evaluate/mapping.py``).

This module reads held-out rows and produces both models' answers; the judging and the
statistics live in ``evaluate.judging``, ``evaluate.pairwise`` and ``evaluate.stats``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.evaluate.grader_comparison import (
    Flip,
    GraderComparison,
    compare_scores,
    run_grader_comparison,
)
from ftwizard.evaluate.judging import (
    EvaluationCancelled,
    Judge,
    JudgeOptions,
    Judgment,
    PairItem,
    StopHook,
)
from ftwizard.evaluate.mapping import Presentation, decode_letter
from ftwizard.evaluate.pairwise import run_pairwise
from ftwizard.evaluate.pairwise_report import PairwiseReport, WinCounts
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError


class EvalRow(BaseModel):
    """A held-out example: its id, the prompt, an optional reference answer and tag."""

    id: str
    line: int
    prompt: list[ChatMessage]
    reference: str | None = None
    tag: str | None = None


class EvalProgress(BaseModel):
    """Where an A/B evaluation stands, for a progress bar."""

    stage: str
    done: int
    total: int


def read_eval_rows(
    path: str | Path,
    *,
    tag_field: str = "domain",
    reference_field: str = "reference",
    use_reference: bool = True,
) -> list[EvalRow]:
    """Held-out rows from a dataset file (any format ``iter_records`` reads).

    The prompt is the row's messages without a final assistant turn (or a logged request's,
    or its ``prompt``); the
    reference is ``reference_field`` or the row's own answer; the tag (in-domain, out-of-domain,
    any label) is ``tag_field``. A row without a prompt is an :class:`InputError` at its line.
    """
    from ftwizard.datasets.loading import iter_records
    from ftwizard.distill.prompts import prompt_of
    from ftwizard.graders.samples import answer_of
    from ftwizard.providers.media import anchor_images

    rows: list[EvalRow] = []
    seen: set[str] = set()
    for rec in iter_records(path):
        data = rec.data
        if not isinstance(data, dict):
            raise InputError("each row must be a JSON object", path=path, line=rec.line)
        data = anchor_images(data, Path(path).parent)
        prompt = prompt_of(data)
        if not prompt or prompt[-1].role == "assistant":
            raise InputError(
                "row has no prompt: give messages (before the answer), Gemini contents or a prompt",
                path=path,
                line=rec.line,
                field="messages",
            )
        raw_id = data.get("id")
        row_id = str(raw_id) if isinstance(raw_id, str | int) else f"line-{rec.line}"
        if row_id in seen:
            raise InputError(f"id {row_id!r} appears twice", path=path, line=rec.line, field="id")
        seen.add(row_id)
        reference: str | None = None
        if use_reference:
            given = data.get(reference_field)
            reference = given if isinstance(given, str) else answer_of(data)
        tag = data.get(tag_field)
        rows.append(
            EvalRow(
                id=row_id,
                line=rec.line,
                prompt=prompt,
                reference=reference,
                tag=str(tag) if tag is not None else None,
            )
        )
    if not rows:
        raise InputError("the data file has no rows to evaluate", path=path)
    return rows


async def answer_rows(
    rows: Sequence[EvalRow],
    provider: ChatProvider,
    model: str,
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    on_done: Callable[[], None] | None = None,
) -> list[str | ProviderError]:
    """Each row's answer from ``model`` (a :class:`ProviderError` where the call failed)."""
    from ftwizard.providers.concurrency import generate_many

    requests = [
        GenerationRequest(model=model, messages=row.prompt, max_tokens=max_tokens) for row in rows
    ]
    results = await generate_many(
        provider,
        requests,
        concurrency=concurrency,
        on_result=(lambda _i, _r: on_done()) if on_done is not None else None,
        return_errors=True,
    )
    return [r if isinstance(r, ProviderError) else r.text for r in results]


async def evaluate_ab(
    rows: Sequence[EvalRow],
    *,
    model_a: tuple[ChatProvider, str],
    model_b: tuple[ChatProvider, str],
    judges: Sequence[Judge],
    options: JudgeOptions | None = None,
    answer_concurrency: int = 8,
    answer_max_tokens: int | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
    should_stop: StopHook | None = None,
) -> PairwiseReport:
    """Answer every row with both models, then judge the pairs blind.

    Rows either model failed to answer are left out and counted in ``failed_answers``.
    ``on_progress`` hears ``answers`` then ``judging`` progress; ``should_stop`` cancels
    with :class:`EvaluationCancelled`.
    """
    import asyncio

    total_answers = 2 * len(rows)
    answered = 0

    def answer_done() -> None:
        nonlocal answered
        answered += 1
        if on_progress is not None:
            on_progress(EvalProgress(stage="answers", done=answered, total=total_answers))
        if should_stop is not None and should_stop():
            raise EvaluationCancelled("evaluation stopped")

    try:
        # A TaskGroup, not gather: a stop or a crash on one side cancels the other.
        async with asyncio.TaskGroup() as group:
            task_a = group.create_task(
                answer_rows(
                    rows,
                    *model_a,
                    concurrency=answer_concurrency,
                    max_tokens=answer_max_tokens,
                    on_done=answer_done,
                )
            )
            task_b = group.create_task(
                answer_rows(
                    rows,
                    *model_b,
                    concurrency=answer_concurrency,
                    max_tokens=answer_max_tokens,
                    on_done=answer_done,
                )
            )
    except BaseExceptionGroup as failures:
        if failures.subgroup(EvaluationCancelled) is not None:
            raise EvaluationCancelled("evaluation stopped") from None
        raise
    answers_a, answers_b = task_a.result(), task_b.result()
    items: list[PairItem] = []
    failed = 0
    for row, a, b in zip(rows, answers_a, answers_b, strict=True):
        if isinstance(a, ProviderError) or isinstance(b, ProviderError):
            failed += 1
            continue
        items.append(
            PairItem(
                id=row.id,
                prompt=row.prompt,
                answer_a=a,
                answer_b=b,
                tag=row.tag,
                reference=row.reference,
            )
        )

    def judging(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(EvalProgress(stage="judging", done=done, total=total))

    return await run_pairwise(
        items,
        judges,
        options,
        model_a=model_a[1],
        model_b=model_b[1],
        failed_answers=failed,
        on_progress=judging,
        should_stop=should_stop,
    )


__all__ = [
    "EvalProgress",
    "EvalRow",
    "EvaluationCancelled",
    "Flip",
    "GraderComparison",
    "Judge",
    "JudgeOptions",
    "Judgment",
    "PairItem",
    "PairwiseReport",
    "Presentation",
    "WinCounts",
    "answer_rows",
    "compare_scores",
    "decode_letter",
    "evaluate_ab",
    "read_eval_rows",
    "run_grader_comparison",
    "run_pairwise",
]
