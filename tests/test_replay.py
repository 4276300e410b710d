"""Replays: every example runs, broken files are refused with their line, sessions export."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from textual.pilot import Pilot

from ftwizard.app import make_app
from ftwizard.autopilot import run_replay, run_replay_async
from ftwizard.cli import main
from ftwizard.flow import start_session
from ftwizard.replay import parse_replay, parse_replay_text
from ftwizard.replay_export import export_replay
from ftwizard.session import Backend, Method, Session
from ftwizard.store import SessionStore
from tests.waiting import until

from .conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "replays"
KEYBOARD_QUICKSTART = "keyboard-quickstart.yaml"


def _replay(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "replay.yaml"
    path.write_text(text)
    return path


def _export(session_id: str, path: Path) -> list[dict[str, object]]:
    assert main(["export-replay", session_id, "-o", str(path)]) == 0
    return yaml.safe_load(path.read_text())["actions"]


@pytest.mark.slow
def test_every_example_replay_passes_and_its_export_reproduces_the_session(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each example → export-replay → replay the export: the same decisions and results.

    quickstart runs once for both checks (it trains, deploys and evaluates, which takes a
    while); resume.yaml then resumes its session, so that session's export covers a resumed one.
    """
    # keyboard-quickstart.yaml is the same path by keys; test_replay_keys.py runs it at 80x24
    # and 120x36 (one more training here would add minutes and check nothing new).
    names = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != KEYBOARD_QUICKSTART)
    # resume.yaml resumes the latest session: it must follow quickstart.yaml directly.
    first = ["quickstart.yaml", "resume.yaml"]
    ordered = [*first, *[n for n in names if n not in first]]
    assert len(ordered) >= 2
    quickstart_id = ""
    before_resume: list[dict[str, object]] = []
    for name in ordered:
        code = main(["--replay", str(EXAMPLES / name), "--screenshots", str(tmp_path / "shots")])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "replay passed" in out
        if name == "quickstart.yaml":
            (quickstart,), _ = store.list()
            quickstart_id = quickstart.id
            before_resume = _export(quickstart_id, tmp_path / "before-resume.yaml")
    assert (tmp_path / "shots" / "task.svg").is_file()

    originals = [store.load(summary.id) for summary in store.list()[0]]
    assert len(originals) == len(ordered) - 1  # resume.yaml makes no session of its own
    for original in originals:
        exported = tmp_path / f"{original.id}.yaml"
        actions = _export(original.id, exported)
        if original.id == quickstart_id:
            # Resumed, it still exports as one fresh session: the actions before the resume,
            # then those after it.
            assert actions[: len(before_resume) - 1] == before_resume[:-1]
            assert {"press": "back"} in actions[len(before_resume) - 1 :]
        known = {summary.id for summary in store.list()[0]}
        assert main(["--replay", str(exported)]) == 0, capsys.readouterr().out
        (replayed_id,) = {summary.id for summary in store.list()[0]} - known
        _assert_reproduced(store.load(replayed_id), original)


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
            "step": "task",
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


def _assert_reproduced(replayed: Session, original: Session) -> None:
    """The replayed session made the same decisions and got the same results as the original."""
    assert [e.action for e in replayed.journal] == [e.action for e in original.journal]
    assert replayed.step == original.step
    assert replayed.task == original.task
    # Each session writes its reports (and, for images, the data with absolute image paths)
    # into its own folder: those paths are compared from the session's folder on.
    per_session = {"report_file"}
    assert replayed.dataset.result is not None and original.dataset.result is not None
    mine, theirs = (
        s.dataset.result.model_dump(exclude=per_session)  # type: ignore[union-attr]
        for s in (replayed, original)
    )
    for dumped, session in ((mine, replayed), (theirs, original)):
        for key in ("training_file", "validation_file"):
            value = dumped.get(key)
            if isinstance(value, str) and f"/sessions/{session.id}/" in value:
                dumped[key] = value.split(f"/sessions/{session.id}/", 1)[1]
    assert mine == theirs
    assert replayed.grader.spec_text == original.grader.spec_text
    assert replayed.grader.confirmed_digest == original.grader.confirmed_digest
    assert (replayed.dryrun.verdict, replayed.dryrun.n, replayed.dryrun.mean) == (
        original.dryrun.verdict,
        original.dryrun.n,
        original.dryrun.mean,
    )
    assert replayed.dryrun.acknowledged == original.dryrun.acknowledged
    assert replayed.training.status == original.training.status
    assert (replayed.evaluation.base_mean, replayed.evaluation.tuned_mean) == (
        original.evaluation.base_mean,
        original.evaluation.tuned_mean,
    )


