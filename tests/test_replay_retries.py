"""A session with failed and repeated steps, made by keys and clicks, exports a replay that
reproduces it: each wait is for the outcome that happened, and the replay passes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from textual.widgets import Button, Select

from ftwizard.app import make_app
from ftwizard.autopilot import run_replay_async
from ftwizard.cli import main
from ftwizard.replay import parse_replay
from ftwizard.store import SessionStore
from tests.conftest import REPO_ROOT
from tests.test_replay import _assert_reproduced, _click, _shown, _type, _until

TICKETS = REPO_ROOT / "examples" / "data" / "tickets"


@pytest.mark.slow
async def test_failed_and_repeated_steps_export_a_replay_that_reproduces_them(
    store: SessionStore, tmp_path: Path
) -> None:
    app = make_app(store=store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await _type(pilot, "#session-name", "retries")
        await _click(pilot, "#new-session")
        await _shown(pilot, "task")
        await _type(pilot, "#base-model", "builtin-tiny")
        await _click(pilot, "#next")
        await _shown(pilot, "dataset")

        # A check of a file that is not there fails; the right file is checked again.
        await _type(pilot, "#train-path", str(tmp_path / "missing.jsonl"))
        await pilot.press("enter")
        await _until(pilot, "dataset-check-failed")
        await _type(pilot, "#train-path", str(TICKETS / "train.jsonl"))
        await _type(pilot, "#valid-path", str(TICKETS / "valid.jsonl"))
        await pilot.press("enter")
        await _until(pilot, "dataset-checked")
        await _click(pilot, "#next")
        await _shown(pilot, "grader")

        # The gallery's exact answer reads item.answer: its first test fails, then the
        # grader reads the data's own answer and the test runs.
        app.screen.query_one("#grader-example", Select).value = "exact_answer"
        await pilot.pause()
        await _click(pilot, "#grader-test")
        await _until(pilot, "grader-test-failed")
        app.screen.query_one("#grader-map-field", Select).value = "reference_answer"
        await pilot.pause()
        await _click(pilot, "#grader-test")
        await _until(pilot, "grader-tested", timeout=300)
        await _click(pilot, "#grader-looks-right")
        await _click(pilot, "#next")
        await _shown(pilot, "dryrun")

        # A dry run stopped at once, then run again to the end.
        # A large run to stop (the tiny model answers 12 prompts faster than a frame), then 12.
        await _type(pilot, "#dryrun-samples", "200")
        # Stop is pressed as soon as it shows: a click at its place a frame later could land
        # on whatever is there once the tiny model has finished.
        await _click(pilot, "#dryrun-run")
        stop = app.screen.query_one("#dryrun-stop", Button)
        for _ in range(200):
            if stop.display:
                break
            await pilot.pause(0.01)
        stop.press()
        await pilot.pause()
        await _until(pilot, "dryrun-ended", timeout=300)
        await _type(pilot, "#dryrun-samples", "12")
        await _click(pilot, "#dryrun-run")
        await _until(pilot, "dryrun-finished", timeout=300)
        await _click(pilot, "#dryrun-proceed")
        assert app.session is not None
        original_id = app.session.id
        await pilot.press("ctrl+q")
    original = store.load(original_id)
    assert original.dryrun.acknowledged and original.dryrun.n == 12
    outcomes = [e.action["outcome"] for e in original.journal if "outcome" in e.action]
    assert outcomes == [
        {"dataset-check": "failed"},
        {"dataset-check": "done"},
        {"grader-test": "failed"},
        {"grader-test": "done"},
        {"dryrun": "stopped"},
        {"dryrun": "done"},
    ]

    exported = tmp_path / "exported.yaml"
    assert main(["export-replay", original.id, "-o", str(exported)]) == 0
    actions = yaml.safe_load(exported.read_text())["actions"]
    waits = [a["wait"]["for"] for a in actions if "wait" in a]
    assert waits == [
        "dataset-check-failed",
        "dataset-checked",
        "grader-test-failed",
        "grader-tested",
        "dryrun-ended",
        "dryrun-finished",
    ]
    expect = actions[-1]["expect"]
    assert expect["dryrun.n"] == 12 and expect["grader.confirmed_digest"]
    assert expect["dataset.result.examples"] == original.dataset.result.examples  # type: ignore[union-attr]

    out = io.StringIO()
    result = await run_replay_async(parse_replay(exported), store=store, out=out)
    assert result.exit_code == 0, out.getvalue()
    assert result.session_id is not None
    _assert_reproduced(store.load(result.session_id), original)
