"""The dry run's verdict: GO, WARNING or NO-GO, with reasons, a diagnosis and next moves.

The rules are the table in docs/dryrun.md, one function each below, in the same order and with
the same ids; change both together. Thresholds live in :class:`Thresholds` so the table and the
code read the same numbers.

For RFT the verdict is a gate: a reward that gives no learning signal (all 0, all 1, or noise)
wastes the whole training run. For SFT and DPO the dry run is a baseline to beat: distribution
rules become notes and nothing is worse than a WARNING.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from ftwizard.dryrun.metrics import ScoreStats

VerdictName = Literal["GO", "WARNING", "NO-GO"]
Level = Literal["note", "warning", "no-go"]
_RANK: dict[Level, int] = {"note": 0, "warning": 1, "no-go": 2}
_VERDICT: dict[int, VerdictName] = {0: "GO", 1: "WARNING", 2: "NO-GO"}


class Diagnosis(StrEnum):
    """What is wrong (or not), in words a screen can turn into advice."""

    healthy = "healthy"
    too_harsh = "too_harsh"
    too_lenient = "too_lenient"
    no_signal = "no_signal"
    inconsistent_grader = "inconsistent_grader"
    outputs_fail_to_parse = "outputs_fail_to_parse"
    grader_errors = "grader_errors"
    outputs_truncated = "outputs_truncated"
    generation_failed = "generation_failed"
    too_few_samples = "too_few_samples"


class NextMove(StrEnum):
    """What the user can do next."""

    proceed = "proceed"
    adjust_grader = "adjust_grader"
    add_data = "add_data"
    sft_first = "sft_first"
    stronger_base_model = "stronger_base_model"
    more_samples = "more_samples"
    raise_max_tokens = "raise_max_tokens"
    fix_generation = "fix_generation"


NEXT_MOVES: dict[Diagnosis, list[NextMove]] = {
    Diagnosis.healthy: [NextMove.proceed],
    Diagnosis.too_harsh: [NextMove.adjust_grader, NextMove.sft_first, NextMove.stronger_base_model],
    Diagnosis.too_lenient: [NextMove.adjust_grader, NextMove.add_data],
    Diagnosis.no_signal: [NextMove.adjust_grader],
    Diagnosis.inconsistent_grader: [NextMove.adjust_grader],
    Diagnosis.outputs_fail_to_parse: [NextMove.sft_first, NextMove.adjust_grader],
    Diagnosis.grader_errors: [NextMove.adjust_grader],
    Diagnosis.outputs_truncated: [NextMove.raise_max_tokens],
    Diagnosis.generation_failed: [NextMove.fix_generation],
    Diagnosis.too_few_samples: [NextMove.more_samples],
}

MOVE_TEXT: dict[NextMove, str] = {
    NextMove.proceed: "Proceed to training.",
    NextMove.adjust_grader: "Adjust the grader (partial credit, a clearer rubric, a "
    "deterministic judge) and run the dry run again.",
    NextMove.add_data: "Add harder prompts: the base model already solves these.",
    NextMove.sft_first: "Run SFT first, so the model learns the task and its output format "
    "before RFT.",
    NextMove.stronger_base_model: "Pick a stronger base model.",
    NextMove.more_samples: "Run the dry run with more samples.",
    NextMove.raise_max_tokens: "Raise the output token limit: answers are being cut off.",
    NextMove.fix_generation: "Check the model name, key and endpoint, then run again.",
}


class Thresholds(BaseModel):
    """The numbers of the verdict table (shares are fractions 0-1)."""

    harsh_nogo: float = 0.10
    harsh_warn: float = 0.20
    lenient_warn: float = 0.30
    lenient_nogo: float = 0.50
    mean_low: float = 0.25
    mean_high: float = 0.65
    std_nogo: float = 0.05
    std_warn: float = 0.10
    std_high: float = 0.25
    binary_low_nogo: float = 0.10
    binary_low_warn: float = 0.20
    binary_high_warn: float = 0.70
    binary_high_nogo: float = 0.90
    errors_warn: float = 0.05
    errors_nogo: float = 0.20
    generation_nogo: float = 0.50
    noise_warn: float = 0.10
    noise_nogo: float = 0.25
    noise_floor: float = 0.05
    min_samples: int = 30
    truncated_warn: float = 0.20


class VerdictInputs(BaseModel):
    """What the rules look at."""

    method: Literal["sft", "dpo", "rft"] = "rft"
    stats: ScoreStats
    sampled: int
    generation_failures: int = 0
    grader_errors: int = 0
    parse_failures: int = 0
    truncated: int = 0
    grader_noise: float | None = None


class Reason(BaseModel):
    """One rule that fired: its id in the table, how serious, and what it saw."""

    rule: str
    level: Level
    message: str
    diagnosis: Diagnosis | None = None


class Verdict(BaseModel):
    """GO / WARNING / NO-GO with the reasons, the diagnosis and the suggested next moves."""

    verdict: VerdictName
    reasons: list[Reason] = Field(default_factory=list)
    diagnosis: list[Diagnosis] = Field(default_factory=list)
    next_moves: list[NextMove] = Field(default_factory=list)
    is_gate: bool = True

    def reason_texts(self) -> list[str]:
        """The reasons as plain sentences (warnings and blockers first, then notes)."""
        ordered = sorted(self.reasons, key=lambda r: -_RANK[r.level])
        return [r.message for r in ordered]


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _health_rules(x: VerdictInputs, t: Thresholds) -> list[Reason]:
    """R1-R4, S1, T1: could the dry run measure anything trustworthy?"""
    out: list[Reason] = []
    n = x.stats.n
    if n == 0:
        out.append(
            Reason(
                rule="R1",
                level="no-go",
                message="no sample could be generated and graded",
                diagnosis=Diagnosis.generation_failed,
            )
        )
    gen = _share(x.generation_failures, x.sampled)
    if x.generation_failures:
        out.append(
            Reason(
                rule="R2",
                level="no-go" if gen >= t.generation_nogo else "warning",
                message=f"{x.generation_failures} of {x.sampled} generations failed after "
                "retries; the figures cover the rest",
                diagnosis=Diagnosis.generation_failed,
            )
        )
    grader_share = _share(x.grader_errors, n)
    if n and grader_share >= t.errors_warn:
        out.append(
            Reason(
                rule="R3",
                level="no-go" if grader_share >= t.errors_nogo else "warning",
                message=f"the grader failed on {x.grader_errors} of {n} samples "
                f"({_pct(grader_share)}); those score 0",
                diagnosis=Diagnosis.grader_errors,
            )
        )
    parse_share = _share(x.parse_failures, n)
    if n and parse_share >= t.errors_warn:
        out.append(
            Reason(
                rule="R4",
                level="no-go" if parse_share >= t.errors_nogo else "warning",
                message=f"{x.parse_failures} of {n} outputs ({_pct(parse_share)}) are not in "
                "the format the grader parses",
                diagnosis=Diagnosis.outputs_fail_to_parse,
            )
        )
    if 0 < n < t.min_samples:
        out.append(
            Reason(
                rule="S1",
                level="warning",
                message=f"only {n} samples were graded; a verdict needs at least {t.min_samples}",
                diagnosis=Diagnosis.too_few_samples,
            )
        )
    truncated = _share(x.truncated, n)
    if n and truncated >= t.truncated_warn:
        out.append(
            Reason(
                rule="T1",
                level="warning",
                message=f"{_pct(truncated)} of the outputs stopped at the token limit",
                diagnosis=Diagnosis.outputs_truncated,
            )
        )
    return out


def _constant_rule(x: VerdictInputs) -> Reason | None:
    """R5: every sample got the same score: no learning signal at all."""
    s = x.stats
    if s.n == 0 or (s.max is not None and s.min is not None and s.max > s.min):
        return None
    if s.mean <= 0.0:
        diagnosis = Diagnosis.too_harsh
        what = "every sample scored 0: the grader is too harsh or the task is beyond the model"
    elif s.mean >= 1.0:
        diagnosis = Diagnosis.too_lenient
        what = "every sample scored 1: the grader is too lenient or the task is already solved"
    else:
        diagnosis, what = Diagnosis.no_signal, f"every sample scored {s.mean:.2f}"
    return Reason(
        rule="R5", level="no-go", message=f"{what}; no learning signal", diagnosis=diagnosis
    )


def _binary_rules(p: float, t: Thresholds) -> list[Reason]:
    """B1-B4: a pass/fail grader, judged on its pass rate (its std is sqrt(p(1-p)))."""
    if p < t.binary_low_nogo:
        return [
            Reason(
                rule="B1",
                level="no-go",
                diagnosis=Diagnosis.too_harsh,
                message=f"pass rate {_pct(p)} is below {_pct(t.binary_low_nogo)}: too "
                "few successes to learn from",
            )
        ]
    if p < t.binary_low_warn:
        return [
            Reason(
                rule="B2",
                level="warning",
                diagnosis=Diagnosis.too_harsh,
                message=f"pass rate {_pct(p)} is low (healthy: "
                f"{_pct(t.binary_low_warn)}-{_pct(t.binary_high_warn)})",
            )
        ]
    if p > t.binary_high_nogo:
        return [
            Reason(
                rule="B4",
                level="no-go",
                diagnosis=Diagnosis.too_lenient,
                message=f"pass rate {_pct(p)} is above {_pct(t.binary_high_nogo)}: "
                "almost nothing left to learn",
            )
        ]
    if p > t.binary_high_warn:
        return [
            Reason(
                rule="B3",
                level="warning",
                diagnosis=Diagnosis.too_lenient,
                message=f"pass rate {_pct(p)} is high (healthy: "
                f"{_pct(t.binary_low_warn)}-{_pct(t.binary_high_warn)})",
            )
        ]
    return []


def _continuous_rules(s: ScoreStats, t: Thresholds) -> list[Reason]:
    """C1-C8: a grader with partial credit, judged on the practitioners' ranges."""
    out: list[Reason] = []
    # Rounded so that 30 % read back from a percentage compares equal to the 0.30 threshold.
    gt0, eq1 = round(s.pct_gt0 / 100, 9), round(s.pct_eq1 / 100, 9)
    if gt0 < t.harsh_warn:
        out.append(
            Reason(
                rule="C1" if gt0 < t.harsh_nogo else "C2",
                level="no-go" if gt0 < t.harsh_nogo else "warning",
                diagnosis=Diagnosis.too_harsh,
                message=f"only {_pct(gt0)} of samples score above 0 (healthy: more "
                f"than {_pct(t.harsh_warn)})",
            )
        )
    if eq1 >= t.lenient_warn:
        out.append(
            Reason(
                rule="C3" if eq1 >= t.lenient_nogo else "C4",
                level="no-go" if eq1 >= t.lenient_nogo else "warning",
                diagnosis=Diagnosis.too_lenient,
                message=f"{_pct(eq1)} of samples already score 1.0 (healthy: fewer "
                f"than {_pct(t.lenient_warn)})",
            )
        )
    if s.mean < t.mean_low:
        out.append(
            Reason(
                rule="C5",
                level="warning",
                diagnosis=Diagnosis.too_harsh,
                message=f"mean {s.mean:.2f} is below {t.mean_low:.2f}",
            )
        )
    if s.mean > t.mean_high:
        out.append(
            Reason(
                rule="C6",
                level="warning",
                diagnosis=Diagnosis.too_lenient,
                message=f"mean {s.mean:.2f} is above {t.mean_high:.2f}",
            )
        )
    if s.std < t.std_warn:
        out.append(
            Reason(
                rule="C7" if s.std < t.std_nogo else "C8",
                level="no-go" if s.std < t.std_nogo else "warning",
                diagnosis=Diagnosis.no_signal,
                message=f"std {s.std:.3f}: scores barely differ between samples "
                f"(healthy: {t.std_warn:.2f}-{t.std_high:.2f})",
            )
        )
    if s.std > t.std_high:
        out.append(
            Reason(
                rule="C9",
                level="note",
                message=f"std {s.std:.2f} is above {t.std_high:.2f}: scores are "
                "mostly all-or-nothing, which is still a usable signal",
            )
        )
    return out


