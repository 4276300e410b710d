"""The grader exported as a Fireworks evaluator scores rollouts as the local runner does."""

from __future__ import annotations

from typing import Any

import pytest

from ftwizard.graders.export_fireworks import (
    ENTRY_FILE,
    ENTRY_FUNC,
    ExportUnsupported,
    to_fireworks_evaluator,
)
from ftwizard.graders.loading import parse_grader
from ftwizard.graders.results import Sample
from ftwizard.graders.runner import GraderRunner

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("The answer is 42.", {"ground_truth": "42", "label": "42"}),
    ("I think 41", {"ground_truth": "42", "label": "42"}),
    ('{"city": "Paris", "n": 3}', {"ground_truth": '{"city": "Paris"}', "label": "Paris"}),
    ("", {"ground_truth": "7", "label": "7"}),
]

SPECS: list[dict[str, Any]] = [
    {
        "type": "numeric",
        "name": "num",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ground_truth}}",
    },
    {"type": "regex", "name": "re", "input": "{{sample.output_text}}", "pattern": r"\b42\b"},
    {
        "type": "json_match",
        "name": "jm",
        "input": "{{sample.output_text}}",
        "reference": "{{item.ground_truth}}",
        "fields": ["city"],
    },
    {
        "type": "string_check",
        "name": "sc",
        "operation": "ilike",
        "input": "{{sample.output_text}}",
        "reference": "{{item.label}}",
    },
    {
        "type": "python",
        "name": "py",
        "source": "def grade(sample, item):\n"
        "    return 1.0 if item['label'] in sample['output_text'] else 0.25\n",
    },
]


def _load(spec: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {}
    evaluator = to_fireworks_evaluator(parse_grader(spec), evaluator_id="ev-1")
    exec(compile(evaluator.files[ENTRY_FILE], ENTRY_FILE, "exec"), namespace)
    return namespace[ENTRY_FUNC]


def _local_scores(spec: dict[str, Any]) -> list[float]:
    with GraderRunner(parse_grader(spec)) as runner:
        results = runner.grade_sync(
            [item for _, item in ROWS], [Sample.from_output(text) for text, _ in ROWS]
        )
    return [r.score for r in results]


@pytest.mark.parametrize("spec", SPECS, ids=[s["type"] for s in SPECS])
def test_exported_evaluator_matches_the_local_grader(spec: dict[str, Any]) -> None:
    evaluate = _load(spec)
    remote = []
    for text, item in ROWS:
        fields = {k: v for k, v in item.items() if k != "ground_truth"}
        messages = [
            {"role": "user", "content": "question"},
            {"role": "assistant", "content": text},
        ]
        result = evaluate(messages, ground_truth=item["ground_truth"], **fields)
        assert set(result) == {"score", "reason"}
        remote.append(result["score"])
    assert remote == _local_scores(spec)


def test_a_broken_row_scores_zero_with_the_reason() -> None:
    evaluate = _load(SPECS[0])
    result = evaluate([{"role": "assistant", "content": "3"}])  # no ground_truth
    assert result["score"] == 0.0 and "ground_truth" in result["reason"]


def test_create_body_follows_the_evaluators_v2_shape() -> None:
    evaluator = to_fireworks_evaluator(parse_grader(SPECS[4]), evaluator_id="ev-1")
    body = evaluator.create_body()
    assert body["evaluatorId"] == "ev-1"
    snippet = body["evaluator"]["criteria"][0]["codeSnippets"]
    assert snippet["language"] == "python" and snippet["entryFile"] == ENTRY_FILE
    assert snippet["entryFunc"] == ENTRY_FUNC and ENTRY_FILE in snippet["fileContents"]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (
            {
                "type": "score_model",
                "name": "judge",
                "model": "gpt-4.1",
                "range": [0, 1],
                "input": [{"role": "user", "content": "Rate {{sample.output_text}}"}],
            },
            "API key",
        ),
        (
            {
                "type": "text_similarity",
                "name": "sim",
                "evaluation_metric": "bleu",
                "input": "{{sample.output_text}}",
                "reference": "{{item.label}}",
            },
            "nltk",
        ),
        (
            {"type": "multi", "name": "both", "calculate_output": "a", "graders": {"a": SPECS[1]}},
            "formula",
        ),
    ],
)
def test_kinds_that_cannot_be_exported_say_why(spec: dict[str, Any], why: str) -> None:
    with pytest.raises(ExportUnsupported, match=why) as caught:
        to_fireworks_evaluator(parse_grader(spec), evaluator_id="ev-1")
    assert caught.value.exit_code == 2
