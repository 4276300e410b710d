"""The verdict table (docs/dryrun.md) on synthetic score distributions, binary and continuous."""

from __future__ import annotations

import math

import pytest

from ftwizard.dryrun.groups import GroupStats
from ftwizard.dryrun.metrics import Histogram, ScoreStats, normalize
from ftwizard.dryrun.verdict import decide
from ftwizard.dryrun.verdict_types import Diagnosis, NextMove, VerdictInputs


def binary(passes: int, n: int = 100) -> list[float]:
    return [1.0] * passes + [0.0] * (n - passes)


def spread(values: list[float], copies: int = 20) -> list[float]:
    return [v for v in values for _ in range(copies)]


def verdict_of(scores: list[float], **kwargs: object) -> tuple[str, set[str], list[Diagnosis]]:
    stats = ScoreStats.of(scores)
    sampled = int(kwargs.pop("sampled", len(scores)))  # type: ignore[call-overload]
    v = decide(VerdictInputs(stats=stats, sampled=sampled, **kwargs))  # type: ignore[arg-type]
    return v.verdict, {r.rule for r in v.reasons if r.level != "note"}, v.diagnosis


# --- metrics ----------------------------------------------------------------------------------


def test_stats_are_exact() -> None:
    s = ScoreStats.of([0.0, 0.25, 0.5, 1.0])
    assert s.n == 4
    assert s.mean == pytest.approx(0.4375)
    assert s.std == pytest.approx(math.sqrt((0.4375**2 + 0.1875**2 + 0.0625**2 + 0.5625**2) / 4))
    assert (s.pct_gt0, s.pct_eq1) == (75.0, 25.0)
    assert (s.min, s.max, s.binary) == (0.0, 1.0, False)
    assert s.histogram.counts == [1, 0, 1, 0, 0, 1, 0, 0, 0, 1]


def test_binary_is_detected_and_its_std_follows_the_mean() -> None:
    s = ScoreStats.of(binary(45))
    assert s.binary
    assert s.std == pytest.approx(math.sqrt(0.45 * 0.55))


def test_histogram_edges_and_normalize() -> None:
    h = Histogram.of([0.0, 0.099, 0.1, 0.999, 1.0], bins=10)
    assert h.edges[0] == 0.0 and h.edges[-1] == 1.0
    assert h.counts == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert normalize(7.0, 1.0, 10.0) == pytest.approx(6 / 9)
    assert normalize(12.0, 1.0, 10.0) == 1.0
    assert normalize(float("nan")) == 0.0
    assert ScoreStats.of([]).n == 0


# --- binary graders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("passes", "verdict", "rule", "diagnosis"),
    [
        (0, "NO-GO", "R5", Diagnosis.too_harsh),
        (5, "NO-GO", "B1", Diagnosis.too_harsh),
        (9, "NO-GO", "B1", Diagnosis.too_harsh),
        (10, "WARNING", "B2", Diagnosis.too_harsh),
        (19, "WARNING", "B2", Diagnosis.too_harsh),
        (20, "GO", None, Diagnosis.healthy),
        # A 45 % pass rate is healthy although its std (0.50) is far above 0.25.
        (45, "GO", None, Diagnosis.healthy),
        (70, "GO", None, Diagnosis.healthy),
        (71, "WARNING", "B3", Diagnosis.too_lenient),
        (90, "WARNING", "B3", Diagnosis.too_lenient),
        (91, "NO-GO", "B4", Diagnosis.too_lenient),
        (100, "NO-GO", "R5", Diagnosis.too_lenient),
    ],
)
def test_binary_table(passes: int, verdict: str, rule: str | None, diagnosis: Diagnosis) -> None:
    got, rules, diagnoses = verdict_of(binary(passes))
    assert got == verdict
    assert rules == ({rule} if rule else set())
    assert diagnoses[0] == diagnosis


def test_binary_ignores_the_continuous_ranges() -> None:
    # 30 % pass: =1.0 share is 30 % (C4 would warn) and std 0.46 (above 0.25): still GO.
    assert verdict_of(binary(30))[0] == "GO"


# --- continuous graders -----------------------------------------------------------------------


