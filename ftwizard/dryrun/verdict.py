"""The dry run's verdict: GO, WARNING or NO-GO, with reasons, a diagnosis and next moves.

The rules are the table in docs/dryrun.md, one function each below, in the same order and with
the same ids; change both together. Thresholds live in :class:`Thresholds` so the table and the
code read the same numbers.

For RFT the verdict is a gate: a reward that gives no learning signal (all 0, all 1, or noise)
wastes the whole training run. For SFT and DPO the dry run is a baseline to beat: distribution
rules become notes and nothing is worse than a WARNING.
"""

from __future__ import annotations

from ftwizard.dryrun.metrics import ScoreStats
from ftwizard.dryrun.rules import (
    binary_rules,
    constant_rule,
    continuous_rules,
    group_rules,
    health_rules,
    noise_rules,
)
from ftwizard.dryrun.verdict_types import (
    NEXT_MOVES,
    RANK,
    Diagnosis,
    Level,
    NextMove,
    Reason,
    Thresholds,
    Verdict,
    VerdictInputs,
    VerdictName,
)

_VERDICT: dict[int, VerdictName] = {0: "GO", 1: "WARNING", 2: "NO-GO"}


def decide(x: VerdictInputs, thresholds: Thresholds | None = None) -> Verdict:
    """Apply the verdict table to ``x``."""
    t = thresholds or Thresholds()
    reasons = health_rules(x, t)
    if x.stats.n > 0:
        constant = constant_rule(x)
        if constant is not None:
            reasons.append(constant)
        elif x.stats.binary:
            reasons += binary_rules(round(x.stats.mean, 9), t)
        else:
            reasons += continuous_rules(x.stats, t)
        reasons += noise_rules(x, t)
        reasons += group_rules(x, t)
    gate = x.method == "rft"
    if not gate:
        reasons = [_as_baseline(r) for r in reasons]
        reasons.insert(
            0,
            Reason(
                rule="SFT",
                level="note",
                message=f"{x.method.upper()}: this dry run is the baseline the trained model "
                f"must beat (mean {x.stats.mean:.2f} over {x.stats.n} samples), not a gate",
            ),
        )
    worst = max((RANK[r.level] for r in reasons), default=0)
    diagnosis: list[Diagnosis] = []
    for r in sorted(reasons, key=lambda r: -RANK[r.level]):
        if r.diagnosis is not None and r.level != "note" and r.diagnosis not in diagnosis:
            diagnosis.append(r.diagnosis)
    if not diagnosis:
        diagnosis = [Diagnosis.healthy]
    moves: list[NextMove] = []
    for d in diagnosis:
        moves += [m for m in NEXT_MOVES[d] if m not in moves]
    return Verdict(
        verdict=_VERDICT[worst],
        reasons=reasons,
        diagnosis=diagnosis,
        next_moves=moves,
        is_gate=gate,
    )


# Rules about the score distribution only say how hard the task is; for a baseline that is
# information, not a problem. Rules about whether the measurement works still warn.
_DISTRIBUTION_RULES = frozenset(
    {"R5", "B1", "B2", "B3", "B4", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "G1"}
)


def _as_baseline(reason: Reason) -> Reason:
    if reason.rule in _DISTRIBUTION_RULES:
        return reason.model_copy(update={"level": "note"})
    if reason.level == "no-go":
        return reason.model_copy(update={"level": "warning"})
    return reason


def metric_levels(stats: ScoreStats, thresholds: Thresholds | None = None) -> dict[str, Level]:
    """Where each headline metric stands against the table's healthy ranges.

    ``note`` is within range, ``warning`` outside it, ``no-go`` far outside. A binary grader's
    spread follows from its mean, so its std is judged through the pass rate instead.
    """
    t = thresholds or Thresholds()
    gt0, eq1 = stats.pct_gt0 / 100, stats.pct_eq1 / 100

    def band(
        value: float, low_nogo: float, low_warn: float, high_warn: float, high_nogo: float
    ) -> Level:
        if value < low_nogo or value > high_nogo:
            return "no-go"
        if value < low_warn or value > high_warn:
            return "warning"
        return "note"

    levels: dict[str, Level] = {
        "mean": band(stats.mean, 0.0, t.mean_low, t.mean_high, 1.0),
        "gt0": band(gt0, t.harsh_nogo, t.harsh_warn, 1.0, 1.0),
        "eq1": band(eq1, 0.0, 0.0, t.lenient_warn, t.lenient_nogo),
    }
    if stats.binary:
        levels["std"] = band(
            stats.mean, t.binary_low_nogo, t.binary_low_warn, t.binary_high_warn, t.binary_high_nogo
        )
    else:
        levels["std"] = band(stats.std, t.std_nogo, t.std_warn, t.std_high, 1.0)
    return levels
