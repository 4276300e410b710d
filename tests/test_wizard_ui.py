"""The wizard as a user drives it: sessions, the task step, navigation, help and the env check."""

from __future__ import annotations

import pytest
from textual.widgets import Button, DataTable, Input, RadioButton, Select, Static
from textual.widgets._footer import FooterKey

from ftwizard.app import FtwizardApp, make_app
from ftwizard.flow import start_session
from ftwizard.screens import STEP_SCREENS
from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.screens.dialogs import HelpScreen
from ftwizard.screens.task import TaskScreen
from ftwizard.screens.welcome import WelcomeScreen
from ftwizard.session import Backend, Method, StepId
from ftwizard.store import SessionStore
from ftwizard.widgets.env_check import EnvCheckPanel
from ftwizard.widgets.step_sidebar import StepSidebar
from tests.waiting import asked, confirm, step_opened, until

SIZE = (120, 40)


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_new_session_opens_the_task_step_with_the_offline_default(
    store: SessionStore,
) -> None:
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        await pilot.click("#session-name")
        await pilot.press(*"my run", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)
        assert app.session is not None
        assert app.session.name == "my run"
        assert app.session.task.method is Method.sft
        assert app.session.task.backend is Backend.local
        assert app.screen.query_one("#method-sft", RadioButton).value
        assert app.screen.query_one("#base-model", Input).value == "builtin-tiny"


async def test_session_quit_at_the_task_step_resumes_there_with_its_choices(
    store: SessionStore,
) -> None:
    session = start_session(store, "resumable")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#method-dpo")
        await pilot.click("#backend-openai")
        await pilot.pause()
        assert app.screen.query_one("#base-model", Input).value == "gpt-4.1-mini-2025-04-14"
        await pilot.press("ctrl+q")
    saved = store.load(session.id)
    assert saved.task.method is Method.dpo
    assert saved.task.backend is Backend.openai
    assert saved.step is StepId.task
    decisions = len(saved.journal)

    again = make_app(store=store, session_id=session.id)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(again.screen, TaskScreen)
        assert again.screen.query_one("#method-dpo", RadioButton).value
        assert again.screen.query_one("#backend-openai", RadioButton).value
        # One widget shows the model; the list beside it is a menu that fills it.
        assert again.screen.query_one("#base-model", Input).value == "gpt-4.1-mini-2025-04-14"
        assert again.screen.query_one("#base-model-choice", Select).is_blank()
    # Restoring the saved choices into the widgets is not a new decision.
    assert len(store.load(session.id).journal) == decisions


async def test_invalid_base_model_blocks_next_with_a_reason(store: SessionStore) -> None:
    session = start_session(store, "bad model", backend=Backend.openai)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#base-model", Input).value = "gpt-5"
        await pilot.pause()
        assert "cannot fine-tune 'gpt-5'" in _text(app, "#base-model-error")
        assert app.screen.query_one("#next", Button).disabled
        assert app.screen.query_one("#base-model-choice", Select).is_blank()


async def test_steps_show_done_current_locked_and_unavailable(store: SessionStore) -> None:
    session = start_session(store, "steps")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        sidebar = app.screen.query_one(StepSidebar)
        assert not sidebar.get_option("step-task").disabled
        for step in StepId:
            option = sidebar.get_option(f"step-{step.value}")
            if step not in STEP_SCREENS:
                # Never a fake screen: a step that is not built is shown as such.
                assert option.disabled
                assert "not in this version" in str(option.prompt)
        # The task is complete (offline default), so the dataset step is open.
        assert not sidebar.get_option("step-dataset").disabled
        assert "Next: Dataset" in _text(app, "#next-hint")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)
        assert app.session is not None and app.session.step is StepId.dataset
        # Nothing checked yet: Next waits, and says why.
        assert app.screen.query_one("#next", Button).disabled
        assert "Choose a training file" in _text(app, "#next-hint")
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)


