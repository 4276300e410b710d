"""Running any grader spec locally over rows of (item, sample).

Each kind is graded a column at a time (all rows for one grader), so python graders go to the
sandboxed worker pool together and model graders go to the judge concurrently; a ``multi``
grader then combines its columns with its formula row by row.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from ftwizard.credentials import redact
from ftwizard.errors import InputError
from ftwizard.graders.formula import FormulaError, parse_formula
from ftwizard.graders.portable import TemplateError, render, score_custom_with_notes
from ftwizard.graders.python_pool import (
    DEFAULT_MEMORY_LIMIT_MB,
    DEFAULT_TIMEOUT_S,
    PythonGraderPool,
)
from ftwizard.graders.results import GradeResult, Sample
from ftwizard.graders.samples import grading_item
from ftwizard.graders.similarity import check_metric, similarity
from ftwizard.graders.spec import (
    FTWIZARD_KINDS,
    AnyGrader,
    LabelModelGrader,
    MultiGrader,
    PythonGrader,
    ScoreModelGrader,
    StringCheckGrader,
    TextSimilarityGrader,
    iter_graders,
    spec_to_dict,
)

Context = dict[str, Any]


def string_check(operation: str, text: str, reference: str) -> float:
    """OpenAI string_check: eq / ne exact and case-sensitive, like contains, ilike any case."""
    if operation == "eq":
        return 1.0 if text == reference else 0.0
    if operation == "ne":
        return 1.0 if text != reference else 0.0
    if operation == "like":
        return 1.0 if reference in text else 0.0
    return 1.0 if reference.lower() in text.lower() else 0.0


def _grade_local(g: AnyGrader, ctx: Context, data: dict[str, Any]) -> GradeResult:
    """Grade one row with a kind that needs neither processes nor a judge."""
    try:
        if isinstance(g, StringCheckGrader):
            return GradeResult(
                score=string_check(g.operation, render(g.input, ctx), render(g.reference, ctx))
            )
        if isinstance(g, TextSimilarityGrader):
            return GradeResult(
                score=similarity(
                    g.evaluation_metric, render(g.input, ctx), render(g.reference, ctx)
                )
            )
        score, notes = score_custom_with_notes(data, ctx["sample"], ctx["item"])
        return GradeResult(score=score, notes=notes)
    except TemplateError as exc:
        return GradeResult(score=0.0, error=f"invalid_variable_error: {exc}")
    except InputError:
        raise
    except Exception as exc:  # a row whose data breaks the rule is that row's error
        return GradeResult(score=0.0, error=f"{type(exc).__name__}: {exc}")


class GraderRunner:
    """Runs a grader spec over rows, with the python pool and judge it needs.

    ``judge`` is any ``ChatProvider`` (needed by score_model / label_model). A pool passed in is
    shared and left open; a pool the runner makes is closed by :meth:`close`.
    """

    def __init__(
        self,
        spec: AnyGrader,
        *,
        judge: Any | None = None,
        pool: PythonGraderPool | None = None,
        concurrency: int = 8,
        python_timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.spec = spec
        self.judge = judge
        self.concurrency = max(1, concurrency)
        self._own_pool = pool is None
        self._pool = pool
        self._timeout = python_timeout_s
        self._memory = memory_limit_mb

    def preflight(self) -> None:
        """Raise :class:`InputError` when the spec cannot run here (before grading any row)."""
        for path, g in iter_graders(self.spec):
            if isinstance(g, TextSimilarityGrader):
                check_metric(g.evaluation_metric)
            if isinstance(g, ScoreModelGrader | LabelModelGrader) and self.judge is None:
                raise InputError(
                    f"grader '{g.name}' is a {g.type} grader and needs a judge model provider; "
                    "configure a judge (OpenAI, an OpenAI-compatible base_url, or Anthropic)",
                    field=path or None,
                )

    def start_workers(self) -> None:
        """Start the python graders' worker processes without waiting for them to be ready.

        A caller that is about to wait on something else (the dry run's first answers) calls
        this first, so the workers' interpreter start overlaps that wait instead of delaying
        the first grades.
        """
        for source in self.python_sources():
            self._get_pool().start(source)

    def python_sources(self) -> list[str]:
        """The source of each python grader in the spec (none for a spec without one)."""
        return [g.code for _path, g in iter_graders(self.spec) if isinstance(g, PythonGrader)]

    def _get_pool(self) -> PythonGraderPool:
        if self._pool is None:
            self._pool = PythonGraderPool(timeout_s=self._timeout, memory_limit_mb=self._memory)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes this runner started."""
        if self._own_pool and self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> GraderRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def grade(
        self, items: Sequence[dict[str, Any]], samples: Sequence[Sample]
    ) -> list[GradeResult]:
        """Grade row i (``items[i]`` with ``samples[i]``) for every i, in order."""
        if len(items) != len(samples):
            raise ValueError(f"{len(items)} items but {len(samples)} samples")
        self.preflight()
        # Every caller grades dataset rows; chat rows keep their answer in the last assistant
        # turn, which graders name `item.reference_answer`.
        contexts = [
            {"item": grading_item(item), "sample": s.as_context()}
            for item, s in zip(items, samples, strict=True)
        ]
        return await self._column(self.spec, contexts)

    def grade_sync(
        self, items: Sequence[dict[str, Any]], samples: Sequence[Sample]
    ) -> list[GradeResult]:
        """:meth:`grade` for callers without an event loop."""
        return asyncio.run(self.grade(items, samples))

    async def _column(self, g: AnyGrader, contexts: list[Context]) -> list[GradeResult]:
        if isinstance(g, MultiGrader):
            return await self._multi(g, contexts)
        if isinstance(g, PythonGrader):
            pool = self._get_pool()
            rows = [(c["sample"], c["item"]) for c in contexts]
            outcomes = await asyncio.to_thread(pool.grade, g.code, rows)
            return [
                GradeResult(score=o.score, error=redact(o.error) if o.error else None)
                for o in outcomes
            ]
        if isinstance(g, ScoreModelGrader | LabelModelGrader):
            from ftwizard.graders.model_graders import run_model_grader

            return await run_model_grader(g, self.judge, contexts, concurrency=self.concurrency)
        if g.type in FTWIZARD_KINDS or isinstance(g, StringCheckGrader | TextSimilarityGrader):
            data = spec_to_dict(g)  # once per column, not per row
            return [_grade_local(g, c, data) for c in contexts]
        raise InputError(f"grader kind '{g.type}' cannot run locally")

    async def _multi(self, g: MultiGrader, contexts: list[Context]) -> list[GradeResult]:
        formula = parse_formula(g.calculate_output)
        keys = list(g.graders)
        columns = await asyncio.gather(*(self._column(g.graders[k], contexts) for k in keys))
        out = []
        for i in range(len(contexts)):
            subs = {k: col[i] for k, col in zip(keys, columns, strict=True)}
            scores = {k: r.score for k, r in subs.items()}
            errors = [f"{k}: {r.error}" for k, r in subs.items() if r.error]
            notes = "; ".join(f"{k}: {r.notes}" for k, r in subs.items() if r.notes)
            try:
                score = formula.evaluate(scores)
            except FormulaError as exc:
                errors.append(f"formula_parse_error: {exc}")
                score = 0.0
            if not math.isfinite(score):
                score = 0.0
            out.append(
                GradeResult(
                    score=score, error="; ".join(errors) or None, notes=notes, sub_scores=scores
                )
            )
        return out


def grade_rows(
    spec: AnyGrader,
    items: Sequence[dict[str, Any]],
    samples: Sequence[Sample],
    *,
    judge: Any | None = None,
    concurrency: int = 8,
) -> list[GradeResult]:
    """Grade rows with a fresh runner (convenient for a handful of rows and for tests)."""
    with GraderRunner(spec, judge=judge, concurrency=concurrency) as runner:
        return runner.grade_sync(items, samples)
