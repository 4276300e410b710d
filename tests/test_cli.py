"""The command line: session commands, JSON shapes, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ftwizard import __version__
from ftwizard.cli import main
from ftwizard.store import SessionStore


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_new_prints_an_id_that_show_and_sessions_know(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "--name", "cli run", "--method", "rft", "--backend", "openai"]) == 0
    session_id = capsys.readouterr().out.strip()
    assert session_id.startswith("cli-run-")

    assert main(["show", session_id, "--json"]) == 0
    shown = _json(capsys)
    assert isinstance(shown, dict)
    assert shown["id"] == session_id
    assert shown["task"] == {
        "method": "rft",
        "backend": "openai",
        "base_model": "o4-mini-2025-04-16",
    }
    assert shown["step"] == "task"

    assert main(["new", "--name", "second"]) == 0
    second_id = capsys.readouterr().out.strip()
    assert main(["sessions", "--json"]) == 0
    listed = _json(capsys)
    assert isinstance(listed, list)
    assert [row["id"] for row in listed] == [second_id, session_id]
    assert {"id", "name", "step", "backend", "updated"} <= set(listed[0])
    assert listed[1]["backend"] == "openai"


def test_new_refuses_a_base_model_the_backend_cannot_tune(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "--backend", "openai", "--base-model", "gpt-5"]) == 2
    err = capsys.readouterr().err
    assert "field 'base_model'" in err
    assert "gpt-4.1-mini-2025-04-14" in err
    assert store.list() == ([], [])


def test_show_json_never_contains_keys(
    store: SessionStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-" + "q" * 40
    monkeypatch.setenv("OPENAI_API_KEY", key)
    assert main(["new", "--name", key]) == 0
    session_id = capsys.readouterr().out.strip()
    assert main(["show", session_id, "--json"]) == 0
    out = capsys.readouterr().out
    assert key not in out
    assert "[redacted:OPENAI_API_KEY]" in out


def test_unknown_session_exits_2_with_a_message(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", "missing-0000", "--json"]) == 2
    assert "no session 'missing-0000'" in capsys.readouterr().err
    assert main(["resume", "missing-0000"]) == 2
    assert main(["export-replay", "missing-0000"]) == 2


def test_resume_refuses_a_session_open_in_another_process(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "--name", "busy"]) == 0
    session_id = capsys.readouterr().out.strip()
    with store.lock(session_id):
        assert main(["resume", session_id]) == 2
    assert "open in another ftwizard process" in capsys.readouterr().err


def test_sessions_lists_nothing_helpfully(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions"]) == 0
    assert "No saved sessions" in capsys.readouterr().out
    assert main(["sessions", "--json"]) == 0
    assert _json(capsys) == []


def test_replay_options_without_replay_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--allow-spend"])
    assert exit_info.value.code == 2
    assert "only apply with --replay" in capsys.readouterr().err


def test_version_and_help_run_as_a_program() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "ftwizard", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.strip() == f"ftwizard {__version__}"
    help_text = subprocess.run(
        [sys.executable, "-m", "ftwizard", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("resume", "sessions", "show", "new", "export-replay", "--replay"):
        assert command in help_text.stdout


def test_help_imports_nothing_heavy() -> None:
    # `ftwizard --help` must stay fast: no Textual, pydantic or SDK import to print it.
    probe = (
        "import sys\n"
        "from ftwizard.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = [m for m in ('textual', 'pydantic', 'openai', 'anthropic', 'torch') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
