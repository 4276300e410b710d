"""``ftwizard distill``: its JSON, its exit codes, the estimate, and a rerun after failures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.distill.commands import register
from ftwizard.distill.options import metadata_path_for
from tests.distill.test_engine import (
    GRADER,
    N,
    index_of,
    openai_teacher_reply,
    teacher_reply,
    teacher_right,
    write_rows,
)
from tests.fakes.anthropic_server import FakeAnthropicServer


def distill(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers())
    args = parser.parse_args(["distill", *argv])
    return int(args.handler(args))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    grader = tmp_path / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    data = write_rows(tmp_path / "data.jsonl")
    return {"grader": str(grader), "data": str(data), "out": str(tmp_path / "train.jsonl")}


def test_json_output_and_metadata(
    files: dict[str, str],
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    anthropic_env.reply_fn = teacher_reply
    anthropic_env.batch_polls_to_end = 0
    code = distill(
        "--data", files["data"], "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", files["grader"], "-o", files["out"], "--mode", "batch",
        "--poll-interval", "0", "--json",
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {"n", "kept", "teacher_accuracy", "cost_usd"} <= out.keys()
    assert (out["n"], out["kept"]) == (N, 16)
    assert out["teacher_accuracy"] == pytest.approx(0.8)
    assert out["cost_usd"] > 0
    meta = json.loads(metadata_path_for(files["out"]).read_text())
    assert meta["accuracy_text"] == "16 / 20 correct, 80.0 %"
    assert meta["mode"] == "batch"


def test_teacher_failures_exit_1_and_the_rerun_asks_only_for_them(
    files: dict[str, str],
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def flaky(params: dict[str, Any]) -> Any:
        if index_of(params) in (3, 7):
            return anthropic_env.error_response(400, "prompt is too long")
        return teacher_reply(params)

    anthropic_env.reply_fn = flaky
    argv = (
        "--data", files["data"], "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", files["grader"],
        "-o", files["out"], "--json",
    )  # fmt: skip
    assert distill(*argv) == 1
    first = json.loads(capsys.readouterr().out)
    assert first["failed"] == 2 and first["kept"] == 16 - 2  # rows 3 and 7 were correct ones
    assert len(anthropic_env.message_bodies()) == N

    anthropic_env.reply_fn = teacher_reply
    assert distill(*argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["kept"] == 16 and second["reused"] == N - 2
    assert len(anthropic_env.message_bodies()) == N + 2
    kept = [json.loads(line) for line in Path(files["out"]).read_text().splitlines()]
    assert len(kept) == len([i for i in range(N) if teacher_right(i)])


def test_estimate_spends_nothing(
    files: dict[str, str],
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = distill(
        "--data", files["data"], "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", files["grader"],
        "-o", files["out"], "--estimate", "--json",
    )  # fmt: skip
    assert code == 0
    estimate = json.loads(capsys.readouterr().out)
    assert estimate["to_request"] == N and estimate["usd_expected"] > 0
    assert anthropic_env.requests == []
    assert not Path(files["out"]).exists()


def test_unusable_input_exits_2(
    tmp_path: Path,
    files: dict[str, str],
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok", "label": "x"}\n{"label": "no prompt"}\n', encoding="utf-8")
    code = distill(
        "--data", str(bad), "--teacher", "anthropic:claude-haiku-4-5", "--grader", files["grader"],
        "-o", files["out"],
    )  # fmt: skip
    assert code == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert anthropic_env.requests == []


def test_missing_key_exits_2_before_any_call(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = distill(
        "--data", files["data"], "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", files["grader"],
        "-o", files["out"],
    )  # fmt: skip
    assert code == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_an_openai_teacher_relabels_through_the_batch_api(
    files: dict[str, str], openai_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    openai_env.reply_fn = openai_teacher_reply
    code = distill(
        "--data", files["data"], "--teacher", "openai:gpt-4.1-2025-04-14",
        "--grader", files["grader"], "-o", files["out"], "--mode", "batch",
        "--poll-interval", "0", "--json",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert (out["n"], out["kept"]) == (N, 16)
    # One batch, no direct calls: the batch API's half price.
    assert len(openai_env.requests_to("/v1/batches", "POST")) == 1
    assert openai_env.chat_bodies() == []


def test_bare_model_name_is_refused_with_a_suggestion(
    files: dict[str, str], anthropic_env: FakeAnthropicServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = distill(
        "--data", files["data"], "--teacher", "claude-haiku-4-5", "--grader", files["grader"],
        "-o", files["out"],
    )  # fmt: skip
    assert code == 2
    assert "anthropic:claude-haiku-4-5" in capsys.readouterr().err
    assert anthropic_env.requests == []
