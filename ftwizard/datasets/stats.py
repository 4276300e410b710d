"""Token distribution and the cookbook's epoch and billing rules."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

# Chat_finetuning_data_prep.ipynb: how OpenAI picks n_epochs when it is "auto".
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


class TokenStats(BaseModel):
    """Token counts over the valid examples (cookbook-style per-example counts)."""

    total: int = 0
    min: int = 0
    p5: int = 0
    p50: int = 0
    p95: int = 0
    max: int = 0
    over_limit: int = 0
    exact: bool = True
    counter: str = ""
    note: str | None = None

    def to_json(self) -> dict[str, int]:
        """The CLI's ``tokens`` object."""
        return {
            "total": self.total,
            "min": self.min,
            "p5": self.p5,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "over_limit": self.over_limit,
        }


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (``q`` in 0..1) of already sorted values; 0 when empty."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return int(sorted_values[min(rank, len(sorted_values)) - 1])


def token_stats(counts: Sequence[int], limit: int | None) -> TokenStats:
    """Distribution of per-example token counts and how many exceed ``limit``."""
    ordered = sorted(counts)
    return TokenStats(
        total=sum(ordered),
        min=ordered[0] if ordered else 0,
        p5=percentile(ordered, 0.05),
        p50=percentile(ordered, 0.50),
        p95=percentile(ordered, 0.95),
        max=ordered[-1] if ordered else 0,
        over_limit=sum(1 for c in ordered if limit is not None and c > limit),
    )


def histogram(counts: Sequence[int], bins: int = 20) -> list[tuple[int, int, int]]:
    """``(low, high, count)`` buckets of equal width covering all counts (for a chart)."""
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    width = max(1, math.ceil((hi - lo + 1) / bins))
    buckets = [0] * math.ceil((hi - lo + 1) / width)
    for c in counts:
        buckets[(c - lo) // width] += 1
    return [(lo + i * width, lo + (i + 1) * width - 1, n) for i, n in enumerate(buckets)]


def auto_epochs(n_examples: int) -> int:
    """The number of epochs OpenAI picks for ``n_epochs="auto"`` (cookbook rule)."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def billed_tokens(counts: Sequence[int], limit: int | None) -> int:
    """Tokens billed per epoch: each example counts at most ``limit`` (it is truncated)."""
    if limit is None:
        return sum(counts)
    return sum(min(limit, c) for c in counts)
