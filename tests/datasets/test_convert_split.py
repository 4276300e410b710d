"""Conversions round-trip between formats; splits are deterministic, stratified and disjoint."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from ftwizard.datasets.commands import register
from ftwizard.datasets.conversion import ConversionSkip, convert_example, convert_file
from ftwizard.datasets.formats import DatasetFormat as F
from ftwizard.datasets.splitting import parse_val, split_file
from ftwizard.datasets.validation import validate_file
from ftwizard.errors import InputError
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code, out, _ = cli_streams(argv, capsys)
    return code, out


def cli_streams(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.handler(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("via", [F.GEMINI, F.TRL, F.RFT])
def test_chat_round_trips_through(via: F, tmp_path: Path) -> None:
    mid, back = tmp_path / "mid.jsonl", tmp_path / "back.jsonl"
    first = convert_file(DATA / "chat_valid.jsonl", mid, to=via)
    assert first.written == 12 and not first.skipped
    assert validate_file(mid, fmt=via, validation_file=mid).errors == []
    second = convert_file(mid, back, to=F.CHAT, from_format=via)
    assert second.written == 12
    assert rows(back) == rows(DATA / "chat_valid.jsonl")


def test_prompt_completion_round_trips_through_chat(tmp_path: Path) -> None:
    convert_file(DATA / "prompt_completion.jsonl", tmp_path / "chat.jsonl", to="chat")
    convert_file(tmp_path / "chat.jsonl", tmp_path / "pc.jsonl", to="prompt_completion")
    assert rows(tmp_path / "pc.jsonl") == rows(DATA / "prompt_completion.jsonl")


def test_dpo_round_trips_through_trl_preference_format(tmp_path: Path) -> None:
    convert_file(DATA / "dpo_valid.jsonl", tmp_path / "trl.jsonl", to="trl_dpo")
    trl = rows(tmp_path / "trl.jsonl")
    assert trl[0] == {
        "prompt": [{"role": "user", "content": "Describe bird 1."}],
        "chosen": [{"role": "assistant", "content": "Bird 1 has bright feathers."}],
        "rejected": [{"role": "assistant", "content": "Dunno."}],
    }
    convert_file(tmp_path / "trl.jsonl", tmp_path / "dpo.jsonl", to="dpo")
    assert rows(tmp_path / "dpo.jsonl") == rows(DATA / "dpo_valid.jsonl")


def test_gemini_format_uses_model_role_and_system_instruction() -> None:
    chat = rows(DATA / "chat_valid.jsonl")[0]
    gem = convert_example(chat, F.CHAT, F.GEMINI)
    assert gem["systemInstruction"]["parts"] == [{"text": "You answer questions about birds."}]
    assert [c["role"] for c in gem["contents"]] == ["user", "model"]


def test_chat_to_rft_keeps_the_answer_as_an_item_field() -> None:
    chat = rows(DATA / "chat_valid.jsonl")[0]
    rft = convert_example(chat, F.CHAT, F.RFT)
    assert [m["role"] for m in rft["messages"]] == ["developer", "user"]
    assert rft["reference_answer"] == "Bird number 1 is the robin of chapter 1."


def test_impossible_conversions_are_skipped_with_a_reason(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConversionSkip, match="no rejected answer"):
        convert_example(rows(DATA / "chat_valid.jsonl")[0], F.CHAT, F.DPO)
    code, out = cli(
        [
            "convert",
            str(DATA / "invalid_json.jsonl"),
            str(tmp_path / "o.jsonl"),
            "--to",
            "gemini",
            "--json",
        ],
        capsys,
    )
    data = json.loads(out)
    assert code == 1
    assert data["written"] == 12 and [s["line"] for s in data["skipped"]] == [4]


def test_convert_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes((DATA / "chat_valid.jsonl").read_bytes())
    with pytest.raises(InputError):
        convert_file(path, path, to="trl")
    assert path.read_bytes() == (DATA / "chat_valid.jsonl").read_bytes()


def test_convert_cli_missing_input_exits_2(tmp_path: Path, capsys) -> None:
    code, _ = cli(
        ["convert", str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl"), "--to", "trl"], capsys
    )
    assert code == 2


def make_labelled(path: Path, n: int = 100) -> None:
    lines = []
    for i in range(n):
        label = "rare" if i % 10 == 0 else "common"
        lines.append(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": f"q{i}"},
                        {"role": "assistant", "content": f"a{i}"},
                    ],
                    "meta": {"label": label},
                }
            )
        )
    lines.append(lines[3])  # a duplicate must not end up on both sides
    path.write_text("\n".join(lines) + "\n")


def test_split_is_deterministic_disjoint_and_sized(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl"
    make_labelled(src)
    a = split_file(src, tmp_path / "a", val=0.2, seed=7)
    again = split_file(src, tmp_path / "b", val=0.2, seed=7)
    other = split_file(src, tmp_path / "c", val=0.2, seed=8)
    assert again.validation_examples == other.validation_examples == 20
    assert (a.train_examples, a.validation_examples, a.duplicates_dropped) == (80, 20, 1)
    assert (tmp_path / "a/validation.jsonl").read_bytes() == (
        tmp_path / "b/validation.jsonl"
    ).read_bytes()
    assert (tmp_path / "a/validation.jsonl").read_bytes() != (
        tmp_path / "c/validation.jsonl"
    ).read_bytes()
    train = {json.dumps(r, sort_keys=True) for r in rows(tmp_path / "a/train.jsonl")}
    val = {json.dumps(r, sort_keys=True) for r in rows(tmp_path / "a/validation.jsonl")}
    assert not train & val and len(train | val) == 100


def test_stratified_split_keeps_proportions(tmp_path: Path) -> None:
    src = tmp_path / "data.jsonl"
    make_labelled(src)
    result = split_file(src, tmp_path / "s", val=0.2, seed=1, stratify="meta.label")
    labels = Counter(r["meta"]["label"] for r in rows(tmp_path / "s/validation.jsonl"))
    assert labels == {"common": 18, "rare": 2}
    assert result.strata["rare"] == {"train": 8, "validation": 2}


@pytest.mark.parametrize(
    ("val", "expected"), [("1", (99, 1)), ("500", (1, 99)), ("0.001", (99, 1)), ("0.999", (1, 99))]
)
def test_split_never_leaves_a_side_empty(tmp_path: Path, val: str, expected) -> None:
    src = tmp_path / "data.jsonl"
    make_labelled(src)
    result = split_file(src, tmp_path / "o", val=parse_val(val), seed=0)
    assert (result.train_examples, result.validation_examples) == expected


@pytest.mark.parametrize("bad", ["0", "1.0", "-3", "abc", "0.0"])
def test_bad_val_is_unusable_input(bad: str) -> None:
    with pytest.raises(InputError):
        parse_val(bad)


def test_split_cli_json(tmp_path: Path, capsys) -> None:
    code, out = cli(
        [
            "split",
            str(DATA / "chat_valid.jsonl"),
            "--val",
            "3",
            "--seed",
            "4",
            "-o",
            str(tmp_path / "out"),
            "--json",
        ],
        capsys,
    )
    data = json.loads(out)
    assert code == 0
    assert (data["train_examples"], data["validation_examples"]) == (9, 3)
    assert Path(data["validation_path"]).exists()


def test_split_of_one_example_is_unusable(tmp_path: Path, capsys) -> None:
    src = tmp_path / "one.jsonl"
    src.write_text((DATA / "chat_valid.jsonl").read_text().splitlines()[0] + "\n")
    code, _ = cli(["split", str(src), "--val", "0.5", "-o", str(tmp_path / "o")], capsys)
    assert code == 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_convert_writes_csv_and_parquet_that_read_back(tmp_path: Path, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    table = tmp_path / f"chat{suffix}"
    result = convert_file(DATA / "chat_valid.jsonl", table, to="chat")
    assert result.written == 12
    back = tmp_path / "back.jsonl"
    convert_file(table, back, to="chat")
    assert rows(back) == rows(DATA / "chat_valid.jsonl")
    assert validate_file(table, model="gpt-3.5-turbo").ok


def test_csv_output_needs_the_same_fields_in_every_row(tmp_path: Path) -> None:
    src = tmp_path / "rft.jsonl"
    src.write_text(
        json.dumps({"messages": [{"role": "user", "content": "a"}], "x": 1})
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "b"}], "y": 2})
        + "\n"
    )
    with pytest.raises(InputError) as info:
        convert_file(src, tmp_path / "out.csv", to="rft", from_format="rft")
    assert info.value.field == "y"
    assert list(tmp_path.iterdir()) == [src]


ONE_ANSWER_TARGETS = ["chat", "trl", "rft", "gemini", "prompt_completion"]


@pytest.fixture(params=["dpo", "trl_dpo", "gemini_preference"])
def preference_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The twelve bird preference pairs, in each preference format."""
    if request.param == "dpo":
        return DATA / "dpo_valid.jsonl"
    path = tmp_path / f"{request.param}.jsonl"
    convert_file(DATA / "dpo_valid.jsonl", path, to=request.param)
    return path