def test_healthy_continuous() -> None:
    scores = spread([0.0, 0.25, 0.4, 0.5, 0.6, 0.75])
    s = ScoreStats.of(scores)
    assert 0.25 <= s.mean <= 0.65 and 0.10 <= s.std <= 0.25
    assert verdict_of(scores) == ("GO", set(), [Diagnosis.healthy])


@pytest.mark.parametrize(
    ("scores", "verdict", "rules"),
    [
        # 5 % above 0: too harsh (C1), with a low mean (C5).
        ([0.0] * 95 + [0.5] * 5, "NO-GO", {"C1", "C5"}),
        # 15 % above 0.
        ([0.0] * 85 + [0.6] * 15, "WARNING", {"C2", "C5"}),
        # 55 % at 1.0: no headroom (C3), mean high (C6).
        ([1.0] * 55 + [0.5] * 45, "NO-GO", {"C3", "C6"}),
        # 35 % at 1.0, otherwise fine.
        ([1.0] * 35 + [0.2] * 30 + [0.0] * 35, "WARNING", {"C4"}),
        # Mean 0.70 with no perfect scores: C6 only (std 0.10 is in range).
        ([0.6] * 50 + [0.8] * 50, "WARNING", {"C6"}),
        # Every score 0.46 or 0.54: std 0.04 < 0.05.
        ([0.46] * 50 + [0.54] * 50, "NO-GO", {"C7"}),
        # std 0.075: weak signal.
        ([0.425] * 50 + [0.575] * 50, "WARNING", {"C8"}),
        # Constant 0.5.
        ([0.5] * 100, "NO-GO", {"R5"}),
    ],
)
def test_continuous_table(scores: list[float], verdict: str, rules: set[str]) -> None:
    got, fired, _ = verdict_of(scores)
    assert (got, fired) == (verdict, rules)


def test_high_std_is_a_note_not_a_warning() -> None:
    scores = [0.0] * 40 + [0.1] * 10 + [0.9] * 10 + [0.95] * 40
    v = decide(VerdictInputs(stats=ScoreStats.of(scores), sampled=100))
    assert [r.rule for r in v.reasons] == ["C9"]
    assert v.verdict == "GO"


def test_thresholds_at_exact_boundaries() -> None:
    # 30 % at 1.0 exactly warns (fewer than 30 % is healthy); 20 % above 0 exactly is healthy.
    assert "C4" in verdict_of([1.0] * 30 + [0.5] * 30 + [0.2] * 40)[1]
    assert "C2" not in verdict_of([0.0] * 80 + [0.5] * 10 + [0.9] * 10)[1]


# --- health of the measurement ----------------------------------------------------------------


def test_grader_errors_and_parse_failures() -> None:
    healthy = binary(50)
    assert verdict_of(healthy, grader_errors=4)[0] == "GO"
    assert verdict_of(healthy, grader_errors=5)[:2] == ("WARNING", {"R3"})
    assert verdict_of(healthy, grader_errors=20)[:2] == ("NO-GO", {"R3"})
    verdict, rules, diagnoses = verdict_of(healthy, parse_failures=30)
    assert (verdict, rules) == ("NO-GO", {"R4"})
    assert diagnoses == [Diagnosis.outputs_fail_to_parse]


def test_generation_failures_samples_and_truncation() -> None:
    healthy = binary(50)
    assert verdict_of(healthy, sampled=110, generation_failures=10)[:2] == ("WARNING", {"R2"})
    assert verdict_of(healthy, sampled=200, generation_failures=100)[:2] == ("NO-GO", {"R2"})
    assert verdict_of([], sampled=5, generation_failures=5)[:2] == ("NO-GO", {"R1", "R2"})
    assert verdict_of(binary(10, n=20))[1] == {"S1"}
    assert verdict_of(healthy, truncated=20)[:2] == ("WARNING", {"T1"})


def test_inconsistent_judge() -> None:
    healthy = spread([0.0, 0.25, 0.4, 0.5, 0.6, 0.75])
    assert verdict_of(healthy, grader_noise=0.05)[0] == "GO"
    assert verdict_of(healthy, grader_noise=0.12)[:2] == ("WARNING", {"M2"})
    assert verdict_of(healthy, grader_noise=0.3)[:2] == ("NO-GO", {"M1"})
    # Noise of 0.08 is below 0.10 but larger than a 0.075 spread: the judge drowns the signal.
    weak = [0.425] * 50 + [0.575] * 50
    assert verdict_of(weak, grader_noise=0.08)[1] == {"C8", "M3"}