def _noise_rules(x: VerdictInputs, t: Thresholds) -> list[Reason]:
    """M1-M3: a model grader that disagrees with itself on a re-grade."""
    noise = x.grader_noise
    if noise is None:
        return []
    if noise >= t.noise_warn:
        return [
            Reason(
                rule="M1" if noise >= t.noise_nogo else "M2",
                level="no-go" if noise >= t.noise_nogo else "warning",
                diagnosis=Diagnosis.inconsistent_grader,
                message=f"re-grading the same samples moved scores by {noise:.2f} on "
                "average: the judge is inconsistent",
            )
        ]
    if noise >= t.noise_floor and noise > x.stats.std:
        return [
            Reason(
                rule="M3",
                level="warning",
                diagnosis=Diagnosis.inconsistent_grader,
                message=f"the judge's own noise ({noise:.2f}) is larger than the spread "
                f"of scores ({x.stats.std:.2f})",
            )
        ]
    return []


def decide(x: VerdictInputs, thresholds: Thresholds | None = None) -> Verdict:
    """Apply the verdict table to ``x``."""
    t = thresholds or Thresholds()
    reasons = _health_rules(x, t)
    if x.stats.n > 0:
        constant = _constant_rule(x)
        if constant is not None:
            reasons.append(constant)
        elif x.stats.binary:
            reasons += _binary_rules(round(x.stats.mean, 9), t)
        else:
            reasons += _continuous_rules(x.stats, t)
        reasons += _noise_rules(x, t)
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
    worst = max((_RANK[r.level] for r in reasons), default=0)
    diagnosis: list[Diagnosis] = []
    for r in sorted(reasons, key=lambda r: -_RANK[r.level]):
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
    {"R5", "B1", "B2", "B3", "B4", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"}
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
