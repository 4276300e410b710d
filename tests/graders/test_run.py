"""Local grading of every non-model kind: scores a user can check by hand or by the library."""

from __future__ import annotations

from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.loading import parse_grader
from ftwizard.graders.results import GradeResult, GradeSummary, Sample
from ftwizard.graders.runner import GraderRunner, grade_rows
from ftwizard.graders.similarity import wordnet_available

OUT = "{{sample.output_text}}"


def grade(spec: dict[str, Any], rows: list[tuple[dict[str, Any], str]]) -> list[GradeResult]:
    items = [item for item, _ in rows]
    samples = [Sample.from_output(text) for _, text in rows]
    return grade_rows(parse_grader(spec), items, samples)


def scores(spec: dict[str, Any], rows: list[tuple[dict[str, Any], str]]) -> list[float]:
    return [r.score for r in grade(spec, rows)]


@pytest.mark.parametrize(
    ("operation", "expected"),
    [("eq", [1, 0, 0, 0]), ("ne", [0, 1, 1, 1]), ("like", [1, 0, 1, 0]), ("ilike", [1, 1, 1, 0])],
)
def test_string_check_operations(operation: str, expected: list[float]) -> None:
    spec = {
        "type": "string_check",
        "name": "s",
        "input": OUT,
        "reference": "{{item.a}}",
        "operation": operation,
    }
    rows = [
        ({"a": "Paris"}, "Paris"),
        ({"a": "Paris"}, "paris"),
        ({"a": "Paris"}, "It is Paris."),
        ({"a": "Paris"}, "Rome"),
    ]
    assert scores(spec, rows) == expected


def _similarity(metric: str, text: str, ref: str) -> float:
    spec = {
        "type": "text_similarity",
        "name": "t",
        "input": OUT,
        "reference": "{{item.r}}",
        "evaluation_metric": metric,
    }
    return scores(spec, [({"r": ref}, text)])[0]


HYP = "the cat sat on a mat"
REF = "the cat sat on the mat"


def test_fuzzy_match_is_rapidfuzz_ratio() -> None:
    from rapidfuzz import fuzz

    assert _similarity("fuzzy_match", HYP, REF) == pytest.approx(fuzz.ratio(HYP, REF) / 100)
    # 20 + 22 characters; delete 'a', insert 'the': Indel distance 4 -> 1 - 4/42.
    assert _similarity("fuzzy_match", HYP, REF) == pytest.approx(1 - 4 / 42)


def test_rouge_scores_are_rouge_score_f_measures() -> None:
    # Unigrams: 5 of 6 words shared -> P = R = F = 5/6. Bigrams: 3 of 5 shared -> 3/5.
    assert _similarity("rouge_1", HYP, REF) == pytest.approx(5 / 6)
    assert _similarity("rouge_2", HYP, REF) == pytest.approx(3 / 5)
    # Longest common subsequence: the cat sat on mat -> 5 / 6.
    assert _similarity("rouge_l", HYP, REF) == pytest.approx(5 / 6)
    assert _similarity("rouge_5", "a b c d e", "a b c d e") == 1.0


def test_bleu_and_gleu_are_nltk_values() -> None:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from nltk.translate.gleu_score import sentence_gleu

    h, r = HYP.split(), REF.split()
    bleu = sentence_bleu([r], h, smoothing_function=SmoothingFunction().method1)
    assert _similarity("bleu", HYP, REF) == pytest.approx(bleu)
    assert _similarity("gleu", HYP, REF) == pytest.approx(sentence_gleu([r], h))
    assert _similarity("bleu", REF, REF) == pytest.approx(1.0)
    assert _similarity("bleu", "", REF) == 0.0


@pytest.mark.skipif(wordnet_available(), reason="WordNet is installed on this machine")
def test_meteor_without_wordnet_says_what_is_missing_before_grading() -> None:
    spec = parse_grader(
        {
            "type": "text_similarity",
            "name": "t",
            "input": OUT,
            "reference": "{{item.r}}",
            "evaluation_metric": "meteor",
        }
    )
    with pytest.raises(InputError) as err, GraderRunner(spec) as runner:
        runner.grade_sync([{"r": "x"}], [Sample.from_output("x")])
    assert "WordNet" in str(err.value)
    assert "nltk.downloader wordnet" in str(err.value)


@pytest.mark.skipif(not wordnet_available(), reason="meteor needs WordNet data")
def test_meteor_is_the_nltk_value() -> None:
    from nltk.translate.meteor_score import meteor_score

    expected = meteor_score([REF.split()], HYP.split())
    assert _similarity("meteor", HYP, REF) == pytest.approx(expected)


