"""The dataset subcommands keep their contract: JSON shape and exit codes 0 / 1 / 2."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from ftwizard.datasets.commands import register
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.handler(args)
    return code, capsys.readouterr().out


def test_validate_valid_file_exits_0(capsys) -> None:
    code, out = run(
        ["validate", str(DATA / "chat_valid.jsonl"), "--model", "gpt-3.5-turbo", "--json"], capsys
    )
    data = json.loads(out)
    assert code == 0
    assert data["examples"] == data["valid_examples"] == 12
    assert data["errors"] == [] and data["tokens"]["total"] > 0
    assert data["cost"][0]["model"] == "gpt-3.5-turbo" and data["cost"][0]["usd"] > 0


def test_validate_problems_exit_1_with_lines(capsys) -> None:
    code, out = run(
        ["validate", str(DATA / "unrecognized_role.jsonl"), "--json", "--epochs", "2"], capsys
    )
    data = json.loads(out)
    assert code == 1
    assert [(e["line"], e["code"]) for e in data["errors"]] == [(8, "unrecognized_role")]
    assert data["cost"][0]["epochs"] == 2


def test_validate_text_output_lists_problems(capsys) -> None:
    code, out = run(["validate", str(DATA / "invalid_json.jsonl")], capsys)
    assert code == 1
    assert "line 4: [invalid_json]" in out


@pytest.mark.parametrize("target", ["missing", "directory", "unreadable"])
def test_validate_unusable_input_exits_2(tmp_path: Path, capsys, target: str) -> None:
    path = tmp_path / "x.jsonl"
    if target == "directory":
        path.mkdir()
    elif target == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root can read any file")
        path.write_text("{}\n")
        path.chmod(0)
    code, out = run(["validate", str(path), "--json"], capsys)
    assert code == 2
    assert json.loads(out)["error"]


def test_validate_unknown_format_is_unusable(capsys) -> None:
    code, out = run(["validate", str(DATA / "chat_valid.jsonl"), "--format", "yaml"], capsys)
    assert code == 2
    assert out == ""


def test_validate_csv_with_map(tmp_path: Path, capsys) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("q,a\n" + "".join(f"question {i},answer {i}\n" for i in range(12)))
    code, out = run(
        [
            "validate",
            str(path),
            "--map",
            "prompt=q",
            "--map",
            "completion=a",
            "--json",
            "--model",
            "gpt-3.5-turbo",
        ],
        capsys,
    )
    assert code == 0, out
    assert json.loads(out)["format"] == "prompt_completion"


def test_validate_without_a_model_compares_the_backend_models(capsys) -> None:
    code, out = run(["validate", str(DATA / "dpo_valid.jsonl"), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["format"] == "dpo"
    models = [c["model"] for c in data["cost"]]
    assert models[0] == "gpt-4.1-mini-2025-04-14"
    assert {"gpt-4.1-2025-04-14", "gpt-4o-mini-2024-07-18"} <= set(models)
    # gpt-3.5-turbo does not train DPO, o4-mini only RFT
    assert "gpt-3.5-turbo" not in models and "o4-mini-2025-04-16" not in models
    assert all(c["epochs"] == data["cost"][0]["epochs"] for c in data["cost"])


def test_transform_cli_drops_invalid_lines_and_records_them(tmp_path: Path, capsys) -> None:
    out = tmp_path / "clean.jsonl"
    code, text = run(
        [
            "transform",
            str(DATA / "unrecognized_role.jsonl"),
            str(out),
            "--drop-invalid",
            "--drop-system",
            "--json",
        ],
        capsys,
    )
    data = json.loads(text)
    assert code == 0
    assert data["written"] == 12 and [d["line"] for d in data["dropped"]] == [8]
    assert all(
        m["role"] != "system"
        for line in out.read_text().splitlines()
        for m in json.loads(line)["messages"]
    )


def test_transform_cli_without_a_transform_is_unusable(tmp_path: Path, capsys) -> None:
    code, _ = run(["transform", str(DATA / "chat_valid.jsonl"), str(tmp_path / "o.jsonl")], capsys)
    assert code == 2


def test_topics_cli_from_a_field(tmp_path: Path, capsys) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"prompt": "p", "completion": "c", "cat": c})
            for c in ["owls", "owls", "hawks"]
        )
    )
    code, text = run(["topics", str(path), "--field", "cat", "--json"], capsys)
    data = json.loads(text)
    assert code == 0
    assert [(t["label"], t["count"]) for t in data["topics"]] == [("owls", 2), ("hawks", 1)]
