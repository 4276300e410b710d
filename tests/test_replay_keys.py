"""Replays driven by the keyboard: ``keys:``, ``type:`` and ``--size COLSxROWS``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.store import SessionStore
from tests.conftest import REPO_ROOT

KEYBOARD_QUICKSTART = REPO_ROOT / "examples" / "replays" / "keyboard-quickstart.yaml"


def _replay(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "replay.yaml"
    path.write_text(text)
    return path


def test_keys_and_typed_text_create_a_session_and_move_through_a_step(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nactions:\n  - screen: welcome\n  - type: typed by keys\n"
        "  - keys: enter\n  - screen: task\n  - keys: down enter\n"
        "  - expect: {name: typed by keys, task.method: dpo}\n"
        "  - press: ctrl+n\n  - screen: dataset\n",
    )
    assert main(["--replay", str(path), "--size", "80x24"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "at 80x24" in out
    # The transcript says where the keys left the focus, so a person can follow along.
    assert "keys down enter ... ok (focus: RadioSet #method)" in out


def test_typing_with_no_text_box_in_focus_fails_naming_the_focus(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: x}\nactions:\n  - screen: task\n  - type: hello\n",
    )
    assert main(["--replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 5" in out
    assert "'type' needs a text box in focus; RadioSet #method has the focus" in out


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nactions:\n  - keys: 'tab tab entr'\n", 3, "'entr' is not a key name"),
        ("version: 1\nactions:\n  - keys: ''\n", 3, "needs at least one key name"),
        ("version: 1\nactions:\n  - keys: 'tab ctrl+'\n", 3, "'ctrl+' is not a key name"),
        ("version: 1\nactions:\n  - type: ''\n", 3, "needs the text to type"),
        ("version: 1\nactions:\n  - type: 12\n", 3, "actions[0].type"),
        ("version: 1\nactions:\n  - keys: tab\n    type: x\n", 3, "exactly one of"),
    ],
)
def test_a_broken_keyboard_action_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    path = _replay(tmp_path, text)
    assert main(["--replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}" in err
    assert message in err


@pytest.mark.parametrize(
    ("size", "message"),
    [("80", "write COLSxROWS"), ("20x10", "too small"), ("wide", "not a size")],
)
def test_a_bad_size_exits_2_saying_how_to_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], size: str, message: str
) -> None:
    path = _replay(tmp_path, "version: 1\nactions: []\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--replay", str(path), "--size", size])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_size_only_applies_to_a_replay(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--size", "80x24"])
    assert exit_info.value.code == 2
    assert "only apply with --replay" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("size", ["80x24", "120x36"])
def test_the_keyboard_quickstart_tunes_a_model_that_beats_its_base(
    store: SessionStore, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    """The whole offline path by keys and typed text only, at the smallest and a common size."""
    text = KEYBOARD_QUICKSTART.read_text(encoding="utf-8")
    # Keys only: nothing set or pressed by widget id (a key name such as ctrl+n is fine).
    assert "set:" not in text
    assert not [line for line in text.splitlines() if "press:" in line]
    code = main(["--replay", str(KEYBOARD_QUICKSTART), "--size", size])
    out = capsys.readouterr().out
    assert code == 0, out
    (summary,), _ = store.list()
    evaluation = store.load(summary.id).evaluation
    assert evaluation.base_mean is not None and evaluation.tuned_mean is not None
    assert evaluation.tuned_mean - evaluation.base_mean >= 0.5
