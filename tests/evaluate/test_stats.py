"""Wilson and t intervals, Cohen's kappa, and the grader-based base/tuned comparison, against
values computed by hand."""

from __future__ import annotations

import pytest

from ftwizard.evaluate.grader_comparison import compare_scores
from ftwizard.evaluate.pairwise_report import WinCounts
from ftwizard.evaluate.stats import cohen_kappa, mean_interval, t_quantile_975, wilson_interval
from ftwizard.graders.results import GradeResult


def test_wilson_seven_of_ten() -> None:
    # p = 0.7, z^2 = 3.8415: centre (0.7 + 0.19208) / 1.38415 = 0.64449,
    # half 1.96 * sqrt(0.021 + 0.0096038) / 1.38415 = 0.24772.
    lo, hi = wilson_interval(7, 10)
    assert lo == pytest.approx(0.3968, abs=1e-4)
    assert hi == pytest.approx(0.8922, abs=1e-4)


def test_wilson_edges() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_kappa_textbook_two_by_two() -> None:
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    first = ["y"] * 25 + ["n"] * 25
    second = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_kappa_three_categories_and_undefined() -> None:
    # 6 items, agreement on 5: p_o = 5/6. Marginals r1 a2 b2 t2, r2 a3 b2 t1:
    # p_e = (2*3 + 2*2 + 2*1) / 36 = 1/3; kappa = (5/6 - 1/3) / (2/3) = 0.75.
    r1 = ["a", "a", "b", "b", "tie", "tie"]
    assert cohen_kappa(r1, ["a", "a", "b", "b", "a", "tie"]) == pytest.approx(0.75)
    r2 = ["a", "a", "b", "b", "a", "b"]
    # agreement 4/6; marginals r2 a3 b3 t0: p_e = (2*3 + 2*3) / 36 = 1/3; kappa = 0.5.
    assert cohen_kappa(r1, r2) == pytest.approx(0.5)
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert cohen_kappa([], []) is None


def test_t_interval() -> None:
    assert t_quantile_975(1) == pytest.approx(12.7062)
    assert t_quantile_975(60) == pytest.approx(2.0003, abs=2e-4)
    # values 1, 2, 3: mean 2, s = 1, half = 4.3027 / sqrt(3) = 2.4842.
    lo, hi = mean_interval([1.0, 2.0, 3.0])
    assert lo == pytest.approx(2 - 2.48417, abs=1e-4) and hi == pytest.approx(2 + 2.48417, abs=1e-4)


def test_win_counts_count_a_tie_as_half() -> None:
    counts = WinCounts.from_verdicts(["b"] * 6 + ["a"] * 2 + ["tie"] * 2)
    assert (counts.a_wins, counts.b_wins, counts.ties) == (2, 6, 2)
    assert counts.b_win_rate == pytest.approx(0.7)
    assert counts.ci95 == pytest.approx(wilson_interval(7, 10))
    assert counts.decided is None  # 0.3968 < 0.5


def test_grader_comparison_flips_and_paired_interval() -> None:
    ids = ["r1", "r2", "r3", "r4", "r5"]
    base = [GradeResult(score=s) for s in (0.0, 1.0, 0.0, 1.0, 0.0)]
    tuned = [GradeResult(score=s) for s in (1.0, 1.0, 1.0, 0.0, 0.0)]
    result = compare_scores(ids, base, tuned, threshold=1.0)
    assert (result.base_mean, result.tuned_mean) == (pytest.approx(0.4), pytest.approx(0.6))
    assert result.fail_to_pass == 2 and result.pass_to_fail == 1
    assert [(f.item_id, f.direction) for f in result.flips] == [
        ("r1", "fail_to_pass"),
        ("r3", "fail_to_pass"),
        ("r4", "pass_to_fail"),
    ]
    # diffs 1, 0, 1, -1, 0: mean 0.2, s^2 = (0.64+0.04+0.64+1.44+0.04)/4 = 0.7.
    half = 2.7764 * (0.7 / 5) ** 0.5
    assert result.diff_ci95 == pytest.approx((0.2 - half, 0.2 + half), abs=1e-4)
    assert not result.tuned_better
    assert any("only 5 rows" in w for w in result.warnings)


def test_grader_comparison_skips_rows_without_an_answer() -> None:
    result = compare_scores(
        ["r1", "r2"],
        [GradeResult(score=1.0), None],
        [GradeResult(score=1.0), GradeResult(score=1.0)],
    )
    assert result.n == 1 and result.skipped == 1
