"""The wizard at the keyboard: every step opens on its first control, Tab reaches every
control in view, editors say how to leave them, and footer keys do the main actions."""

from __future__ import annotations

import pytest
from textual.widget import Widget
from textual.widgets import Button, TextArea

from ftwizard.app import make_app
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from ftwizard.widgets.step_sidebar import StepSidebar
from tests.view import in_view, interactive
from tests.waiting import step_opened, until

SIZES = [(80, 24), (120, 36)]


STEPS = list(StepId)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.value)
async def test_tab_reaches_every_control_of_every_stepin_view(
    store: SessionStore, walked, step, size
) -> None:
    app = make_app(store=store, session_id=walked(step))
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await step_opened(pilot)
        screen = app.screen
        assert getattr(screen, "STEP", None) is step
        first = app.focused
        # The step opens on a control of its own, not on the sidebar or a container.
        assert first is not None and not isinstance(first, StepSidebar)
        content = screen.query_one("#step-content")
        assert content in first.ancestors or first.id == "next"
        wanted = interactive(screen)
        reached: list[Widget] = []
        # Forward with Tab (Escape where an editor keeps Tab for indenting, as its border
        # says), then back with shift+tab, which also enters the editors Escape skips.
        for key in ("tab", "shift+tab"):
            for _ in range(len(wanted) + 2):
                focused = app.focused
                assert focused is not None
                # No dead stops: every Tab lands on something that acts.
                assert type(focused).__name__ not in ("VerticalScroll", "Vertical", "Horizontal")
                assert in_view(screen, focused), (
                    f"{type(focused).__name__}#{focused.id} is focused but not in view at {size}"
                )
                reached.append(focused)
                editor = isinstance(focused, TextArea) and focused.tab_behavior == "indent"
                await pilot.press("escape" if editor and key == "tab" else key)
                await pilot.pause()
        missing = [f"{type(w).__name__}#{w.id}" for w in wanted if w not in reached]
        assert not missing, f"Tab never reaches {missing} on {step.value} at {size}"


async def test_escape_from_the_script_editor_lands_past_every_editor(
    store: SessionStore, walked
) -> None:
    app = make_app(store=store, session_id=walked(StepId.grader))
    async with app.run_test(size=(120, 36)) as pilot:
        await step_opened(pilot)
        screen = app.screen
        screen.query_one("#grader-style-script").value = True
        await pilot.pause()
        source = screen.query_one("#grader-source", TextArea)
        source.focus()
        await pilot.pause()
        # Tab indents in an editor; its border says how to leave and which keys act.
        await pilot.press("tab")
        assert source.text.startswith(" ") or "    " in source.text
        assert "esc" in str(source.border_subtitle) and "ctrl+r" in str(source.border_subtitle)
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is not None
        assert not isinstance(app.focused, TextArea), app.focused


async def test_a_footer_key_presses_the_steps_button_and_says_when_it_cannot(
    store: SessionStore, walked
) -> None:
    app = make_app(store=store, session_id=walked(StepId.dataset))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await step_opened(pilot)
        check = app.screen.query_one("#check-dataset", Button)
        pressed: list[str] = []
        check.press = lambda: pressed.append("check") or check  # type: ignore[method-assign]
        await pilot.press("ctrl+r")
        assert pressed == ["check"]
        check.disabled = True
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert pressed == ["check"]
        assert any("not available" in str(n.message) for n in app._notifications)


async def test_below_100_columns_the_sidebar_shows_step_marks(store: SessionStore, walked) -> None:
    app = make_app(store=store, session_id=walked(StepId.task))
    async with app.run_test(size=(80, 24)) as pilot:
        await step_opened(pilot)
        sidebar = app.screen.query_one(StepSidebar)
        assert sidebar.marks_only and sidebar.size.width <= 10
        assert str(sidebar.get_option("step-task").prompt).strip() == "▶ 1"
        await pilot.resize_terminal(120, 36)
        await until(pilot, lambda: not sidebar.marks_only, "the sidebar naming its steps")
        assert "Task" in str(sidebar.get_option("step-task").prompt)


async def test_focus_on_a_control_the_step_hides_moves_to_its_first_control(
    store: SessionStore, walked
) -> None:
    """A focused control that disappears (settings once a job starts) leaves the focus on the
    step's first control, never nowhere, where Enter would do nothing."""
    app = make_app(store=store, session_id=walked(StepId.dataset))
    async with app.run_test(size=(80, 24)) as pilot:
        await step_opened(pilot)
        screen = app.screen
        # Hiding the row of the focused box hides its neighbours too: Textual alone would move
        # the focus to one of them, out of sight.
        valid = screen.query_one("#valid-path")
        valid.focus()
        await pilot.pause()
        assert valid.parent is not None
        valid.parent.display = False
        train = screen.query_one("#train-path")
        await until(pilot, lambda: app.focused is train, "focus back on the training file")