@pytest.mark.parametrize("to", ONE_ANSWER_TARGETS)
def test_preference_data_to_a_one_answer_format_is_refused_naming_the_flag(
    preference_file: Path, to: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out.jsonl"
    code, _, err = cli_streams(["convert", str(preference_file), str(out), "--to", to], capsys)
    assert code == 2
    assert "rejected answers" in err and "--preferred-only" in err
    assert str(preference_file) in err
    assert not out.exists()


@pytest.mark.parametrize("to", ONE_ANSWER_TARGETS)
def test_preferred_only_keeps_the_preferred_answers_and_counts_the_dropped(
    preference_file: Path, to: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out.jsonl"
    code, text = cli(
        ["convert", str(preference_file), str(out), "--to", to, "--preferred-only"], capsys
    )
    assert code == 0, text
    assert f"wrote 12 {to} examples" in text
    assert "dropped 12 rejected answers" in text
    assert validate_file(out, fmt=F(to), validation_file=out).errors == []
    written = out.read_text()
    assert "Bird 7 has bright feathers." in written
    assert "Dunno." not in written
    back = convert_file(out, tmp_path / "chat.jsonl", to="chat", from_format=to)
    assert back.written == 12 and back.rejected_dropped == 0


def test_preferred_only_is_counted_in_the_json_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["convert", str(DATA / "dpo_valid.jsonl"), str(out), "--to", "chat"]
    code, text = cli([*argv, "--preferred-only", "--json"], capsys)
    assert code == 0
    assert json.loads(text)["rejected_dropped"] == 12
    code, text = cli([*argv, "--json"], capsys)
    assert code == 2
    assert "--preferred-only" in json.loads(text)["error"]


def test_preference_data_keeps_both_answers_between_preference_formats(tmp_path: Path) -> None:
    result = convert_file(DATA / "dpo_valid.jsonl", tmp_path / "g.jsonl", to="gemini_preference")
    assert result.written == 12 and result.rejected_dropped == 0
    assert "Dunno." in (tmp_path / "g.jsonl").read_text()


def test_a_single_preference_example_is_not_quietly_made_one_answer() -> None:
    dpo = rows(DATA / "dpo_valid.jsonl")[0]
    with pytest.raises(ConversionSkip, match=r"keep only the preferred answer.*--preferred-only"):
        convert_example(dpo, F.DPO, F.CHAT)
    chat = convert_example(dpo, F.DPO, F.CHAT, preferred_only=True)
    assert chat["messages"][-1] == {"role": "assistant", "content": "Bird 1 has bright feathers."}
