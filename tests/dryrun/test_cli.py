"""``ftwizard dryrun``: the JSON it prints and its exit codes (0 ran, 2 bad input, 1 failed)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ftwizard.dryrun import commands as dryrun_commands
from tests.dryrun.helpers import row_of, write_data
from tests.dryrun.test_groups import KnownOdds
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer

MODEL = "openai:gpt-4.1-mini-2025-04-14"
REQUIRED_KEYS = {
    "n",
    "mean",
    "std",
    "pct_gt0",
    "pct_eq1",
    "errors",
    "verdict",
    "reasons",
    "per_topic",
}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ftwizard")
    dryrun_commands.register(parser.add_subparsers())
    args = parser.parse_args(["dryrun", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    grader = tmp_path / "grader.yaml"
    grader.write_text(
        'type: string_check\nname: exact\ninput: "{{sample.output_text}}"\n'
        'reference: "{{item.answer}}"\noperation: eq\n'
    )
    return {"data": str(write_data(tmp_path / "data.jsonl", 60)), "grader": str(grader)}


def base_args(files: dict[str, str], *extra: str) -> list[str]:
    # One answer per prompt unless a test asks for groups (K > 1 is tested at the end).
    k = [] if "--samples-per-prompt" in extra else ["--samples-per-prompt", "1"]
    return ["--data", files["data"], "--grader", files["grader"], "--model", MODEL, *k, *extra]


def test_json_shape_and_exit_0(
    openai_env: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Rows 0, 3, 6, ... answered right: 20 of 60.
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) % 3 == 0 else "no"
    code, out, err = run_cli(base_args(files, "--json", "--samples", "60"), capsys)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    assert set(data) >= REQUIRED_KEYS
    assert (data["n"], data["verdict"], data["errors"]) == (60, "GO", [])
    assert data["mean"] == pytest.approx(1 / 3)
    assert data["pct_gt0"] == pytest.approx(100 / 3)
    assert set(data["per_topic"]) == {"art", "bio", "geo", "math"}
    assert data["per_topic"]["math"]["n"] == 15
    assert isinstance(data["reasons"], list)
    # The cost is announced before anything is spent, on stderr.
    assert re.search(r"dry run: 60 prompts x 1 answer = 60 answers on openai:.*about \$", err)


def test_no_go_still_exits_0_with_reasons(
    openai_env: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(base_args(files, "--json", "--samples", "40", "--seed", "3"), capsys)
    data = json.loads(out)
    assert code == 0
    assert data["verdict"] == "NO-GO" and data["mean"] == 0.0
    assert any("every sample scored 0" in r for r in data["reasons"])


def test_sft_is_a_baseline(
    openai_env: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(base_args(files, "--json", "--method", "sft"), capsys)
    data = json.loads(out)
    assert (code, data["verdict"]) == (0, "GO")
    assert any("baseline" in r for r in data["reasons"])


def test_human_output(
    openai_env: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) % 2 else "no"
    code, out, _ = run_cli(base_args(files, "--samples", "20"), capsys)
    assert code == 0
    assert "mean 0.500" in out and "verdict: WARNING" in out
    assert "only 20 samples were graded" in out
    assert (
        "next: Run the dry run with more samples (More samples on the dry-run step, --samples N"
        in out
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--model": "gpt-4o"}, "did you mean openai:gpt-4o?"),
        ({"--data": "/nonexistent/data.jsonl"}, "file not found"),
        ({"--samples": "0"}, "--samples must be at least 1"),
        ({"--concurrency": "0"}, "--concurrency must be at least 1"),
        ({"--base-url": "localhost:8000"}, "must start with http"),
    ],
)
def test_unusable_input_exits_2(
    openai_env: FakeOpenAIServer,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    argv = base_args(files)
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert message in err and out == ""
    assert openai_env.requests == []


def test_bad_grader_exits_2_naming_the_line(
    openai_env: FakeOpenAIServer,
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    grader = tmp_path / "bad.yaml"
    grader.write_text(
        "type: string_check\nname: x\ninput: '{{sample.output_text}}'\noperation: eq\n"
    )
    argv = base_args(files)
    argv[argv.index("--grader") + 1] = str(grader)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "bad.yaml" in err
    assert openai_env.requests == []


def test_missing_key_exits_2_before_any_call(
    openai_server: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(base_args(files), capsys)
    assert code == 2 and "OPENAI_API_KEY" in err
    assert openai_server.requests == []


def test_generation_failing_beyond_retries_exits_1(
    openai_env: FakeOpenAIServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    def reply(body: dict[str, Any]) -> str | FakeResponse:
        if row_of(body) == 7:
            failure = openai_env.error_response(500, "boom")
            failure.headers["retry-after"] = "0"
            return failure
        return "no"

    openai_env.reply_fn = reply
    code, out, _ = run_cli(base_args(files, "--json", "--samples", "60"), capsys)
    data = json.loads(out)
    assert code == 1
    assert data["n"] == 59
    assert [(e["row"], e["stage"]) for e in data["errors"]] == [(8, "generation")]


def test_wrong_key_exits_1_without_leaking_it(
    openai_env: FakeOpenAIServer,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-proj-WRONGkey0123456789abcdefghijkl"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    code, out, err = run_cli(base_args(files, "--json"), capsys)
    assert code == 1
    reply = json.loads(out)
    # Nothing was measured: an error with its cause, and no verdict.
    assert reply["aborted"] and "measured nothing" in reply["error"] and "verdict" not in reply
    assert secret not in out + err
    assert len(openai_env.requests) < 60


@pytest.mark.slow
def test_local_builtin_tiny_runs_offline(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = base_args(files, "--json", "--samples", "3")
    argv[argv.index("--model") + 1] = "local:builtin-tiny"
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["n"] == 3 and data["errors"] == []
    assert data["usage"]["output_tokens"] > 0
    assert data["cost_usd"] == 0.0
    assert "dry run:" not in err  # local generation is free: no cost announcement


def test_vertex_model_through_the_cli(
    vertex_env: FakeVertexServer, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    def reply(body: dict[str, Any]) -> str:
        question = body["contents"][-1]["parts"][0]["text"]
        row = int(question.removeprefix("Q"))
        return f"A{row}" if row % 4 == 0 else "no"

    vertex_env.reply_fn = reply
    argv = base_args(files, "--json", "--samples", "60")
    argv[argv.index("--model") + 1] = "vertex:gemini-2.5-flash"
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert (data["n"], data["mean"]) == (60, 0.25)
    # The system turn became systemInstruction; each prompt is one user turn.
    body = vertex_env.generate_bodies()[0]
    assert body["systemInstruction"]["parts"][0]["text"] == "Answer with the code only."
    tokens = data["usage"]
    assert data["cost_usd"] == pytest.approx(
        (tokens["input_tokens"] * 0.30 + tokens["output_tokens"] * 2.50) / 1e6
    )


def test_missing_local_model_exits_2(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = base_args(files, "--samples", "2")
    argv[argv.index("--model") + 1] = "local:/nonexistent/model"
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert "/nonexistent/model" in err and "not found" in err
    assert out == ""


def test_model_grader_judge_from_the_environment(
    openai_env: FakeOpenAIServer,
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    grader = tmp_path / "judge.yaml"
    grader.write_text(
        "type: score_model\nname: judge\nmodel: gpt-4.1-mini-2025-04-14\n"
        "input:\n  - role: user\n    content: 'Grade {{sample.output_text}}'\n"
    )

    def reply(body: dict[str, Any]) -> str:
        if body.get("response_format"):  # the judge: a fixed score, so it has no noise
            return json.dumps({"steps": [], "result": 0.5})
        return "an answer"

    openai_env.reply_fn = reply
    argv = base_args(files, "--json", "--samples", "40")
    argv[argv.index("--grader") + 1] = str(grader)
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["mean"] == 0.5 and data["n"] == 40
    assert data["grader_noise"] == {"samples": 20, "mean_abs_diff": 0.0, "max_abs_diff": 0.0}
    assert data["usage"]["judge_input_tokens"] > 0
    assert len(openai_env.chat_bodies()) == 40 + 40 + 20


def test_groups_in_json_and_drop_flat_writes_a_new_file(
    openai_env: FakeOpenAIServer,
    files: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # Prompt i is right on i % 3 of its 2 answers: a third never, a third always solved.
    odds = KnownOdds(2)
    openai_env.reply_fn = lambda body: odds.answer(row_of(body))
    before = Path(files["data"]).read_text()
    out_file = tmp_path / "signal.jsonl"
    groups_of_2 = ["--samples-per-prompt", "2", "--drop-flat", str(out_file)]
    argv = base_args(files, "--json", "--samples", "60", *groups_of_2)
    code, out, err = run_cli(argv, capsys)
    data: dict[str, Any] = json.loads(out)
    assert code == 0, err
    groups = data["groups"]
    assert groups["k"] == 2 and groups["zero_variance_pct"] == pytest.approx(200 / 3)
    assert groups["all_pass_pct"] == pytest.approx(100 / 3)
    assert data["verdict"] == "WARNING" and len(openai_env.chat_bodies()) == 120
    assert Path(files["data"]).read_text() == before
    kept = [json.loads(line)["answer"] for line in out_file.read_text().splitlines()]
    assert "wrote" in err and kept == [f"A{i}" for i in range(60) if i % 3 == 1]


@pytest.mark.parametrize("value", ["abc", "1.5", "²"])
def test_a_non_integer_option_is_a_clear_message_and_exit_2(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], value: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(base_args(files, "--samples-per-prompt", value), capsys)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--samples-per-prompt: invalid int value" in err and "Traceback" not in err
