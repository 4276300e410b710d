"""score_model and label_model graders on a judge: parsing, clipping, concurrency, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.loading import parse_grader
from ftwizard.graders.model_graders import parse_label, parse_score
from ftwizard.graders.results import GradeResult, Sample
from ftwizard.graders.runner import GraderRunner
from ftwizard.providers.base import GenerationRequest, ProviderError
from tests.scripted_judge import ScriptedJudge, user_text

SCORE = {
    "type": "score_model",
    "name": "judge",
    "model": "gpt-4.1-mini-2025-04-14",
    "range": [0, 10],
    "sampling_params": {"temperature": 0.2, "max_completions_tokens": 300},
    "input": [
        {"role": "system", "content": "Grade the answer from 0 to 10."},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "Q: {{item.q}}\nA: {{sample.output_text}}"}],
        },
    ],
}


def run(
    spec: dict[str, Any], judge: ScriptedJudge, answers: list[str], concurrency: int = 8
) -> list[GradeResult]:
    grader = parse_grader(spec)
    with GraderRunner(grader, judge=judge, concurrency=concurrency) as runner:
        return runner.grade_sync(
            [{"q": f"q{i}"} for i in range(len(answers))], [Sample.from_output(a) for a in answers]
        )


def reply(result: Any) -> str:
    return json.dumps(
        {"steps": [{"description": "checked", "conclusion": "fine"}], "result": result}
    )


def test_score_model_sends_rendered_messages_with_structured_output() -> None:
    judge = ScriptedJudge(lambda r: reply(7))
    [result] = run(SCORE, judge, ["Paris"])
    assert result == GradeResult(score=7.0, notes="fine")
    [request] = judge.requests
    assert request.model == "gpt-4.1-mini-2025-04-14"
    assert request.temperature == 0.2
    assert request.max_tokens == 300
    assert request.json_schema is not None
    assert request.json_schema["properties"]["result"] == {"type": "number"}
    assert user_text(request) == "Q: q0\nA: Paris"
    assert [m.role for m in request.messages] == ["system", "system", "user"]
    assert "a number from 0 to 10" in request.messages[0].content


def test_score_outside_the_range_is_clipped() -> None:
    answers = {"low": reply(-3), "high": reply(12.5), "mid": reply("4.5")}
    judge = ScriptedJudge(lambda r: answers[user_text(r).rsplit("A: ", 1)[1]])
    results = run(SCORE, judge, ["low", "high", "mid"])
    assert [r.score for r in results] == [0.0, 10.0, 4.5]


def test_non_numeric_answer_scores_zero_with_a_parse_error() -> None:
    judge = ScriptedJudge(lambda r: reply("excellent"))
    [result] = run(SCORE, judge, ["x"])
    assert result.score == 0.0
    assert result.error is not None
    assert result.error.startswith("model_grader_parse_error")
    assert "excellent" in result.error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"result": 0.5, "steps": []}', (0.5, None)),
        ("0.75", (0.75, None)),
        ('```json\n{"result": 1}\n```', (1.0, None)),
        ('{"result": true}', None),
        ("NaN", None),
        ("I think 0.5", None),
    ],
)
def test_parse_score(text: str, expected: tuple[float, None] | None) -> None:
    score, error = parse_score(text, 0.0, 1.0)
    if expected is None:
        assert score == 0.0
        assert error is not None
    else:
        assert (score, error) == expected


def test_parse_label() -> None:
    assert parse_label('{"result": "good", "steps": []}', ["good", "bad"]) == ("good", None)
    assert parse_label("bad", ["good", "bad"]) == ("bad", None)
    label, error = parse_label('{"result": "great"}', ["good", "bad"])
    assert label is None
    assert error is not None
    assert "not one of ['good', 'bad']" in error


def test_label_model_passes_only_passing_labels() -> None:
    spec = {
        "type": "label_model",
        "name": "sentiment",
        "model": "m",
        "input": [{"role": "user", "content": "Statement: {{sample.output_text}}"}],
        "labels": ["positive", "neutral", "negative"],
        "passing_labels": ["positive", "neutral"],
    }
    judge = ScriptedJudge(lambda r: reply(user_text(r).split(": ")[1]))
    results = run(spec, judge, ["positive", "neutral", "negative", "angry"])
    assert [r.score for r in results] == [1.0, 1.0, 0.0, 0.0]
    assert results[3].error is not None
    assert results[3].error.startswith("model_grader_parse_error")
    assert judge.requests[0].json_schema is not None
    assert judge.requests[0].json_schema["properties"]["result"]["enum"] == [
        "positive",
        "neutral",
        "negative",
    ]


def test_concurrency_is_bounded() -> None:
    judge = ScriptedJudge(lambda r: reply(5), delay_s=0.02)
    results = run(SCORE, judge, [f"a{i}" for i in range(20)], concurrency=3)
    assert len(results) == 20
    assert judge.max_in_flight == 3


def test_transient_failures_are_retried_then_recorded() -> None:
    calls: dict[str, int] = {}

    def flaky(request: GenerationRequest) -> str | BaseException:
        answer = user_text(request).rsplit("A: ", 1)[1]
        calls[answer] = calls.get(answer, 0) + 1
        if answer == "once" and calls[answer] == 1:
            return ConnectionError("connection reset")
        if answer == "always":
            return ConnectionError("connection reset")
        return reply(8)

    results = run(SCORE, ScriptedJudge(flaky), ["once", "always"])
    assert results[0].score == 8.0
    assert calls["once"] == 2
    assert results[1].score == 0.0
    assert calls["always"] == 3  # one call and two retries
    assert results[1].error == "model_grader_server_error: connection reset"


def test_final_provider_errors_are_not_retried_again_and_keys_are_redacted() -> None:
    key = "sk-proj-" + "A" * 30
    judge = ScriptedJudge(
        lambda r: ProviderError(f"bad key {key}", provider="openai", status_code=401)
    )
    [result] = run(SCORE, judge, ["x"])
    assert len(judge.requests) == 1
    assert result.error is not None
    assert key not in result.error
    assert "HTTP 401" in result.error


def test_model_grader_without_a_judge_stops_before_grading() -> None:
    with pytest.raises(InputError, match="needs a judge"):
        GraderRunner(parse_grader(SCORE)).grade_sync([{"q": "x"}], [Sample.from_output("y")])


def test_audio_parts_are_refused_per_row() -> None:
    spec = {
        **SCORE,
        "input": [{"role": "user", "content": [{"type": "input_audio", "file_id": "file-1"}]}],
    }
    [result] = run(spec, ScriptedJudge(lambda r: reply(1)), ["x"])
    assert result.score == 0.0
    assert result.error is not None
    assert "input_audio parts are not supported" in result.error


def test_model_grader_inside_multi() -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "0.5 * judge / 10 + 0.5 * exact",
        "graders": {
            "judge": SCORE,
            "exact": {
                "type": "string_check",
                "name": "e",
                "input": "{{sample.output_text}}",
                "reference": "right",
                "operation": "eq",
            },
        },
    }
    results = run(spec, ScriptedJudge(lambda r: reply(6)), ["right", "wrong"])
    assert [r.score for r in results] == [pytest.approx(0.8), pytest.approx(0.3)]


def test_every_sampling_param_reaches_the_judge_request() -> None:
    spec = {
        **SCORE,
        "sampling_params": {
            "seed": 42,
            "top_p": 0.9,
            "temperature": 0.2,
            "max_completions_tokens": 300,
            "reasoning_effort": "low",
        },
    }
    judge = ScriptedJudge(lambda r: reply(7))
    run(spec, judge, ["Paris"])
    [request] = judge.requests
    assert (request.seed, request.top_p, request.reasoning_effort) == (42, 0.9, "low")


@pytest.mark.parametrize("base_url", [None, "http://127.0.0.1:9/v1"])
@pytest.mark.parametrize("model", ["o4-mini-2025-04-16", "gpt-5-mini", "ft:o4-mini:org::abc"])
def test_reasoning_judges_get_no_max_tokens_or_temperature(
    model: str, base_url: str | None
) -> None:
    from ftwizard.providers.openai.chat import OpenAIChatProvider

    provider = OpenAIChatProvider(base_url=base_url, compatible=base_url is not None)
    request = GenerationRequest(
        model=model,
        messages=[],
        max_tokens=300,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        reasoning_effort="low",
    )
    params = provider.build_params(request)
    assert "max_tokens" not in params and "temperature" not in params and "top_p" not in params
    assert params["max_completion_tokens"] == 300
    assert (params["seed"], params["reasoning_effort"]) == (7, "low")


def test_other_judges_get_every_sampling_param() -> None:
    from ftwizard.providers.openai.chat import OpenAIChatProvider

    provider = OpenAIChatProvider(base_url="http://127.0.0.1:9/v1", compatible=True)
    request = GenerationRequest(
        model="gpt-4.1-mini-2025-04-14",
        messages=[],
        max_tokens=300,
        temperature=0.2,
        top_p=0.9,
        seed=7,
    )
    params = provider.build_params(request)
    assert (params["max_tokens"], params["temperature"], params["top_p"], params["seed"]) == (
        300,
        0.2,
        0.9,
        7,
    )
