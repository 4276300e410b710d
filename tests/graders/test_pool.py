"""Python graders: bad graders fail safely, row by row, and the worker pool survives them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ftwizard.graders.loading import parse_grader
from ftwizard.graders.python_pool import PythonGraderPool, PythonOutcome
from ftwizard.graders.results import Sample
from ftwizard.graders.runner import GraderRunner
from ftwizard.graders.sandbox_worker import check_result

EXACT = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['a'] else 0.0\n"

MISBEHAVING = """
import signal


def grade(sample, item):
    kind = item["kind"]
    if kind == "loop":
        while True:
            pass
    if kind == "stubborn":
        # Ignores the soft timeout: only killing the process stops it.
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        while True:
            pass
    if kind == "raise":
        raise ValueError("bad row")
    if kind == "nan":
        return float("nan")
    if kind == "inf":
        return float("inf")
    if kind == "big":
        return 1.5
    if kind == "text":
        return "1.0"
    if kind == "memory":
        return len(bytearray(1024 ** 3))
    if kind == "exit":
        import os
        os._exit(3)
    print("graders may print; it must not reach our stdout")
    return 0.25
"""


@pytest.fixture
def pool() -> Iterator[PythonGraderPool]:
    with PythonGraderPool(2, timeout_s=0.5, memory_limit_mb=512) as p:
        yield p


def rows(*kinds: str) -> list[tuple[dict[str, object], dict[str, object]]]:
    return [({"output_text": ""}, {"kind": k}) for k in kinds]


def test_scores_come_back_in_row_order(pool: PythonGraderPool) -> None:
    data = [({"output_text": str(i % 3)}, {"a": "1"}) for i in range(300)]
    outcomes = pool.grade(EXACT, data)
    assert [o.score for o in outcomes] == [1.0 if i % 3 == 1 else 0.0 for i in range(300)]
    assert all(o.error is None for o in outcomes)


def test_pool_is_reused_across_calls_not_a_process_per_row(pool: PythonGraderPool) -> None:
    pool.grade(EXACT, [({"output_text": "1"}, {"a": "1"})] * 50)
    first = pool.pids()
    pool.grade(EXACT, [({"output_text": "1"}, {"a": "1"})] * 50)
    assert len(first) == 2
    assert pool.pids() == first
    # Another source gets workers of its own (one grader never shares a process with
    # another); the first source's workers stay for its next call.
    pool.grade("def grade(s, i):\n    return 0.5\n", [({}, {})] * 10)
    assert set(first) < set(pool.pids())
    assert len(set(pool.pids())) == 4
    pool.grade(EXACT, [({"output_text": "1"}, {"a": "1"})] * 5)
    assert set(first) < set(pool.pids())
    assert pool.restarts == 0


def test_exceptions_and_invalid_results_score_zero_with_the_error(
    pool: PythonGraderPool,
) -> None:
    outcomes = pool.grade(MISBEHAVING, rows("ok", "raise", "nan", "inf", "big", "text", "ok"))
    assert [o.score for o in outcomes] == [0.25, 0, 0, 0, 0, 0, 0.25]
    errors = [o.error for o in outcomes]
    assert errors[0] is None
    assert errors[1] == "ValueError: bad row (source line 16)"
    assert errors[2] == "grade() returned nan, not a finite number"
    assert errors[3] == "grade() returned inf, not a finite number"
    assert errors[4] == "grade() returned 1.5, outside [0, 1]"
    assert errors[5] == "grade() returned str '1.0', not a number"
    assert pool.restarts == 0


def test_a_grader_that_loops_times_out_and_the_next_row_is_graded(
    pool: PythonGraderPool,
) -> None:
    outcomes = pool.grade(MISBEHAVING, rows("loop", "ok"))
    assert outcomes[0] == PythonOutcome(0.0, "grade() timed out after 0.5 s")
    assert outcomes[1] == PythonOutcome(0.25)


def test_a_grader_that_never_returns_is_killed_and_the_pool_recovers(
    pool: PythonGraderPool,
) -> None:
    pool.grade(MISBEHAVING, rows("ok", "ok", "ok", "ok"))
    before = set(pool.pids())
    outcomes = pool.grade(MISBEHAVING, rows("stubborn", "ok", "ok"))
    assert outcomes[0].score == 0.0
    assert outcomes[0].error is not None
    assert "did not return within 0.5 s" in outcomes[0].error
    assert [o.score for o in outcomes[1:]] == [0.25, 0.25]
    assert pool.restarts == 1
    # One worker was replaced, the other kept.
    assert len(set(pool.pids()) & before) == 1
    assert len(pool.pids()) == 2
    assert [o.score for o in pool.grade(MISBEHAVING, rows("ok"))] == [0.25]


def test_a_grader_that_kills_its_process_is_recorded_and_the_pool_recovers(
    pool: PythonGraderPool,
) -> None:
    outcomes = pool.grade(MISBEHAVING, rows("exit", "ok"))
    assert outcomes[0].error == "the grader's process died (exit code 3) on this row"
    assert outcomes[1] == PythonOutcome(0.25)


def test_memory_limit_turns_a_huge_allocation_into_a_row_error(pool: PythonGraderPool) -> None:
    outcomes = pool.grade(MISBEHAVING, rows("memory", "ok"))
    assert outcomes[0] == PythonOutcome(0.0, "grade() ran out of memory (memory limit 512 MB)")
    assert outcomes[1] == PythonOutcome(0.25)


def test_grader_print_does_not_reach_our_stdout(
    pool: PythonGraderPool, capfd: pytest.CaptureFixture[str]
) -> None:
    pool.grade(MISBEHAVING, rows("ok"))
    assert "must not reach" not in capfd.readouterr().out


def test_source_that_fails_on_import_fails_every_row_with_the_reason(
    pool: PythonGraderPool,
) -> None:
    source = "import no_such_module_here\n\ndef grade(s, i):\n    return 1.0\n"
    outcomes = pool.grade(source, rows("a", "b", "c"))
    assert {o.score for o in outcomes} == {0.0}
    assert all(
        o.error is not None and "ModuleNotFoundError" in o.error and "no_such_module" in o.error
        for o in outcomes
    )


def test_check_result_accepts_ints_and_numpy_style_reals() -> None:
    from fractions import Fraction

    assert check_result(1) == (1.0, None)
    assert check_result(Fraction(1, 4)) == (0.25, None)
    assert check_result(True) == (0.0, "grade() returned bool True, not a number")
    assert check_result(None) == (0.0, "grade() returned NoneType None, not a number")


def test_runner_grades_python_specs_through_a_shared_pool(pool: PythonGraderPool) -> None:
    spec = parse_grader({"type": "python", "name": "p", "source": EXACT})
    runner = GraderRunner(spec, pool=pool)
    results = runner.grade_sync(
        [{"a": "x"}, {"a": "y"}], [Sample.from_output("x"), Sample.from_output("x")]
    )
    runner.close()  # a pool passed in stays open for its owner
    assert [r.score for r in results] == [1.0, 0.0]
    assert len(pool.pids()) == 2


def test_workers_started_ahead_are_the_ones_that_grade(pool: PythonGraderPool) -> None:
    # The dry run starts the workers while its first requests are in flight.
    spec = parse_grader({"type": "python", "name": "p", "source": EXACT})
    runner = GraderRunner(spec, pool=pool)
    assert runner.python_sources() == [EXACT]
    runner.start_workers()
    started = pool.pids()
    assert len(started) == 2
    results = runner.grade_sync([{"a": "x"}], [Sample.from_output("x")])
    assert [r.score for r in results] == [1.0]
    assert pool.pids() == started and pool.restarts == 0
    assert (
        GraderRunner(
            parse_grader(
                {
                    "type": "string_check",
                    "name": "s",
                    "input": "a",
                    "reference": "a",
                    "operation": "eq",
                }
            )
        ).python_sources()
        == []
    )