# --- SFT: a baseline, not a gate --------------------------------------------------------------


def test_sft_is_never_blocked_by_the_distribution() -> None:
    v = decide(VerdictInputs(method="sft", stats=ScoreStats.of(binary(0)), sampled=100))
    assert v.verdict == "GO"
    assert not v.is_gate
    assert v.reasons[0].rule == "SFT" and "baseline" in v.reasons[0].message
    assert {r.level for r in v.reasons} == {"note"}
    assert v.next_moves == [NextMove.proceed]


def test_sft_still_warns_when_the_measurement_is_broken() -> None:
    stats = ScoreStats.of(binary(50))
    v = decide(VerdictInputs(method="sft", stats=stats, sampled=100, grader_errors=40))
    assert v.verdict == "WARNING"
    assert [r.rule for r in v.reasons if r.level == "warning"] == ["R3"]


def test_next_moves_follow_the_diagnosis() -> None:
    v = decide(VerdictInputs(stats=ScoreStats.of(binary(3)), sampled=100))
    assert v.next_moves == [
        NextMove.adjust_grader,
        NextMove.sft_first,
        NextMove.stronger_base_model,
    ]
    assert v.reason_texts()[0].startswith("pass rate 3%")


def _stats(scores: list[float]) -> ScoreStats:
    return ScoreStats.of(scores)


def test_metric_marks_follow_the_table_and_a_binary_graders_std_follows_its_mean() -> None:
    from ftwizard.dryrun.verdict import metric_levels

    # A 45 % pass rate: std is about 0.5, far above the continuous range, yet healthy.
    binary = metric_levels(_stats([1.0] * 9 + [0.0] * 11))
    assert binary == {"mean": "note", "gt0": "note", "eq1": "warning", "std": "note"}
    # Everything 0: no signal at all.
    zeros = metric_levels(_stats([0.0] * 20))
    assert zeros["gt0"] == "no-go" and zeros["std"] == "no-go" and zeros["mean"] == "warning"


# --- groups (K answers per prompt) ------------------------------------------------------------


def _groups(zero: float, fail: float, passed: float) -> GroupStats:
    return GroupStats(
        k=4,
        groups=100,
        zero_variance_pct=zero,
        all_fail_pct=fail,
        all_pass_pct=passed,
        mean_within_std=0.3,
    )


@pytest.mark.parametrize(
    ("zero", "expected"),
    [(49.9, "GO"), (50.0, "WARNING"), (79.9, "WARNING"), (80.0, "NO-GO"), (100.0, "NO-GO")],
)
def test_zero_variance_share_thresholds(zero: float, expected: str) -> None:
    # Healthy aggregate scores (45% pass) that hide flat groups: only G1 can see them.
    verdict, rules, _ = verdict_of(binary(45), groups=_groups(zero, zero / 2, zero / 2))
    assert verdict == expected
    assert ("G1" in rules) == (expected != "GO")


def test_flat_groups_say_which_way_and_what_to_do() -> None:
    _, _, never = verdict_of(binary(45), groups=_groups(90.0, 80.0, 10.0))
    assert Diagnosis.groups_never_solved in never
    v = decide(
        VerdictInputs(stats=ScoreStats.of(binary(45)), sampled=100, groups=_groups(60, 0, 60))
    )
    assert v.diagnosis == [Diagnosis.groups_always_solved]
    assert v.next_moves[0] is NextMove.drop_flat_prompts
    flat_middle = _groups(85.0, 0.0, 0.0)
    v = decide(
        VerdictInputs(stats=ScoreStats.of(spread([0.4, 0.5, 0.6])), sampled=60, groups=flat_middle)
    )
    assert Diagnosis.groups_all_equal in v.diagnosis and NextMove.raise_temperature in v.next_moves


def test_flat_groups_are_a_note_for_a_baseline() -> None:
    verdict, rules, _ = verdict_of(binary(45), method="sft", groups=_groups(95.0, 50.0, 45.0))
    assert verdict == "GO" and "G1" not in rules