def test_cosine_cannot_run_locally_and_says_why() -> None:
    spec = parse_grader(
        {
            "type": "text_similarity",
            "name": "t",
            "input": OUT,
            "reference": "{{item.r}}",
            "evaluation_metric": "cosine",
        }
    )
    with pytest.raises(InputError, match="evals only"), GraderRunner(spec) as runner:
        runner.grade_sync([{"r": "x"}], [Sample.from_output("x")])


@pytest.mark.parametrize(
    ("metric", "k", "expected"),
    [
        # predicted a, b, c, d; right answers b, d, e
        ("jaccard", None, 2 / 5),  # {b, d} / {a, b, c, d, e}
        ("mrr", None, 1 / 2),  # first right answer at rank 2
        ("precision_at_k", 2, 1 / 2),  # top 2 = a, b -> 1 right of 2
        ("precision_at_k", 4, 2 / 4),
        ("recall_at_k", 2, 1 / 3),  # 1 of the 3 right answers in the top 2
        ("recall_at_k", 4, 2 / 3),
    ],
)
def test_ranking_metrics(metric: str, k: int | None, expected: float) -> None:
    spec = {
        "type": "ranking",
        "name": "r",
        "input": "{{sample.output_json}}",
        "reference": "{{item.files}}",
        "metric": metric,
    }
    if k is not None:
        spec["k"] = k
    row = ({"files": ["b", "d", "e"]}, '["a", "b", "c", "d"]')
    assert scores(spec, [row]) == [pytest.approx(expected)]


def test_ranking_reads_one_answer_per_line_and_ignores_repeats() -> None:
    spec = {
        "type": "ranking",
        "name": "r",
        "input": OUT,
        "reference": "{{item.files}}",
        "metric": "precision_at_k",
        "k": 2,
        "case_sensitive": False,
    }
    # "B.py" repeated counts once, so the top 2 are b.py and c.py: 1 right of 2.
    assert scores(spec, [({"files": ["b.py"]}, "B.py\nb.py\nc.py\n")]) == [0.5]


def test_ranking_mrr_with_no_right_answer_is_zero() -> None:
    spec = {
        "type": "ranking",
        "name": "r",
        "input": OUT,
        "reference": "{{item.f}}",
        "metric": "mrr",
    }
    assert scores(spec, [({"f": ["x"]}, "a\nb")]) == [0.0]


def test_numeric_tolerance_and_extraction() -> None:
    spec = {
        "type": "numeric",
        "name": "n",
        "input": OUT,
        "reference": "{{item.n}}",
        "tolerance": 0.5,
    }
    rows = [
        ({"n": 10}, "The answer is 10.4"),  # |0.4| <= 0.5
        ({"n": 10}, "The answer is 10.6"),  # |0.6| > 0.5
        ({"n": "1,234"}, "first 3 then 1,234"),  # last number, thousands separator
        ({"n": 2}, "no digits here"),
        ({"n": -3}, "-3"),
    ]
    results = grade(spec, rows)
    assert [r.score for r in results] == [1, 0, 1, 0, 1]
    assert results[3].notes == "no number in the answer"
    assert results[0].error is None


def test_numeric_relative_tolerance() -> None:
    spec = {
        "type": "numeric",
        "name": "n",
        "input": OUT,
        "reference": "{{item.n}}",
        "rel_tolerance": 0.01,
        "extract": "whole",
    }
    assert scores(
        spec, [({"n": 1000}, "1009"), ({"n": 1000}, "1011"), ({"n": 1000}, "about 1000")]
    ) == [1, 0, 0]


def test_regex_search_and_fullmatch() -> None:
    base = {"type": "regex", "name": "r", "input": OUT, "pattern": r"answer: \d+"}
    rows = [({}, "final answer: 42"), ({}, "Answer: 42"), ({}, "answer: x")]
    assert scores(base, rows) == [1, 0, 0]
    assert scores({**base, "flags": ["ignorecase"]}, rows) == [1, 1, 0]
    assert scores({**base, "mode": "fullmatch"}, rows) == [0, 0, 0]


def test_json_match_scores_the_share_of_matching_fields() -> None:
    spec = {
        "type": "json_match",
        "name": "j",
        "input": OUT,
        "reference": "{{item.want}}",
        "fields": ["name", "age", "tags[0]"],
    }
    want = {"name": "Ada", "age": 36, "tags": ["math"]}
    results = grade(
        spec,
        [
            ({"want": want}, '{"name": "Ada", "age": 36, "tags": ["math"]}'),
            ({"want": want}, '```json\n{"name": "Ada", "age": 37}\n```'),
            ({"want": want}, "not json"),
        ],
    )
    assert [r.score for r in results] == [1.0, pytest.approx(1 / 3), 0.0]
    assert results[1].notes == "age differs; tags[0] missing"
    assert "not JSON" in results[2].notes


