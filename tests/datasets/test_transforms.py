"""Transforms do what practitioners otherwise do by hand, without touching the input file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ftwizard.datasets.formats import DatasetFormat as F
from ftwizard.datasets.transforms import Transform, keep_top_k, transform_example, transform_file
from ftwizard.datasets.validation import validate_file
from ftwizard.errors import InputError
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"

MULTI_TURN = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a bird."},
        {"role": "assistant", "content": "Robin."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Wren."},
    ]
}


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize(
    ("answer", "k", "expected"),
    [
        ('["a", "b", "c", "d"]', 2, '["a", "b"]'),
        ("1. owl\n2. hawk\n3. kite", 2, "1. owl\n2. hawk"),
        ("- owl\n- hawk\n- kite", 1, "- owl"),
        ("A single sentence answer.", 1, "A single sentence answer."),
    ],
)
def test_keep_top_k_of_list_answers(answer: str, k: int, expected: str) -> None:
    assert keep_top_k(answer, k) == expected


def test_top_k_on_an_item_field_for_rft() -> None:
    item = {"messages": [{"role": "user", "content": "Rank birds."}], "ranking": [3, 1, 2, 5]}
    out = transform_example(item, F.RFT, [Transform(kind="top_k", k=2, field="ranking")])
    assert out["ranking"] == [3, 1]


def test_fold_earlier_assistant_turns_into_the_user_message() -> None:
    out = transform_example(MULTI_TURN, F.CHAT, [Transform(kind="fold_assistant_turns")])
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": "Name a bird.\n\n<previous_assistant_message>\nRobin.\n"
            "</previous_assistant_message>\n\nAnother?",
        },
        {"role": "assistant", "content": "Wren."},
    ]


def test_stop_marker_goes_on_the_input_once() -> None:
    t = Transform(kind="append_stop_marker", marker="\n\n###\n\n")
    once = transform_example(MULTI_TURN, F.CHAT, [t])
    twice = transform_example(once, F.CHAT, [t])
    assert once["messages"][3]["content"] == "Another?\n\n###\n\n"
    assert once["messages"][1]["content"] == "Name a bird."
    assert twice == once
    pc = transform_example({"prompt": "Bird?", "completion": "Owl"}, F.PROMPT_COMPLETION, [t])
    assert pc == {"prompt": "Bird?\n\n###\n\n", "completion": "Owl"}


def test_drop_and_replace_the_system_prompt_in_gemini_data() -> None:
    gem = rows(DATA / "gemini_valid.jsonl")[0]
    dropped = transform_example(gem, F.GEMINI, [Transform(kind="drop_system_prompt")])
    assert "systemInstruction" not in dropped
    replaced = transform_example(
        gem, F.GEMINI, [Transform(kind="replace_system_prompt", text="Talk like a parrot.")]
    )
    assert replaced["systemInstruction"]["parts"] == [{"text": "Talk like a parrot."}]


def test_transform_parameters_are_checked() -> None:
    with pytest.raises(ValidationError):
        Transform(kind="top_k")
    with pytest.raises(ValidationError):
        Transform(kind="append_stop_marker")


def test_drop_invalid_writes_a_clean_copy_and_a_record(tmp_path: Path) -> None:
    src = DATA / "missing_assistant.jsonl"
    before = src.read_bytes()
    out = tmp_path / "clean.jsonl"
    result = transform_file(src, out, [Transform(kind="drop_invalid", model="gpt-3.5-turbo")])
    assert src.read_bytes() == before
    assert result.written == 12
    assert [(d.line, d.codes) for d in result.dropped] == [
        (10, ["example_missing_assistant_message"])
    ]
    assert rows(Path(result.dropped_record or ""))[0]["line"] == 10
    assert validate_file(out, model="gpt-3.5-turbo").ok


def test_drop_invalid_also_drops_unparsable_lines(tmp_path: Path) -> None:
    result = transform_file(
        DATA / "invalid_json.jsonl", tmp_path / "o.jsonl", [Transform(kind="drop_invalid")]
    )
    assert [(d.line, d.codes) for d in result.dropped] == [(4, ["invalid_json"])]


def test_unparsable_line_without_drop_invalid_is_unusable_and_writes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "o.jsonl"
    with pytest.raises(InputError) as info:
        transform_file(
            DATA / "invalid_json.jsonl", out, [Transform(kind="drop_system_prompt")], fmt="chat"
        )
    assert info.value.line == 4
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_drop_duplicates_after_other_transforms(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    a = {
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "x"},
        ]
    }
    b = {
        "messages": [
            {"role": "system", "content": "B"},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "x"},
        ]
    }
    src.write_text(json.dumps(a) + "\n" + json.dumps(b) + "\n")
    result = transform_file(
        src,
        tmp_path / "o.jsonl",
        [Transform(kind="drop_system_prompt"), Transform(kind="drop_duplicates")],
    )
    assert result.written == 1 and result.changed == 2
    assert [(d.line, d.codes) for d in result.dropped] == [(2, ["duplicate_example"])]
