"""Grader-based evaluation: base and tuned model on held-out rows, scored by one grader.

Reports each model's mean score with a 95 % t interval, the paired difference with its own
interval (the same rows for both models, so the difference is much tighter than the two
intervals suggest), and every row whose pass / fail flipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from ftwizard.evaluate.stats import mean, mean_interval
from ftwizard.graders.results import GradeResult
from ftwizard.providers.base import ChatProvider
from ftwizard.session import ModelIdentity

SMALL_N = 30


class Flip(BaseModel):
    """A row that passed with one model and failed with the other."""

    item_id: str
    direction: Literal["fail_to_pass", "pass_to_fail"]
    base_score: float
    tuned_score: float
    base_output: str = ""
    tuned_output: str = ""


class RowScores(BaseModel):
    """One row's scores under both models (``None``: the model gave no answer)."""

    item_id: str
    base: float | None
    tuned: float | None
    base_error: str | None = None
    tuned_error: str | None = None


class GraderComparison(BaseModel):
    """Base vs tuned on the same rows under one grader; stored in the session as it is."""

    base_model: str
    tuned_model: str
    threshold: float
    n: int
    base_mean: float
    tuned_mean: float
    base_ci95: tuple[float, float]
    tuned_ci95: tuple[float, float]
    diff_mean: float
    diff_ci95: tuple[float, float]
    base_pass: int
    tuned_pass: int
    fail_to_pass: int
    pass_to_fail: int
    flips: list[Flip]
    skipped: int
    rows: list[RowScores]
    warnings: list[str]
    # The weights the tuned model ran on (local digests or hosted id), recorded with it.
    tuned_identity: ModelIdentity | None = None

    @property
    def tuned_better(self) -> bool:
        """Whether the paired difference's interval lies above zero."""
        return self.n > 1 and self.diff_ci95[0] > 0


def compare_scores(
    item_ids: Sequence[str],
    base: Sequence[GradeResult | None],
    tuned: Sequence[GradeResult | None],
    *,
    threshold: float = 1.0,
    base_outputs: Sequence[str] | None = None,
    tuned_outputs: Sequence[str] | None = None,
    base_model: str = "base",
    tuned_model: str = "tuned",
) -> GraderComparison:
    """Compare per-row grades; a ``None`` grade (no answer) drops that row from both sides.

    A row passes when its score is at least ``threshold``.
    """
    if not len(item_ids) == len(base) == len(tuned):
        raise ValueError("item_ids, base and tuned must have the same length")
    rows: list[RowScores] = []
    pairs: list[tuple[int, float, float]] = []
    for index, (item_id, b, t) in enumerate(zip(item_ids, base, tuned, strict=True)):
        rows.append(
            RowScores(
                item_id=item_id,
                base=None if b is None else b.score,
                tuned=None if t is None else t.score,
                base_error=None if b is None else b.error,
                tuned_error=None if t is None else t.error,
            )
        )
        if b is not None and t is not None:
            pairs.append((index, b.score, t.score))
    base_scores = [b for _, b, _ in pairs]
    tuned_scores = [t for _, _, t in pairs]
    diffs = [t - b for _, b, t in pairs]
    flips = []
    for index, b, t in pairs:
        passed_before, passed_after = b >= threshold, t >= threshold
        if passed_before != passed_after:
            flips.append(
                Flip(
                    item_id=item_ids[index],
                    direction="fail_to_pass" if passed_after else "pass_to_fail",
                    base_score=b,
                    tuned_score=t,
                    base_output=base_outputs[index] if base_outputs else "",
                    tuned_output=tuned_outputs[index] if tuned_outputs else "",
                )
            )
    n = len(pairs)
    skipped = len(item_ids) - n
    warnings = []
    if n < SMALL_N:
        warnings.append(f"only {n} rows compared: the intervals are wide; use {SMALL_N} or more")
    if skipped:
        warnings.append(f"{skipped} rows had no answer from one of the models and were skipped")
    return GraderComparison(
        base_model=base_model,
        tuned_model=tuned_model,
        threshold=threshold,
        n=n,
        base_mean=mean(base_scores),
        tuned_mean=mean(tuned_scores),
        base_ci95=mean_interval(base_scores),
        tuned_ci95=mean_interval(tuned_scores),
        diff_mean=mean(diffs),
        diff_ci95=mean_interval(diffs),
        base_pass=sum(1 for s in base_scores if s >= threshold),
        tuned_pass=sum(1 for s in tuned_scores if s >= threshold),
        fail_to_pass=sum(1 for f in flips if f.direction == "fail_to_pass"),
        pass_to_fail=sum(1 for f in flips if f.direction == "pass_to_fail"),
        flips=flips,
        skipped=skipped,
        rows=rows,
        warnings=warnings,
    )


async def run_grader_comparison(
    items: Sequence[dict[str, Any]],
    spec: Any,
    *,
    base: tuple[ChatProvider, str],
    tuned: tuple[ChatProvider, str],
    item_ids: Sequence[str] | None = None,
    threshold: float = 1.0,
    judge: ChatProvider | None = None,
    concurrency: int = 8,
    max_tokens: int | None = None,
) -> GraderComparison:
    """Ask the base and the tuned model to answer every row, grade both, and compare.

    ``spec`` is a grader spec (:func:`ftwizard.graders.loading.load_grader`); ``judge`` serves
    its model graders. A row either model failed to answer is skipped on both sides.
    """
    import asyncio

    from ftwizard.graders.runner import GraderRunner
    from ftwizard.graders.samples import samples_from_model

    ids = list(item_ids) if item_ids is not None else [f"row-{i + 1}" for i in range(len(items))]
    base_samples, tuned_samples = await asyncio.gather(
        samples_from_model(base[0], base[1], items, concurrency=concurrency, max_tokens=max_tokens),
        samples_from_model(
            tuned[0], tuned[1], items, concurrency=concurrency, max_tokens=max_tokens
        ),
    )
    with GraderRunner(spec, judge=judge, concurrency=concurrency) as runner:
        base_grades = await runner.grade(items, [g.sample for g in base_samples])
        tuned_grades = await runner.grade(items, [g.sample for g in tuned_samples])
    return compare_scores(
        ids,
        [None if s.error else g for s, g in zip(base_samples, base_grades, strict=True)],
        [None if s.error else g for s, g in zip(tuned_samples, tuned_grades, strict=True)],
        threshold=threshold,
        base_outputs=[s.sample.output_text for s in base_samples],
        tuned_outputs=[s.sample.output_text for s in tuned_samples],
        base_model=base[1],
        tuned_model=tuned[1],
    )
