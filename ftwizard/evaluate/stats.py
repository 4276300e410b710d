"""Small statistics for evaluation reports: Wilson and t intervals, Cohen's kappa, spread.

Pure Python (no scipy): these run on a few hundred numbers, and the app must not pull a
scientific stack in for them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

Z95 = 1.959963984540054

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom; beyond 30 a
# Cornish-Fisher expansion around the normal quantile is accurate to the 4th decimal.
_T975 = (
    12.7062,
    4.3027,
    3.1824,
    2.7764,
    2.5706,
    2.4469,
    2.3646,
    2.3060,
    2.2622,
    2.2281,
    2.2010,
    2.1788,
    2.1604,
    2.1448,
    2.1314,
    2.1199,
    2.1098,
    2.1009,
    2.0930,
    2.0860,
    2.0796,
    2.0739,
    2.0687,
    2.0639,
    2.0595,
    2.0555,
    2.0518,
    2.0484,
    2.0452,
    2.0423,
)


def wilson_interval(successes: float, n: int, *, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion ``successes / n`` (95 % by default).

    ``successes`` may be fractional (a tie counted as half a win). ``n == 0`` gives the
    uninformative interval ``(0.0, 1.0)``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z95
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; 0.0 for no values."""
    return sum(values) / len(values) if values else 0.0


def sample_variance(values: Sequence[float]) -> float:
    """The unbiased (n - 1) variance; 0.0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / (n - 1)


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """A 95 % t interval for the mean of ``values``.

    One value (or none) gives a degenerate interval at the mean: there is no spread to
    estimate, and the report says how many examples it rests on.
    """
    n = len(values)
    m = mean(values)
    if n < 2:
        return (m, m)
    half = t_quantile_975(n - 1) * math.sqrt(sample_variance(values) / n)
    return (m - half, m + half)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa between two raters' labels of the same items.

    ``None`` when it is undefined: no items, or both raters used one and the same label for
    everything (chance agreement is then 1 and kappa is 0 / 0).
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} labels against {len(second)}")
    n = len(first)
    if n == 0:
        return None
    observed = sum(1 for a, b in zip(first, second, strict=True) if a == b) / n
    labels = set(first) | set(second)
    expected = sum((list(first).count(k) / n) * (list(second).count(k) / n) for k in labels)
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1.0 - expected)
