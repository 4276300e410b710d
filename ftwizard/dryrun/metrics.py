"""The figures a dry run reports about a set of scores: mean, spread, shares, histogram.

Scores are put on a 0-1 scale first (a ``score_model`` grader with ``range: [1, 10]`` maps 1 to 0
and 10 to 1), because the healthy ranges in the verdict table are stated on that scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

HISTOGRAM_BINS = 10
# Scores within this distance of 0 or 1 count as exactly 0 or 1 (float noise from formulas).
_EPS = 1e-9


class Histogram(BaseModel):
    """Counts of scores in ``bins`` equal-width bins over [0, 1]; the last bin includes 1.0."""

    edges: list[float]
    counts: list[int]

    @classmethod
    def of(cls, scores: Iterable[float], bins: int = HISTOGRAM_BINS) -> Histogram:
        """The histogram of 0-1 ``scores``."""
        counts = [0] * bins
        for s in scores:
            counts[min(bins - 1, max(0, math.floor(s * bins)))] += 1
        return cls(edges=[i / bins for i in range(bins + 1)], counts=counts)


class ScoreStats(BaseModel):
    """Summary of 0-1 scores. Shares are percentages (0-100), like ``ftwizard grade --json``."""

    n: int
    mean: float
    std: float
    pct_gt0: float
    pct_eq1: float
    min: float | None = None
    max: float | None = None
    binary: bool = False
    histogram: Histogram = Field(default_factory=lambda: Histogram.of([]))

    @classmethod
    def of(cls, scores: Sequence[float]) -> ScoreStats:
        """The stats of ``scores`` (already on the 0-1 scale)."""
        n = len(scores)
        if n == 0:
            return cls(n=0, mean=0.0, std=0.0, pct_gt0=0.0, pct_eq1=0.0)
        mean = math.fsum(scores) / n
        # Population standard deviation, as in GradeSummary: the spread of these rewards.
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / n)
        return cls(
            n=n,
            mean=mean,
            std=std,
            pct_gt0=100.0 * sum(1 for s in scores if s > _EPS) / n,
            pct_eq1=100.0 * sum(1 for s in scores if s >= 1.0 - _EPS) / n,
            min=min(scores),
            max=max(scores),
            binary=all(s <= _EPS or s >= 1.0 - _EPS for s in scores),
            histogram=Histogram.of(scores),
        )


def normalize(score: float, low: float = 0.0, high: float = 1.0) -> float:
    """``score`` on the 0-1 scale of a grader whose scores run from ``low`` to ``high``."""
    if not math.isfinite(score):
        return 0.0
    value = (score - low) / (high - low)
    return min(1.0, max(0.0, value))
