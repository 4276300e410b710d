"""Where samples come from: the dataset's own answers, or a model answering each row's prompt."""

from __future__ import annotations

import asyncio

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.samples import (
    answer_of,
    prompt_messages,
    samples_from_answers,
    samples_from_model,
)
from ftwizard.providers.base import GenerationRequest
from tests.scripted_judge import ScriptedJudge, user_text

CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "And Italy?"},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Ro"}, {"type": "text", "text": "me"}],
        },
    ]
}


def test_answer_is_the_last_assistant_turn_in_every_format() -> None:
    assert answer_of(CHAT) == "Rome"
    gemini = {
        "contents": [
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"text": "a1"}, {"text": "a2"}]},
        ]
    }
    assert answer_of(gemini) == "a1a2"
    dpo = {
        "input": {"messages": []},
        "preferred_output": [{"role": "assistant", "content": "good"}],
    }
    assert answer_of(dpo) == "good"
    assert answer_of({"prompt": "p", "completion": "c"}) == "c"
    assert answer_of({"messages": [{"role": "user", "content": "q"}]}) is None


def test_a_row_without_an_answer_is_named_by_its_line() -> None:
    with pytest.raises(InputError) as err:
        samples_from_answers([CHAT, {"prompt": "p"}], [3, 7], path="data.jsonl")
    assert err.value.line == 7
    assert "--outputs" in str(err.value)


def test_prompt_is_everything_before_the_last_assistant_turn() -> None:
    messages = prompt_messages(CHAT)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Be brief."),
        ("user", "Capital of France?"),
        ("assistant", "Paris"),
        ("user", "And Italy?"),
    ]
    rft_row = {"messages": [{"role": "user", "content": "q"}], "answer": "a"}
    assert [m.content for m in prompt_messages(rft_row)] == ["q"]
    assert [m.content for m in prompt_messages({"prompt": "p", "completion": "c"})] == ["p"]
    assert prompt_messages({"text": "x"}) == []


def test_a_gemini_row_is_prompted_with_its_turns_before_the_last_model_turn() -> None:
    # What a Vertex session's converted held-out file holds.
    row = {
        "systemInstruction": {"role": "system", "parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Capital of France?"}]},
            {"role": "model", "parts": [{"text": "Paris"}]},
            {"role": "user", "parts": [{"text": "And Italy?"}]},
            {"role": "model", "parts": [{"text": "Rome"}]},
        ],
    }
    assert [(m.role, m.content) for m in prompt_messages(row)] == [
        ("system", "Be brief."),
        ("user", "Capital of France?"),
        ("assistant", "Paris"),
        ("user", "And Italy?"),
    ]


def test_samples_from_a_model_keep_row_order_and_record_failures() -> None:
    def answer(request: GenerationRequest) -> str | BaseException:
        text = user_text(request)
        return RuntimeError("overloaded") if text == "fail" else f'{{"echo": "{text}"}}'

    rows = [{"messages": [{"role": "user", "content": t}]} for t in ("a", "fail", "b")]
    rows.append({"other": 1})
    judge = ScriptedJudge(answer, delay_s=0.01)
    out = asyncio.run(samples_from_model(judge, "base-model", rows, concurrency=2, max_tokens=50))
    assert [g.sample.output_text for g in out] == ['{"echo": "a"}', "", '{"echo": "b"}', ""]
    assert out[0].sample.output_json == {"echo": "a"}
    assert [g.error for g in out] == [None, "overloaded", None, "row has no prompt to answer"]
    assert judge.max_in_flight == 2
    assert {r.model for r in judge.requests} == {"base-model"}
    assert {r.max_tokens for r in judge.requests} == {50}
