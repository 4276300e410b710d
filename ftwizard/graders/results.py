"""What grading works on and produces: a sample, one row's result, and a run's summary."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


class Sample(BaseModel):
    """The model output being graded, shaped like OpenAI's ``sample`` namespace."""

    output_text: str = ""
    output_json: Any = None
    output_tools: list[Any] = []
    choices: list[Any] = []

    @classmethod
    def from_output(cls, text: str, output_json: Any = None) -> Sample:
        """A sample from output text; ``output_json`` is parsed from the text when it is JSON."""
        if output_json is None:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                output_json = parsed
        return cls(output_text=text, output_json=output_json)

    def as_context(self) -> dict[str, Any]:
        """The sample as the plain dict templates and python graders see."""
        return self.model_dump()


class GradeResult(BaseModel):
    """One row's grade: the score, the error that forced it to 0, and a short note."""

    score: float
    error: str | None = None
    notes: str = ""
    sub_scores: dict[str, float] = {}


class RowError(BaseModel):
    """A row whose grader failed (its score counts as 0)."""

    row: int
    message: str


class GradeSummary(BaseModel):
    """The figures ``ftwizard grade --json`` prints."""

    n: int
    mean: float
    std: float
    pct_gt0: float
    pct_eq1: float
    errors: list[RowError]
    scores: list[float]

    @classmethod
    def from_results(
        cls, results: Sequence[GradeResult], rows: Sequence[int] | None = None
    ) -> GradeSummary:
        """Summarise ``results``; ``rows`` are the row numbers to report errors with (1-based)."""
        scores = [r.score for r in results]
        n = len(scores)
        mean = sum(scores) / n if n else 0.0
        # Population standard deviation: the spread of this set of rewards, not an estimate.
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / n) if n else 0.0
        numbers = rows if rows is not None else range(1, n + 1)
        return cls(
            n=n,
            mean=mean,
            std=std,
            pct_gt0=100.0 * sum(1 for s in scores if s > 0) / n if n else 0.0,
            pct_eq1=100.0 * sum(1 for s in scores if s == 1.0) / n if n else 0.0,
            errors=[
                RowError(row=row, message=r.error)
                for row, r in zip(numbers, results, strict=True)
                if r.error
            ],
            scores=scores,
        )
