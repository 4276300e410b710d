"""The grader step on the shipped tickets data: gallery examples that need a field the data lacks
say so and map it, a grader file loads by path or Browse, and the test shows the expected answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, DirectoryTree, Input, Select, Static, TextArea

from ftwizard.app import FtwizardApp, make_app
from ftwizard.screens.file_picker import FilePickerScreen
from ftwizard.screens.grader.screen import GraderScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from tests.conftest import REPO_ROOT
from tests.steps import session_with_data

SIZE = (120, 60)
TICKETS = REPO_ROOT / "examples" / "data" / "tickets"


def _tickets_session(store: SessionStore, tmp_path: Path) -> str:
    """At the grader step with 20 tickets (OpenAI without a key: the data's own answers)."""
    lines = (TICKETS / "train.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    rows = [json.loads(line) for line in lines]
    return session_with_data(store, tmp_path, backend=Backend.openai, rows=rows).id


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def _wait_for(pilot, app: FtwizardApp, job: str) -> str:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, GraderScreen)
    for _ in range(400):
        outcome = screen.job_outcome(job)
        if outcome is not None:
            return outcome
        await pilot.pause(0.05)
    raise AssertionError(f"{job} did not end")


async def test_an_example_that_needs_a_missing_field_says_so_and_maps_it(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _tickets_session(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        examples = app.screen.query_one("#grader-example", Select)
        labels = {value: str(label) for label, value in examples._options if value}
        assert labels["exact_answer"] == "exact answer (needs item.answer)"
        assert labels["exact_answer_python"] == "exact answer python"  # a script: no templates
        examples.value = "exact_answer"
        await pilot.pause()
        fit = _text(app, "#grader-fit")
        assert "reads item.answer, which your data does not have" in fit
        assert "reference_answer" in fit and "messages" in fit
        assert app.screen.query_one("#grader-map-row").display

        # Tested as it is, it fails, and says why.
        await pilot.click("#grader-test")
        assert await _wait_for(pilot, app, "grader-test") == "failed"
        assert "the dataset has no field 'answer'" in _text(app, "#grader-problems")
        assert app.session is not None and app.session.grader.test is None

        # Read the data's own answer instead: the spec is rewritten, comments kept.
        app.screen.query_one("#grader-map-field", Select).value = "reference_answer"
        await pilot.pause()
        spec = app.screen.query_one("#grader-spec", TextArea).text
        assert 'reference: "{{item.reference_answer}}"' in spec
        assert spec.startswith("# Exact answer")
        assert not app.screen.query_one("#grader-map-row").display
        assert _text(app, "#grader-fit") == ""

        await pilot.click("#grader-test")
        assert await _wait_for(pilot, app, "grader-test") == "done"
        table = app.screen.query_one("#grader-results", DataTable)
        assert [str(c) for c in table.get_row_at(0)[1:4]] == ["1.00", "feature", "feature"]
        assert [str(c.label) for c in table.columns.values()][:4] == [
            "Record",
            "Score",
            "Expected",
            "Answer",
        ]
    journal = [e.action for e in store.load(session_id).journal if e.screen == "grader"]
    assert {"outcome": {"grader-test": "failed"}} in journal
    assert {"set": {"grader-spec": spec}} in journal
    assert journal[-1] == {"outcome": {"grader-test": "done"}}


async def test_the_shipped_tickets_grader_loads_by_path(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _tickets_session(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    path = str(TICKETS / "grader.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        field = app.screen.query_one("#grader-file", Input)
        field.value = str(tmp_path / "nowhere.yaml")
        field.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "grader file not found" in _text(app, "#grader-problems")
        assert "nowhere.yaml" in _text(app, "#grader-problems")

        field.value = path
        await pilot.click("#grader-load")
        await pilot.pause()
        assert app.session is not None
        assert app.session.grader.spec_text == (TICKETS / "grader.yaml").read_text()
        assert app.session.grader.style == "builtin"
        assert "The grader is valid." in _text(app, "#grader-problems")
        assert _text(app, "#grader-fit") == ""
    journal = [e.action for e in store.load(session_id).journal if e.screen == "grader"]
    assert journal[-2:] == [{"set": {"grader-file": path}}, {"press": "grader-load"}]


async def test_browse_picks_a_grader_file_with_the_keyboard(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = _tickets_session(store, tmp_path)
    monkeypatch.chdir(TICKETS)  # the picker starts in the working directory
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#grader-browse")
        await pilot.pause()
        assert isinstance(app.screen, FilePickerScreen)
        tree = app.screen.query_one(DirectoryTree)
        for _ in range(100):  # the tree lists the folder in a worker
            if tree.root.children:
                break
            await pilot.pause(0.05)
        tree.focus()
        names = [node.label.plain for node in tree.root.children]
        # The cursor starts on the folder itself; the files follow in order.
        await pilot.press(*["down"] * (names.index("grader.yaml") + 1), "enter")
        for _ in range(100):
            if isinstance(app.screen, GraderScreen):
                break
            await pilot.pause(0.05)
        await pilot.pause()
        assert isinstance(app.screen, GraderScreen)
        assert app.screen.query_one("#grader-file", Input).value == str(TICKETS / "grader.yaml")
        assert app.session is not None and "name: label match" in (
            app.session.grader.spec_text or ""
        )
