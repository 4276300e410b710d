"""The grader step as a user drives it: write a grader, test it on samples, confirm it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea

from ftwizard.app import FtwizardApp, make_app
from ftwizard.flow import grader_problem
from ftwizard.screens.grader.screen import GraderScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.steps import session_with_data
from tests.view import in_view
from tests.waiting import step_opened, until

SIZE = (120, 60)


def _session_at_grader(store: SessionStore, tmp_path: Path) -> str:
    """A session whose dataset step is done, on OpenAI with no key (samples: dataset answers)."""
    return session_with_data(store, tmp_path, backend=Backend.openai).id


async def _test_on_samples(app: FtwizardApp, pilot, button: str = "#grader-test") -> None:  # type: ignore[no-untyped-def]
    await pilot.click(button)
    await app.workers.wait_for_complete()
    await pilot.pause()


def _scores(app: FtwizardApp) -> list[str]:
    table = app.screen.query_one("#grader-results", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_builtin_check_is_tested_on_the_datasets_answers_and_confirmed(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, GraderScreen)
        await pilot.click("#grader-style-builtin")
        await pilot.pause()
        assert "type: string_check" in app.screen.query_one("#grader-spec", TextArea).text
        assert app.screen.query_one("#next", Button).disabled
        await _test_on_samples(app, pilot)
        # The gold answers graded against themselves: a sane grader gives them all 1.0.
        assert _scores(app) == ["1.00"] * 5
        source = _text(app, "#grader-source-label")
        assert "the dataset's own answers" in source
        assert "OPENAI_API_KEY is not set" in source
        assert "Average score 1.00" in _text(app, "#grader-mean")
        assert app.session is not None
        assert "confirm they look right" in (grader_problem(app.session) or "")
        await pilot.click("#grader-looks-right")
        await pilot.pause()
        assert grader_problem(app.session) is None
        # Test five more: the next five records.
        await _test_on_samples(app, pilot, "#grader-more")
        table = app.screen.query_one("#grader-results", DataTable)
        assert table.get_row_at(0)[0] == 6
    saved = store.load(session_id)
    assert saved.grader.style == "builtin"
    assert (store.artifacts_dir(session_id) / "grader.yaml").is_file()


async def test_editing_after_a_test_asks_for_a_new_test(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#grader-style-builtin")
        await pilot.pause()
        await _test_on_samples(app, pilot)
        await pilot.click("#grader-looks-right")
        await pilot.pause()
        editor = app.screen.query_one("#grader-spec", TextArea)
        editor.load_text(editor.text.replace("operation: eq", "operation: ilike"))
        await pilot.pause()
        assert app.session is not None
        assert "Test the grader" in (grader_problem(app.session) or "")
        assert not app.screen.query_one("#grader-confirm-row").display


async def test_a_broken_script_scores_zero_with_the_error_per_row(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#grader-style-script")
        await pilot.pause()
        source = app.screen.query_one("#grader-source", TextArea)
        source.load_text(
            "def grade(sample, item):\n"
            "    if item['reference_answer'] == 'blue':\n"
            "        raise ValueError('no blue allowed')\n"
            "    return 1.0\n"
        )
        await pilot.pause()
        assert "raise ValueError" in app.screen.query_one("#grader-spec", TextArea).text
        await _test_on_samples(app, pilot)
        assert _scores(app) == ["1.00", "0.00", "1.00", "1.00", "0.00"]
        table = app.screen.query_one("#grader-results", DataTable)
        assert "no blue allowed" in str(table.get_cell_at((1, 4)))
        assert str(table.get_cell_at((1, 2))) == "blue"  # the expected answer beside it
        assert "2 error(s)" in _text(app, "#grader-mean")


async def test_an_invalid_spec_is_refused_with_its_line(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#grader-spec", TextArea).load_text(
            "type: string_check\nname: x\ninput: '{{sample.output_text}}'\n"
            "reference: '{{item.answer}}'\noperation: eq\n"
        )
        await pilot.pause()
        await pilot.click("#grader-test")
        await pilot.pause()
        problems = _text(app, "#grader-problems")
        assert "grader.yaml:4" in problems
        assert "answer" in problems
        assert app.session is not None and app.session.grader.test is None


async def test_an_example_script_is_copied_into_the_session(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#grader-example", Select).value = "exact_answer_python"
        await pilot.pause()
        spec = app.screen.query_one("#grader-spec", TextArea).text
        assert "source_file" not in spec
        assert "def grade(sample" in spec
        assert "def grade(sample" in app.screen.query_one("#grader-source", TextArea).text
        assert app.session is not None and app.session.grader.style == "script"


async def test_a_judge_scores_through_an_openai_compatible_server(
    store: SessionStore, tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    openai_server.api_key = None  # a local OpenAI-compatible server asks for no key
    openai_server.reply_fn = lambda body: json.dumps({"result": 0.75, "steps": []})
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#grader-style-judge")
        await pilot.pause()
        app.screen.query_one("#judge-model", Input).value = "gpt-4.1-mini-2025-04-14"
        app.screen.query_one("#judge-rubric", TextArea).load_text(
            "1.0 when the colour matches the reference; 0.0 otherwise."
        )
        app.screen.query_one("#judge-base-url", Input).value = openai_server.v1_url
        await pilot.pause()
        await _test_on_samples(app, pilot)
        assert _scores(app) == ["0.75"] * 5
    judged = [r for r in openai_server.requests if r.path.endswith("/chat/completions")]
    assert len(judged) == 5
    prompt = json.dumps(judged[0].json())
    assert "colour matches the reference" in prompt


async def test_on_openai_the_grader_is_also_checked_by_openai(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    session_id = _session_at_grader(store, tmp_path)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#grader-style-judge")
        await pilot.pause()
        app.screen.query_one("#judge-model", Input).value = "gpt-5"
        await pilot.pause()
        await _test_on_samples(app, pilot)
        assert "OpenAI rejects this grader" in _text(app, "#grader-source-label")
        assert "'gpt-5' is not supported for model graders" in _text(app, "#grader-source-label")
        assert app.session is not None and app.session.grader.test is None


async def test_the_script_style_says_what_the_sandbox_enforces_here(
    store: SessionStore, tmp_path: Path
) -> None:
    from ftwizard.graders.sandbox import probe

    expected = probe().lines()
    app = make_app(store=store, session_id=_session_at_grader(store, tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        note = app.screen.query_one("#grader-sandbox", Static)
        assert not note.display
        await pilot.click("#grader-style-script")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert note.display
        text = _text(app, "#grader-sandbox")
        assert "no API keys" in text
        assert expected[1] in text and expected[2] in text


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_by_keys_the_scores_come_into_view_with_their_question_focused(
    store: SessionStore, tmp_path: Path, size: tuple[int, int]
) -> None:
    """ctrl+r tests; the scores and "Do these scores look right?" are then on screen with the
    focus on the answer, so Enter confirms and the focus moves on to Next."""
    app = make_app(store=store, session_id=_session_at_grader(store, tmp_path))
    async with app.run_test(size=size) as pilot:
        await step_opened(pilot)
        await pilot.press("down", "down", "enter")  # the built-in check
        await pilot.press("ctrl+r")
        screen = app.screen
        looks_right = screen.query_one("#grader-looks-right", Button)
        await until(pilot, lambda: app.focused is looks_right, "focus on Scoring looks right")
        await pilot.pause()
        assert in_view(screen, screen.query_one("#grader-source-label"))
        assert in_view(screen, looks_right)
        await pilot.press("enter")
        nxt = screen.query_one("#next", Button)
        await until(pilot, lambda: app.focused is nxt, "focus on Next")
        assert app.session is not None and grader_problem(app.session) is None
