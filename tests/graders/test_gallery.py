"""The gallery in examples/graders: every example loads, runs on its data, and scores as stated."""

from __future__ import annotations

import json

import pytest

from ftwizard.graders.loading import dataset_fields, load_grader
from ftwizard.graders.results import GradeResult
from ftwizard.graders.runner import GraderRunner
from ftwizard.graders.samples import samples_from_answers
from tests.conftest import REPO_ROOT
from tests.scripted_judge import ScriptedJudge, user_text

GALLERY = REPO_ROOT / "examples" / "graders"

# Hand-computed from each example's data file (see the comments in each grader file).
EXPECTED = {
    # Paris, Rome, "madrid" != "Madrid", Tokyo
    "exact_answer": [1.0, 1.0, 0.0, 1.0],
    # the script ignores case, so "madrid" passes
    "exact_answer_python": [1.0, 1.0, 1.0, 1.0],
    # 144 ok; 0.33 vs 0.333 within 0.01; 86,400 ok; 12 vs 13 wrong; no number
    "numeric_answer": [1.0, 1.0, 1.0, 0.0, 0.0],
    # recall@3: 2 of 2; 1 of 2 (csv.py in the top 3, test_csv.py 4th); 1 of 4
    "ranking": [1.0, 0.5, 0.25],
    # valid and all 3 fields right; valid with total wrong (0.5 + 0.5 * 2/3); not JSON
    "json_fields": [1.0, 0.5 + 0.5 * 2 / 3, 0.0],
}


def run_example(name: str, judge: ScriptedJudge | None = None) -> list[GradeResult]:
    data = GALLERY / f"{name.removesuffix('_python')}.jsonl"
    items = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    spec = load_grader(GALLERY / f"{name}.yaml", fields=dataset_fields(items))
    samples = samples_from_answers(items, list(range(1, len(items) + 1)))
    with GraderRunner(spec, judge=judge) as runner:
        return runner.grade_sync(items, samples)


def test_every_example_has_an_expectation_or_a_judge_test() -> None:
    names = {p.stem for p in GALLERY.glob("*.yaml")}
    assert names == {*EXPECTED, "rubric_judge"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_scores(name: str) -> None:
    results = run_example(name)
    assert [r.score for r in results] == pytest.approx(EXPECTED[name])
    assert [r.error for r in results] == [None] * len(results)


def test_rubric_judge_example_asks_with_the_rubric_and_the_reference() -> None:
    judge = ScriptedJudge(
        lambda r: json.dumps(
            {"steps": [], "result": 1.0 if "Forgot password" in user_text(r) else 0.0}
        )
    )
    results = run_example("rubric_judge", judge)
    assert [r.score for r in results] == [1.0, 0.0, 0.0]
    first = judge.requests[0]
    assert first.temperature == 0
    assert "Score from 0 to 1" in first.messages[1].content
    assert user_text(first).startswith("Question: How do I reset my password?\n")
    assert "Reference answer: Use 'Forgot password'" in user_text(first)
