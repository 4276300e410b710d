"""PNG plots for the session report, drawn with matplotlib when it is installed.

Each function takes the figures it plots (never a session) and writes one PNG, so a plot is
always of real data; the caller decides which plots have data. matplotlib is optional
(``pip install 'ftwizard[report]'``): :func:`plotting_unavailable` says why plots cannot be
drawn, and the report lists them as absent instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# PNG metadata without the matplotlib version, so the same data gives the same file.
_PNG_METADATA = {"Software": None}
_SIZE = (7.0, 4.0)
_DPI = 100


def plotting_unavailable() -> str | None:
    """Why plots cannot be drawn here (matplotlib missing), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install 'ftwizard[report]')"
    return None


def _figure() -> Any:
    # The object API, not pyplot: no global state and no GUI backend in a terminal app.
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE, dpi=_DPI)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata=_PNG_METADATA)
    return path


def histogram_png(edges: Sequence[float], counts: Sequence[int], path: Path, *, title: str) -> Path:
    """A bar per histogram bin (``edges`` has one more value than ``counts``)."""
    if len(edges) != len(counts) + 1 or not counts:
        raise ValueError("a histogram needs one more edge than counts, and at least one bin")
    fig, ax = _figure()
    widths = [hi - lo for lo, hi in itertools.pairwise(edges)]
    ax.bar(list(edges[:-1]), list(counts), width=widths, align="edge", edgecolor="black")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of samples
    ax.set_xlabel("score")
    ax.set_ylabel("samples")
    ax.set_title(title)
    return _save(fig, path)


def curves_png(
    series: dict[str, Sequence[tuple[int, float]]], path: Path, *, title: str, ylabel: str
) -> Path:
    """One line per named series of ``(step, value)`` points."""
    drawn = {name: points for name, points in series.items() if points}
    if not drawn:
        raise ValueError("no points to plot")
    fig, ax = _figure()
    for name, points in drawn.items():
        steps = [s for s, _ in points]
        values = [v for _, v in points]
        ax.plot(steps, values, marker="." if len(points) < 50 else None, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def intervals_png(
    labels: Sequence[str],
    values: Sequence[float],
    intervals: Sequence[tuple[float, float]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    reference: float | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Bars with 95 % interval whiskers; ``reference`` draws a dashed line (e.g. 50 %)."""
    if not labels or not len(labels) == len(values) == len(intervals):
        raise ValueError("labels, values and intervals must be non-empty and the same length")
    fig, ax = _figure()
    below = [max(0.0, v - lo) for v, (lo, _) in zip(values, intervals, strict=True)]
    above = [max(0.0, hi - v) for v, (_, hi) in zip(values, intervals, strict=True)]
    positions = list(range(len(labels)))
    ax.bar(positions, list(values), yerr=[below, above], capsize=6, edgecolor="black")
    ax.set_xticks(positions, list(labels), rotation=15 if len(labels) > 2 else 0)
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="grey")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return _save(fig, path)
