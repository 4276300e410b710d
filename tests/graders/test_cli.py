"""``ftwizard grade``: its JSON, its exit codes, and what it tells the user."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.graders.commands import register
from tests.conftest import REPO_ROOT
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer

GALLERY = REPO_ROOT / "examples" / "graders"


def grade(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers())
    args = parser.parse_args(["grade", *argv])
    return int(args.handler(args))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    return write(tmp_path, name, "".join(json.dumps(r) + "\n" for r in rows))


def chat(reply: str, **fields: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": reply}],
        **fields,
    }


PY_GRADER = """type: python
name: tricky
source: |
  def grade(sample, item):
      if sample["output_text"] == "boom":
          raise RuntimeError("exploded")
      return 1.0 if sample["output_text"] == item["answer"] else 0.5
"""


def test_json_output_shape_and_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = jsonl(
        tmp_path,
        "d.jsonl",
        [chat("4", answer="4"), chat("boom", answer="4"), chat("5", answer="4")],
    )
    code = grade(
        "--grader", str(write(tmp_path, "g.yaml", PY_GRADER)), "--data", str(data), "--json"
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["n", "mean", "std", "pct_gt0", "pct_eq1", "errors", "scores"]
    assert out["n"] == 3
    assert out["scores"] == [1.0, 0.0, 0.5]
    assert out["mean"] == pytest.approx(0.5)
    assert out["std"] == pytest.approx((1 / 6) ** 0.5)  # deviations 0.5, -0.5, 0
    assert out["pct_gt0"] == pytest.approx(200 / 3)
    assert out["pct_eq1"] == pytest.approx(100 / 3)
    assert out["errors"] == [{"row": 2, "message": "RuntimeError: exploded (source line 3)"}]


def test_outputs_file_replaces_the_dataset_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = jsonl(tmp_path, "d.jsonl", [chat("wrong", answer="a"), chat("wrong", answer="b")])
    outputs = jsonl(tmp_path, "o.jsonl", [{"output_text": "a"}, {"output_text": "x"}])
    grader = GALLERY / "exact_answer.yaml"
    assert (
        grade("--grader", str(grader), "--data", str(data), "--outputs", str(outputs), "--json")
        == 0
    )
    assert json.loads(capsys.readouterr().out)["scores"] == [1.0, 0.0]


def test_output_json_from_outputs_file_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = jsonl(tmp_path, "d.jsonl", [{"prompt": "p", "files": ["a", "b"]}])
    outputs = jsonl(
        tmp_path,
        "o.jsonl",
        [{"output_text": "see json", "output_json": {"files": ["b", "z", "a"]}}],
    )
    assert (
        grade(
            "--grader",
            str(GALLERY / "ranking.yaml"),
            "--data",
            str(data),
            "--outputs",
            str(outputs),
            "--json",
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["scores"] == [1.0]


def test_human_output_lists_row_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = jsonl(tmp_path, "d.jsonl", [chat("boom", answer="4")])
    assert grade("--grader", str(write(tmp_path, "g.yaml", PY_GRADER)), "--data", str(data)) == 0
    out = capsys.readouterr().out
    assert "graded 1 rows" in out
    assert "mean 0.0000" in out
    assert "row 1: RuntimeError: exploded" in out


def test_python_syntax_error_exits_2_naming_the_grader_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grader = write(
        tmp_path,
        "g.yaml",
        "type: python\nname: p\nsource: |\n  def grade(sample, item):\n      return 1.0 if\n",
    )
    data = jsonl(tmp_path, "d.jsonl", [chat("x")])
    assert grade("--grader", str(grader), "--data", str(data), "--json") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{grader}:5:" in captured.err
    assert "syntax error" in captured.err


@pytest.mark.parametrize(
    ("rows", "outputs", "message"),
    [
        ([{"question": "no answer", "answer": "a"}], None, "no assistant answer to grade"),
        (
            [chat("a", answer="a")],
            [{"output_text": "a"}, {"output_text": "b"}],
            "2 outputs for 1 data rows",
        ),
        ([chat("a", answer="a")], [{"text": "a"}], "output_text"),
    ],
)
def test_unusable_data_exits_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    rows: list[dict[str, Any]],
    outputs: list[dict[str, Any]] | None,
    message: str,
) -> None:
    argv = [
        "--grader",
        str(GALLERY / "exact_answer.yaml"),
        "--data",
        str(jsonl(tmp_path, "d.jsonl", rows)),
    ]
    if outputs is not None:
        argv += ["--outputs", str(jsonl(tmp_path, "o.jsonl", outputs))]
    assert grade(*argv) == 2
    assert message in capsys.readouterr().err


def test_grader_field_missing_from_the_dataset_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = jsonl(tmp_path, "d.jsonl", [chat("a", label="a")])
    assert grade("--grader", str(GALLERY / "exact_answer.yaml"), "--data", str(data)) == 2
    assert "the dataset has no field 'answer'" in capsys.readouterr().err


def test_missing_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = jsonl(tmp_path, "d.jsonl", [chat("a", answer="a")])
    assert grade("--grader", str(tmp_path / "nope.yaml"), "--data", str(data)) == 2
    assert "grader file not found" in capsys.readouterr().err
    assert (
        grade(
            "--grader", str(GALLERY / "exact_answer.yaml"), "--data", str(tmp_path / "nope.jsonl")
        )
        == 2
    )


def test_model_grader_without_a_key_exits_2_saying_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = GALLERY / "rubric_judge.jsonl"
    assert grade("--grader", str(GALLERY / "rubric_judge.yaml"), "--data", str(data)) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err


def test_rubric_judge_end_to_end_on_a_fake_openai_server(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def judge(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        score = 1.0 if "Forgot password" in prompt else "no idea" if "No." in prompt else 0.5
        return json.dumps({"steps": [], "result": score})

    openai_server.reply_fn = judge
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    code = grade(
        "--grader",
        str(GALLERY / "rubric_judge.yaml"),
        "--data",
        str(GALLERY / "rubric_judge.jsonl"),
        "--judge-base-url",
        openai_server.v1_url,
        "--judge",
        "openai",
        "--concurrency",
        "2",
        "--json",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["scores"] == [1.0, 0.0, 0.5]
    assert [e["row"] for e in out["errors"]] == [2]
    assert out["errors"][0]["message"].startswith("model_grader_parse_error")
    bodies = openai_server.chat_bodies()
    assert len(bodies) == 3
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)
    assert openai_server.api_key not in captured.out + captured.err


def test_claude_judge_end_to_end_on_a_fake_anthropic_server(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    grader = write(
        tmp_path,
        "judge.yaml",
        "type: label_model\nname: tone\nmodel: claude-sonnet-5-5\n"
        "labels: [polite, rude]\npassing_labels: [polite]\n"
        "input:\n  - role: user\n    content: 'Tone of: {{sample.output_text}}'\n",
    )
    data = jsonl(tmp_path, "d.jsonl", [chat("Thank you!"), chat("Go away.")])

    def judge(params: dict[str, Any]) -> str:
        text = params["messages"][-1]["content"]
        text = text if isinstance(text, str) else text[0]["text"]
        return json.dumps({"steps": [], "result": "polite" if "Thank" in text else "rude"})

    anthropic_server.reply_fn = judge
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    code = grade(
        "--grader",
        str(grader),
        "--data",
        str(data),
        "--judge-base-url",
        anthropic_server.base_url,
        "--judge",
        "anthropic",
        "--json",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["scores"] == [1.0, 0.0]


def test_chat_rows_are_graded_against_their_own_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Chat SFT rows keep the expected answer in the last assistant turn; graders name it
    # item.reference_answer, everywhere rows are graded.
    tickets = REPO_ROOT / "examples" / "data" / "tickets"
    code = grade(
        "--grader", str(tickets / "grader.yaml"), "--data", str(tickets / "valid.jsonl"), "--json"
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["n"], summary["mean"], summary["errors"]) == (120, 1.0, [])
