"""The rows of docs/dryrun.md's verdict table, one function per group of rules, same ids.

Each function returns the :class:`Reason` objects of the rules that fired.
"""

from __future__ import annotations

from ftwizard.dryrun.metrics import ScoreStats
from ftwizard.dryrun.verdict_types import Diagnosis, Level, Reason, Thresholds, VerdictInputs


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def health_rules(x: VerdictInputs, t: Thresholds) -> list[Reason]:
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


def constant_rule(x: VerdictInputs) -> Reason | None:
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


def binary_rules(p: float, t: Thresholds) -> list[Reason]:
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


def continuous_rules(s: ScoreStats, t: Thresholds) -> list[Reason]:
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


def noise_rules(x: VerdictInputs, t: Thresholds) -> list[Reason]:
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


def group_rules(x: VerdictInputs, t: Thresholds) -> list[Reason]:
    """G1: with K answers per prompt, do enough prompts' answers score differently?"""
    g = x.groups
    if g is None or g.groups == 0:
        return []
    share = g.zero_variance_pct / 100
    if share >= t.zero_variance_nogo:
        level: Level = "no-go"
    elif share >= t.zero_variance_warn:
        level = "warning"
    else:
        return [
            Reason(
                rule="G1",
                level="note",
                message=f"{g.zero_variance_pct:.0f}% of prompts have {g.k} equal scores; "
                f"mean within-prompt std {g.mean_within_std:.2f}",
            )
        ]
    if g.all_fail_pct >= g.all_pass_pct and g.all_fail_pct > 0:
        diagnosis = Diagnosis.groups_never_solved
    elif g.all_pass_pct > 0:
        diagnosis = Diagnosis.groups_always_solved
    else:
        diagnosis = Diagnosis.groups_all_equal
    return [
        Reason(
            rule="G1",
            level=level,
            message=f"{g.zero_variance_pct:.0f}% of prompts give all {g.k} answers the same score "
            f"({g.all_fail_pct:.0f}% all fail, {g.all_pass_pct:.0f}% all pass): GRPO learns "
            f"nothing from those (its frac_reward_zero_std)",
            diagnosis=diagnosis,
        )
    ]
