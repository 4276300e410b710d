"""The dataset formats TRL and Vertex AI document, tested with their own examples as written.

TRL: huggingface.co/docs/trl/dataset_formats (the table of types and formats, and the
tool-calling example). Vertex: "Prepare preference tuning data for Gemini models".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.datasets.checks import check_example
from ftwizard.datasets.conversion import ConversionSkip, convert_example, convert_file
from ftwizard.datasets.formats import FORMAT_METHOD, DatasetFormat, detect_example_format
from ftwizard.datasets.problems import Code
from ftwizard.errors import InputError
from ftwizard.session import Method

F = DatasetFormat

# TRL's documented examples, as written on its dataset-formats page.
TRL_EXAMPLES: list[tuple[str, dict[str, Any], DatasetFormat, Method]] = [
    ("language modeling, standard", {"text": "The sky is blue."}, F.TEXT, Method.sft),
    (
        "language modeling, conversational",
        {
            "messages": [
                {"role": "user", "content": "What color is the sky?"},
                {"role": "assistant", "content": "It is blue."},
            ]
        },
        F.CHAT,
        Method.sft,
    ),
    ("prompt-only, standard", {"prompt": "The sky is"}, F.PROMPT_ONLY, Method.rft),
    (
        "prompt-only, conversational",
        {"prompt": [{"role": "user", "content": "What color is the sky?"}]},
        F.PROMPT_ONLY,
        Method.rft,
    ),
    (
        "prompt-completion, standard",
        {"prompt": "The sky is", "completion": " blue."},
        F.PROMPT_COMPLETION,
        Method.sft,
    ),
    (
        "prompt-completion, conversational",
        {
            "prompt": [{"role": "user", "content": "What color is the sky?"}],
            "completion": [{"role": "assistant", "content": "It is blue."}],
        },
        F.PROMPT_COMPLETION,
        Method.sft,
    ),
    (
        "preference, standard",
        {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
        F.TRL_DPO,
        Method.dpo,
    ),
    (
        "preference, standard, implicit prompt",
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        F.TRL_DPO,
        Method.dpo,
    ),
    (
        "preference, conversational",
        {
            "prompt": [{"role": "user", "content": "What color is the sky?"}],
            "chosen": [{"role": "assistant", "content": "It is blue."}],
            "rejected": [{"role": "assistant", "content": "It is green."}],
        },
        F.TRL_DPO,
        Method.dpo,
    ),
    (
        "preference, conversational, implicit prompt",
        {
            "chosen": [
                {"role": "user", "content": "What color is the sky?"},
                {"role": "assistant", "content": "It is blue."},
            ],
            "rejected": [
                {"role": "user", "content": "What color is the sky?"},
                {"role": "assistant", "content": "It is green."},
            ],
        },
        F.TRL_DPO,
        Method.dpo,
    ),
]

TRL_TOOL_CALLING = {
    "messages": [
        {"role": "user", "content": "Turn on the living room lights."},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {
                        "name": "control_light",
                        "arguments": {"room": "living room", "state": "on"},
                    },
                }
            ],
        },
        {
            "role": "tool",
            "name": "control_light",
            "content": "The lights in the living room are now on.",
        },
        {"role": "assistant", "content": "Done!"},
    ]
}

# Vertex AI's documented preference-tuning example, as written.
VERTEX_PREFERENCE = {
    "system_instruction": {"parts": [{"text": "You are a chat bot."}]},
    "contents": [{"role": "user", "parts": [{"text": "What is my favorite fruit?"}]}],
    "completions": [
        {
            "score": 1,
            "completion": {"role": "model", "parts": [{"text": "Apple! Apple! Apple!"}]},
        },
        {
            "score": 0,
            "completion": {"role": "model", "parts": [{"text": "Your favorite fruit is apple."}]},
        },
    ],
}


@pytest.mark.parametrize(
    ("example", "fmt", "method"), [e[1:] for e in TRL_EXAMPLES], ids=[e[0] for e in TRL_EXAMPLES]
)
def test_trl_documented_examples_are_detected_and_valid(
    example: dict[str, Any], fmt: DatasetFormat, method: Method
) -> None:
    assert detect_example_format(example) is fmt
    assert FORMAT_METHOD[fmt] is method
    checked = check_example(example, fmt)
    assert checked.errors == []
    assert checked.messages


def test_an_implicit_prompt_is_split_where_trl_splits_it() -> None:
    standard = TRL_EXAMPLES[7][1]
    out = convert_example(standard, F.TRL_DPO, F.DPO)
    assert out["input"]["messages"] == [{"role": "user", "content": "The sky is"}]
    assert out["preferred_output"] == [{"role": "assistant", "content": " blue."}]
    assert out["non_preferred_output"] == [{"role": "assistant", "content": " green."}]
    conversational = TRL_EXAMPLES[9][1]
    out = convert_example(conversational, F.TRL_DPO, F.DPO)
    assert out["input"]["messages"] == [{"role": "user", "content": "What color is the sky?"}]
    assert out["preferred_output"][0]["content"] == "It is blue."


def test_trl_tool_calling_is_trl_data_and_not_valid_openai_chat() -> None:
    assert detect_example_format(TRL_TOOL_CALLING) is F.TRL
    assert check_example(TRL_TOOL_CALLING, F.TRL).errors == []
    errors = check_example(TRL_TOOL_CALLING, F.CHAT).errors
    codes = [code for code, _ in errors]
    assert codes.count(Code.INVALID_TOOL_CALL) == 2
    text = " ".join(message for _, message in errors)
    assert "tool_call_id" in text and "id" in text


def test_openai_tool_calls_as_documented_still_pass() -> None:
    example = {
        "messages": [
            {"role": "user", "content": "Turn on the lights."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "control_light", "arguments": '{"state": "on"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "on"},
            {"role": "assistant", "content": "Done!"},
        ]
    }
    assert detect_example_format(example) is F.CHAT
    assert check_example(example, F.CHAT).errors == []


def test_vertex_documented_preference_example_is_accepted() -> None:
    assert detect_example_format(VERTEX_PREFERENCE) is F.GEMINI_PREFERENCE
    assert FORMAT_METHOD[F.GEMINI_PREFERENCE] is Method.dpo
    checked = check_example(VERTEX_PREFERENCE, F.GEMINI_PREFERENCE)
    assert checked.errors == [] and checked.warnings == []
    assert checked.answer == "Apple! Apple! Apple!"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda e: e["completions"].pop(), "list of two"),
        (lambda e: e["completions"][0].update(score=0), "one score of 1"),
        (lambda e: e["contents"].append({"role": "model", "parts": [{"text": "x"}]}), "user turn"),
    ],
)
def test_vertex_preference_mistakes_are_named(change: Any, words: str) -> None:
    example = json.loads(json.dumps(VERTEX_PREFERENCE))
    change(example)
    errors = check_example(example, F.GEMINI_PREFERENCE).errors
    assert any(words in message for _, message in errors), errors


def test_openai_dpo_converts_to_vertex_preference_and_back(tmp_path: Path) -> None:
    dpo = {
        "input": {
            "messages": [
                {"role": "system", "content": "You are a chat bot."},
                {"role": "user", "content": "What is my favorite fruit?"},
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "Apple! Apple! Apple!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Your favorite fruit is apple."}],
    }
    out = convert_example(dpo, F.DPO, F.GEMINI_PREFERENCE)
    assert out == VERTEX_PREFERENCE
    assert check_example(out, F.GEMINI_PREFERENCE).errors == []
    assert convert_example(out, F.GEMINI_PREFERENCE, F.DPO) == dpo


def test_dpo_to_gemini_sft_is_refused_not_silently_sft(tmp_path: Path) -> None:
    dpo = convert_example(VERTEX_PREFERENCE, F.GEMINI_PREFERENCE, F.DPO)
    with pytest.raises(ConversionSkip, match=r"preference data.*gemini_preference"):
        convert_example(dpo, F.DPO, F.GEMINI)
    src = tmp_path / "dpo.jsonl"
    src.write_text(json.dumps(dpo) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"gemini_preference.*--preferred-only"):
        convert_file(src, tmp_path / "out.jsonl", to="gemini")
    assert not (tmp_path / "out.jsonl").exists()


def test_dpo_to_gemini_sft_on_purpose_trains_on_the_preferred_answers(tmp_path: Path) -> None:
    dpo = convert_example(VERTEX_PREFERENCE, F.GEMINI_PREFERENCE, F.DPO)
    src = tmp_path / "dpo.jsonl"
    src.write_text(json.dumps(dpo) + "\n", encoding="utf-8")
    result = convert_file(src, tmp_path / "out.jsonl", to="gemini", preferred_only=True)
    assert (result.written, result.rejected_dropped) == (1, 1)
    (gemini,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert check_example(gemini, F.GEMINI).errors == []
    assert gemini["contents"][-1] == {"role": "model", "parts": [{"text": "Apple! Apple! Apple!"}]}


def test_vertex_dpo_sessions_upload_vertex_preference_data(tmp_path: Path) -> None:
    from ftwizard.datasets.pipeline import prepare
    from ftwizard.session import Backend, DatasetChoice

    dpo = convert_example(VERTEX_PREFERENCE, F.GEMINI_PREFERENCE, F.DPO)
    src = tmp_path / "dpo.jsonl"
    src.write_text(json.dumps(dpo) + "\n", encoding="utf-8")
    result, _report = prepare(
        DatasetChoice(train_path=str(src)),
        backend=Backend.vertex,
        method=Method.dpo,
        model=None,
        out_dir=tmp_path / "out",
    )
    assert result.format == F.GEMINI_PREFERENCE.value
    assert result.errors == 0
    uploaded = [json.loads(line) for line in Path(result.training_file).read_text().splitlines()]
    assert uploaded == [VERTEX_PREFERENCE]