def test_json_match_without_fields_compares_whole_values() -> None:
    spec = {
        "type": "json_match",
        "name": "j",
        "input": "{{sample.output_json}}",
        "reference": "{{item.want}}",
    }
    assert scores(spec, [({"want": [1, 2]}, "[1, 2]"), ({"want": [1, 2]}, "[2, 1]")]) == [1, 0]


def test_json_schema_validates_the_answer() -> None:
    spec = {
        "type": "json_schema",
        "name": "j",
        "input": OUT,
        "schema": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    }
    results = grade(spec, [({}, '{"x": 1}'), ({}, '{"x": "1"}'), ({}, "{")])
    assert [r.score for r in results] == [1, 0, 0]
    assert results[1].notes.startswith("x: '1' is not of type 'integer'")


def test_invalid_json_schema_is_refused_when_loading() -> None:
    with pytest.raises(InputError, match="not a valid JSON Schema"):
        parse_grader(
            {"type": "json_schema", "name": "j", "input": OUT, "schema": {"type": "nonsense"}}
        )


def test_missing_template_value_is_a_row_error_scored_zero() -> None:
    spec = {
        "type": "string_check",
        "name": "s",
        "input": OUT,
        "reference": "{{item.a}}",
        "operation": "eq",
    }
    results = grade(spec, [({"a": "x"}, "x"), ({"b": "x"}, "x")])
    assert results[0] == GradeResult(score=1.0)
    assert results[1].score == 0.0
    assert results[1].error is not None
    assert "invalid_variable_error" in results[1].error
    assert "no field 'a'" in results[1].error


def test_multi_combines_sub_scores_with_the_formula() -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "0.75 * exact + 0.25 * has_digit",
        "graders": {
            "exact": {
                "type": "string_check",
                "name": "e",
                "input": OUT,
                "reference": "{{item.a}}",
                "operation": "eq",
            },
            "has_digit": {"type": "regex", "name": "d", "input": OUT, "pattern": r"\d"},
        },
    }
    results = grade(spec, [({"a": "42"}, "42"), ({"a": "42"}, "41"), ({"a": "x"}, "x")])
    assert [r.score for r in results] == [1.0, 0.25, 0.75]
    assert results[1].sub_scores == {"exact": 0.0, "has_digit": 1.0}


def test_multi_formula_math_error_is_a_row_error() -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "1 / a",
        "graders": {"a": {"type": "regex", "name": "d", "input": OUT, "pattern": r"\d"}},
    }
    results = grade(spec, [({}, "1"), ({}, "x")])
    assert results[0].score == 1.0
    assert results[1].score == 0.0
    assert results[1].error is not None
    assert "division by zero" in results[1].error


def test_multi_sub_grader_error_counts_as_zero_and_is_recorded() -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "0.5 * a + 0.5 * b",
        "graders": {
            "a": {"type": "regex", "name": "d", "input": OUT, "pattern": r"\d"},
            "b": {
                "type": "string_check",
                "name": "e",
                "input": OUT,
                "reference": "{{item.missing}}",
                "operation": "eq",
            },
        },
    }
    [result] = grade(spec, [({}, "7")])
    assert result.score == 0.5
    assert result.error is not None
    assert result.error.startswith("b: invalid_variable_error")


def test_output_json_is_parsed_from_output_text() -> None:
    assert Sample.from_output('{"a": 1}').output_json == {"a": 1}
    assert Sample.from_output("42").output_json is None  # only objects and arrays
    assert Sample.from_output("x", {"given": True}).output_json == {"given": True}


def test_summary_figures() -> None:
    results = [
        GradeResult(score=1.0),
        GradeResult(score=0.5),
        GradeResult(score=0.0, error="boom"),
        GradeResult(score=0.0),
    ]
    s = GradeSummary.from_results(results, rows=[1, 2, 5, 6])
    assert s.n == 4
    assert s.mean == 0.375
    # population std: mean of squared deviations (0.390625+0.015625+0.140625+0.140625)/4
    assert s.std == pytest.approx((0.6875 / 4) ** 0.5)
    assert s.pct_gt0 == 50.0
    assert s.pct_eq1 == 25.0
    assert [(e.row, e.message) for e in s.errors] == [(5, "boom")]
    assert s.scores == [1.0, 0.5, 0.0, 0.0]


def test_a_missing_metric_package_is_named_before_grading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "rouge_score" else real(name)
    )
    spec = parse_grader(
        {
            "type": "text_similarity",
            "name": "t",
            "input": OUT,
            "reference": "x",
            "evaluation_metric": "rouge_2",
        }
    )
    with pytest.raises(InputError, match=r"pip install rouge-score"), GraderRunner(spec) as r:
        r.grade_sync([{}], [Sample.from_output("x")])
