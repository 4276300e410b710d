"""Replays: every example runs, broken files are refused with their line, sessions export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from ftwizard.app import make_app
from ftwizard.autopilot import run_replay, run_replay_async
from ftwizard.cli import main
from ftwizard.flow import start_session
from ftwizard.replay import export_replay, parse_replay, parse_replay_text
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore

from .conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "replays"


def _replay(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "replay.yaml"
    path.write_text(text)
    return path


def test_every_example_replay_passes(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # quickstart starts the session that the other examples resume as 'latest'.
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    ordered = ["quickstart.yaml", *[n for n in names if n != "quickstart.yaml"]]
    assert len(ordered) >= 2
    for name in ordered:
        code = main(["--replay", str(EXAMPLES / name), "--screenshots", str(tmp_path / "shots")])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "replay passed" in out
    assert (tmp_path / "shots" / "task.svg").is_file()


def test_a_failed_expectation_exits_1_naming_the_line(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: x}\nactions:\n  - screen: task\n"
        "  - expect: {task.method: dpo}\n",
    )
    assert main(["--replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "line 5" in out
    assert "task.method is 'sft', expected 'dpo'" in out


def test_a_disabled_button_fails_the_replay(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: x}\nactions:\n  - screen: task\n  - press: next\n"
        "  - screen: dataset\n  - press: next\n",
    )
    assert main(["--replay", str(path)]) == 1
    assert "button #next is disabled" in capsys.readouterr().out


def test_an_unknown_widget_fails_the_replay(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: x}\nactions:\n  - screen: task\n  - set: {method: ppo}\n",
    )
    assert main(["--replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "#method has no choice 'ppo'" in out
    assert "'sft', 'dpo', 'rft'" in out


def test_a_screen_that_never_appears_times_out(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: x}\nactions:\n  - screen: dataset\n    timeout: 0.3\n",
    )
    assert main(["--replay", str(path)]) == 1
    assert "screen 'dataset' did not appear within 0.3s (current screen: 'task')" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("version: 1\nactions:\n  - screen: task\n  - press next\n", 4, "each action is a mapping"),
        ("version: 1\nactions:\n  - screen: task\n    press: next\n", 3, "exactly one of"),
        ("version: 2\nactions: []\n", 1, "unsupported version 2"),
        ("actions: []\n", 1, "missing 'version: 1'"),
        ("version: 1\nactions:\n  - set: {}\n", 3, "needs at least one widget id"),
        ("version: 1\nsession: {method: ppo}\nactions: []\n", 2, "session.method"),
        ("version: 1\nactions:\n  - expect: {a: {min: 3, max: 1}}\n", 3, "greater than max"),
        ("version: 1\nactions: [\n", 3, "not valid YAML"),
        ("version: 1\nfoo: 1\nactions: []\n", 2, "unknown key"),
        ("version: 1\nactions:\n  - wait: {for: workers, timeout: -1}\n", 3, "greater than 0"),
        ("version: 1\nactions:\n  - screenshot: ../x\n", 3, "screenshot name"),
    ],
)
def test_a_broken_replay_file_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, message: str
) -> None:
    path = _replay(tmp_path, text)
    assert main(["--replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}" in err
    assert message in err


def test_a_missing_replay_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--replay", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_resuming_an_unknown_session_exits_2(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _replay(tmp_path, "version: 1\nresume: ghost-123\nactions: []\n")
    assert main(["--replay", str(path)]) == 2
    assert "no session 'ghost-123'" in capsys.readouterr().out


def test_a_crash_inside_the_app_fails_the_replay(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that raises ends the app with an error code; the replay must not report a pass.
    def broken_list(self: SessionStore) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SessionStore, "list", broken_list)
    replay = parse_replay_text(
        "version: 1\nactions:\n  - screen: welcome\n  - wait: workers\n", tmp_path / "r.yaml"
    )
    out = io.StringIO()
    result = run_replay(replay, store=store, out=out)
    assert result.exit_code == 1, out.getvalue()
    assert "replay FAILED" in out.getvalue()
    assert "passed" not in out.getvalue()


def test_keys_never_reach_files_or_transcript(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-" + "k3y" * 12
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    path = _replay(
        tmp_path,
        "version: 1\nsession: {name: secrets}\nactions:\n  - screen: task\n"
        f"  - set: {{base-model: {key}}}\n  - expect: {{task.base_model: {key}}}\n",
    )
    out = io.StringIO()
    run_replay(parse_replay(path), store=store, out=out)
    assert key not in out.getvalue()
    for file in store.home.rglob("*"):
        if file.is_file():
            assert key not in file.read_text(errors="replace"), file


async def test_export_replay_reproduces_the_decisions_in_a_new_session(
    store: SessionStore, tmp_path: Path
) -> None:
    original = start_session(store, "exported", backend=Backend.openai)
    app = make_app(store=store, session_id=original.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.click("#method-dpo")
        await pilot.click("#backend-local")
        await pilot.pause()
        app.screen.query_one("#base-model").value = "Qwen/Qwen2.5-0.5B-Instruct"
        await pilot.pause()
        await pilot.press("ctrl+q")
    original = store.load(original.id)

    exported = tmp_path / "exported.yaml"
    assert main(["export-replay", original.id, "-o", str(exported)]) == 0
    document = yaml.safe_load(exported.read_text())
    assert document["session"] == {"name": "exported", "backend": "openai"}
    assert document["actions"][-1] == {
        "expect": {
            "task.method": "dpo",
            "task.backend": "local",
            "task.base_model": "Qwen/Qwen2.5-0.5B-Instruct",
        }
    }

    out = io.StringIO()
    result = await run_replay_async(parse_replay(exported), store=store, out=out)
    assert result.exit_code == 0, out.getvalue()
    assert result.session_id is not None and result.session_id != original.id
    replayed = store.load(result.session_id)
    assert replayed.task == original.task
    assert [e.action for e in replayed.journal] == [e.action for e in original.journal]
    assert export_replay(replayed).split("\n", 2)[2] == export_replay(original).split("\n", 2)[2]
    assert replayed.task.method is Method.dpo


def test_export_waits_for_background_work_and_records_each_next_once(
    store: SessionStore,
) -> None:
    session = start_session(store, "tickets", method=Method.sft, backend=Backend.local)
    # the journal of a session made by examples/replays/tickets-to-dry-run.yaml, before the fix
    for screen, action in [
        ("task", {"screen": "task"}),
        ("task", {"press": "next"}),
        ("dataset", {"screen": "dataset"}),
        ("dataset", {"set": {"train-path": "examples/data/tickets/train.jsonl"}}),
        ("dataset", {"press": "check-dataset"}),
        ("dataset", {"press": "next"}),
        ("dataset", {"press": "next"}),
        ("grader", {"screen": "grader"}),
        ("grader", {"press": "grader-test"}),
        ("grader", {"press": "grader-looks-right"}),
    ]:
        session.record(screen, action)
    actions = yaml.safe_load(export_replay(session))["actions"]
    dataset = actions[actions.index({"screen": "dataset"}) :]
    assert dataset[:5] == [
        {"screen": "dataset"},
        {"set": {"train-path": "examples/data/tickets/train.jsonl"}},
        {"press": "check-dataset"},
        {"wait": {"for": "dataset-checked", "timeout": 300}},
        {"press": "next"},
    ]
    assert dataset[5] == {"screen": "grader"}
    assert dataset[6:8] == [
        {"press": "grader-test"},
        {"wait": {"for": "grader-tested", "timeout": 300}},
    ]
    parse_replay_text(export_replay(session), Path("exported.yaml"))  # the parser accepts it


def test_an_exported_replay_reproduces_the_session_it_came_from(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """tickets-to-dry-run → export-replay → replay the export: the same decisions and results."""
    assert main(["--replay", str(EXAMPLES / "tickets-to-dry-run.yaml")]) == 0
    (summary,), _ = store.list()
    original = store.load(summary.id)
    exported = tmp_path / "exported.yaml"
    assert main(["export-replay", original.id, "-o", str(exported)]) == 0
    capsys.readouterr()

    assert main(["--replay", str(exported)]) == 0, capsys.readouterr().out
    replayed_id = next(s.id for s in store.list()[0] if s.id != original.id)
    replayed = store.load(replayed_id)
    assert [e.action for e in replayed.journal] == [e.action for e in original.journal]
    assert replayed.task == original.task
    # Each session writes its reports into its own folder; everything else is the same.
    per_session = {"report_file"}
    assert replayed.dataset.result is not None and original.dataset.result is not None
    assert replayed.dataset.result.model_dump(exclude=per_session) == (
        original.dataset.result.model_dump(exclude=per_session)
    )
    assert replayed.grader.spec_text == original.grader.spec_text
    assert (replayed.dryrun.verdict, replayed.dryrun.n, replayed.dryrun.mean) == (
        original.dryrun.verdict,
        original.dryrun.n,
        original.dryrun.mean,
    )