async def _click(pilot: Pilot[object], selector: str) -> None:
    """Click a widget the way a user does, scrolling it into view first."""
    pilot.app.screen.query_one(selector).scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click(selector)
    await pilot.pause()


async def _type(pilot: Pilot[object], selector: str, text: str) -> None:
    """Replace an input's text by keystrokes: clear it, then type character by character."""
    await _click(pilot, selector)
    await pilot.press("ctrl+a", "ctrl+k", *text)
    await pilot.pause()


async def _shown(pilot: Pilot[object], name: str) -> None:
    app = pilot.app
    await until(
        pilot,
        lambda: getattr(app.screen, "screen_name", None) == name and app.screen.is_mounted,
        f"screen {name}",
    )


async def _until(pilot: Pilot[object], condition: str, timeout: float = 120) -> None:
    screen = pilot.app.screen
    holds = type(screen).WAIT_CONDITIONS[condition]  # type: ignore[attr-defined]
    await until(pilot, lambda: holds(screen), condition, timeout)


@pytest.mark.slow
async def test_a_session_made_by_hand_exports_a_replay_that_reproduces_it(
    store: SessionStore, tmp_path: Path
) -> None:
    """Clicks and typing from task to dry run, then export-replay → replay: the same session."""
    tickets = EXAMPLES.parent / "data" / "tickets"
    app = make_app(store=store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await _type(pilot, "#session-name", "by hand")
        await _click(pilot, "#new-session")
        await _shown(pilot, "task")
        await _click(pilot, "#method-dpo")
        await _click(pilot, "#method-sft")
        await _type(pilot, "#base-model", "builtin-tiny")
        await _click(pilot, "#next")
        await _shown(pilot, "dataset")

        await _type(pilot, "#train-path", str(tickets / "train.jsonl"))
        await _type(pilot, "#valid-path", str(tickets / "valid.jsonl"))
        await pilot.press("enter")  # submitting the path checks the data, like the button
        await _until(pilot, "dataset-checked")
        await _click(pilot, "#next")
        await _shown(pilot, "grader")

        await _click(pilot, "#grader-style-builtin")
        await _click(pilot, "#grader-test")
        await _until(pilot, "grader-tested")
        await _click(pilot, "#grader-looks-right")
        await _click(pilot, "#next")
        await _shown(pilot, "dryrun")

        await _type(pilot, "#dryrun-samples", "12")
        await _click(pilot, "#dryrun-run")
        await _until(pilot, "dryrun-finished")
        await _click(pilot, "#dryrun-proceed")
        assert app.session is not None
        original_id = app.session.id
        await pilot.press("ctrl+q")
    original = store.load(original_id)
    assert original.dryrun.acknowledged and original.dryrun.n == 12

    exported = tmp_path / "exported.yaml"
    assert main(["export-replay", original.id, "-o", str(exported)]) == 0
    out = io.StringIO()
    result = await run_replay_async(parse_replay(exported), store=store, out=out)
    assert result.exit_code == 0, out.getvalue()
    assert result.session_id is not None
    _assert_reproduced(store.load(result.session_id), original)
