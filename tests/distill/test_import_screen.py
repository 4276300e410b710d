"""The Distill tab's import of a teacher's existing CSV answers, driven by keys: matched by a
site id and float coordinates within a tolerance, checked against the ground truth, only the
correct rows kept and made the checked training file; journaled so a replay waits for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot
from textual.widgets import Input, Static, TabbedContent

from ftwizard.app import FtwizardApp, make_app
from ftwizard.distill.session_import import imported_path
from ftwizard.flow import start_session
from ftwizard.replay_export import export_replay
from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from tests.distill.test_import import _answers, _dataset

SIZES = [(80, 24), pytest.param((120, 50), marks=pytest.mark.slow)]
_MAX_ROUNDS = 50


def open_dataset(store: SessionStore, data: Path) -> tuple[FtwizardApp, str]:
    session = start_session(store, "import")
    session.step = StepId.dataset
    session.dataset.choice.train_path = str(data)
    store.save(session)
    return make_app(store=store, session_id=session.id), session.id


def screen(app: FtwizardApp) -> DatasetScreen:
    assert isinstance(app.screen, DatasetScreen)
    return app.screen


def text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def type_into(pilot: Pilot[Any], widget_id: str, value: str) -> None:
    """Focus the field and type ``value`` key by key, as a user does."""
    field = screen(pilot.app).query_one(f"#{widget_id}", Input)  # type: ignore[arg-type]
    field.focus()
    await pilot.pause()
    await pilot.press(*["space" if c == " " else c for c in value])


async def press_button(pilot: Pilot[Any], widget_id: str) -> None:
    screen(pilot.app).query_one(f"#{widget_id}").focus()  # type: ignore[arg-type]
    await pilot.pause()
    await pilot.press("enter")


async def settle(app: FtwizardApp, pilot: Pilot[Any]) -> None:
    """Wait for the import, and for the check it starts when it ends."""
    for _ in range(_MAX_ROUNDS):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not (screen(app).importing or screen(app).busy):
            return
    raise AssertionError("the import did not finish")


def next_wait(actions: list[dict[str, Any]], press: str) -> dict[str, Any]:
    """The exported replay's first wait after ``press``."""
    start = actions.index({"press": press})
    return next(a["wait"] for a in actions[start:] if "wait" in a)


async def fill(pilot: Pilot[Any], files: list[Path], keys: str) -> None:
    """Open the Distill tab and type the CSV files (by name: the test runs in their folder,
    which keeps the typing short) and the key columns."""
    screen(pilot.app).query_one("#dataset-tabs", TabbedContent).active = "tab-distill"  # type: ignore[arg-type]
    await pilot.pause()
    await type_into(pilot, "import-files", ", ".join(f.name for f in files))
    await type_into(pilot, "import-keys", keys)


@pytest.mark.parametrize("size", SIZES)
async def test_imported_answers_are_matched_checked_and_become_the_training_file(
    store: SessionStore, tmp_path: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path)
    answers = _answers(tmp_path)
    app, session_id = open_dataset(store, data)
    out = imported_path(store.load(session_id), store)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert "No answers imported yet." in text(app, "#import-summary")
        await fill(pilot, answers, "site, lat~1e-5, lon~1e-5")
        await press_button(pilot, "import-answers")
        await settle(app, pilot)

        summary = text(app, "#import-summary")
        assert "7 / 8 rows matched, 87.5 %" in summary
        assert "6 / 7 correct, 85.7 %" in summary
        assert "Kept 6 rows" in summary
        assert "1 answers matched no row" in summary
        assert app.session is not None
        dataset = app.session.dataset
        assert dataset.choice.train_path == str(out)
        assert screen(app).query_one("#train-path", Input).value == str(out)
        # The rows stay the original file: a second import must not read its own output.
        assert dataset.distill.prompts_path == str(data)
        assert dataset.result is not None and dataset.result.examples == 6
        assert DatasetScreen.WAIT_CONDITIONS["answers-imported"](screen(app))
        assert Path(f"{out}.meta.json").is_file()

    saved = store.load(session_id)
    assert saved.dataset.imported is not None and saved.dataset.imported.kept == 6
    assert saved.dataset.answers_import.keys == ["site", "lat~1e-5", "lon~1e-5"]
    assert saved.dataset.answers_import.files == [a.name for a in answers]
    actions = yaml.safe_load(export_replay(saved))["actions"]
    assert next_wait(actions, "import-answers") == {"for": "answers-imported", "timeout": 300}
    press = actions.index({"press": "import-answers"})
    assert {"set": {"import-keys": "site, lat~1e-5, lon~1e-5"}} in actions[:press]

    # Resuming shows the choices and the last import again.
    again = make_app(store=store, session_id=session_id)
    async with again.run_test(size=size) as pilot:
        await pilot.pause()
        await again.workers.wait_for_complete()
        assert screen(again).query_one("#import-keys", Input).value == "site, lat~1e-5, lon~1e-5"
        assert "6 / 7 correct, 85.7 %" in text(again, "#import-summary")


@pytest.mark.parametrize("size", SIZES)
async def test_a_missing_csv_column_is_named_and_nothing_changes(
    store: SessionStore, tmp_path: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _dataset(tmp_path)
    answers = _answers(tmp_path)
    app, session_id = open_dataset(store, data)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await fill(pilot, answers, "site, latitude~1e-5")
        await press_button(pilot, "import-answers")
        await settle(app, pilot)
        status = text(app, "#import-status")
        assert "a.csv" in status and "latitude" in status
        assert DatasetScreen.WAIT_CONDITIONS["answers-import-failed"](screen(app))
        assert not DatasetScreen.WAIT_CONDITIONS["answers-imported"](screen(app))
        assert app.session is not None
        assert app.session.dataset.choice.train_path == str(data)

        # No key columns at all: said before any file is read.
        field = screen(app).query_one("#import-keys", Input)
        field.focus()
        await pilot.pause()
        await pilot.press("end", *["backspace"] * len(field.value))
        assert field.value == ""
        await press_button(pilot, "import-answers")
        await settle(app, pilot)
        assert "key columns" in text(app, "#import-status")
    actions = yaml.safe_load(export_replay(store.load(session_id)))["actions"]
    assert next_wait(actions, "import-answers") == {
        "for": "answers-import-failed",
        "timeout": 300,
    }