async def test_a_step_after_an_incomplete_one_is_locked(store: SessionStore) -> None:
    session = start_session(store, "locked", backend=Backend.openai)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#base-model", Input).value = "not-a-model"
        await pilot.pause()
        sidebar = app.screen.query_one(StepSidebar)
        assert sidebar.get_option("step-dataset").disabled
        assert "after earlier steps" in str(sidebar.get_option("step-dataset").prompt)
        app.go_to(StepId.dataset)
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)


async def test_back_from_the_first_step_returns_to_the_session_list(store: SessionStore) -> None:
    session = start_session(store, "listed")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#back")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        assert app.session is None
        table = app.screen.query_one("#sessions", DataTable)
        assert table.row_count == 1
        assert table.get_cell(session.id, "name") == "listed"
        # The lock was released: another process could open it now.
        with store.lock(session.id) as lock:
            assert lock.held


async def test_resume_from_the_table(store: SessionStore) -> None:
    session = start_session(store, "pick me", method=Method.rft)
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.click("#resume-session")
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)
        assert app.session is not None and app.session.id == session.id
        assert app.screen.query_one("#method-rft", RadioButton).value


async def test_delete_asks_first_and_cancel_keeps_the_session(store: SessionStore) -> None:
    session = start_session(store, "doomed")
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.click("#delete-session")
        await asked(pilot)
        await pilot.press("enter")  # the focused button is Cancel
        await pilot.pause()
        assert store.exists(session.id)
        await pilot.click("#delete-session")
        await confirm(pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not store.exists(session.id)
        assert app.screen.query_one("#sessions", DataTable).row_count == 0


async def test_help_shows_the_current_screens_text(store: SessionStore) -> None:
    session = start_session(store, "help")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert "Choose **what** to train" in app.screen.markdown
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TaskScreen)


async def test_command_palette_offers_the_reachable_steps(store: SessionStore) -> None:
    session = start_session(store, "palette")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Go to step: Task" in titles
        assert "Go to step: Dataset" in titles  # the task is complete
        assert "Go to step: Grader" not in titles  # the dataset is not
        assert "Close session" in titles


async def test_env_check_names_missing_and_present_credentials_without_values(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = start_session(store, "env", backend=Backend.openai)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = str(app.screen.query_one(EnvCheckPanel).render())
        assert "OPENAI_API_KEY: missing" in panel
        assert "export OPENAI_API_KEY" in panel
        assert "2027-01-06" in _text(app, "#openai-cutoff")

    key = "sk-proj-" + "Zx9" * 10
    monkeypatch.setenv("OPENAI_API_KEY", key)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        panel = str(app.screen.query_one(EnvCheckPanel).render())
        assert "OPENAI_API_KEY: ok" in panel
        assert key not in panel
        await pilot.click("#backend-vertex")
        await pilot.pause()
        panel = str(app.screen.query_one(EnvCheckPanel).render())
        assert "Google application-default credentials: missing" in panel
        assert "GOOGLE_CLOUD_PROJECT: missing" in panel
        assert not app.screen.query_one("#openai-cutoff").display


async def test_a_session_open_elsewhere_is_refused_on_resume(store: SessionStore) -> None:
    session = start_session(store, "busy")
    with store.lock(session.id):
        app = make_app(store=store)
        async with app.run_test(size=SIZE) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.click("#resume-session")
            await pilot.pause()
            assert isinstance(app.screen, WelcomeScreen)
            assert app.session is None


async def test_f1_shown_in_the_footer_opens_the_help_from_a_text_field_and_closes_it(
    store: SessionStore, walked
) -> None:
    """The dataset step opens in its file box, where ? is typed: F1, which the footer names,
    opens the help there, and closes it again; the box keeps what was typed."""
    app = make_app(store=store, session_id=walked(StepId.dataset))
    async with app.run_test(size=(80, 24)) as pilot:
        await step_opened(pilot)
        box = app.focused
        assert isinstance(box, Input)
        shown = [(key.key_display, key.description) for key in app.screen.query(FooterKey)]
        assert ("F1", "Help") in shown, shown
        before = box.value
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, DatasetScreen), "back on the step")
        assert box.value == before
