"""No key is lost unseen: a key no control uses says where typing goes, Enter on a table row
shows the whole row, and every focusable control looks different when it has the focus."""

from __future__ import annotations

import pytest
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Static

from ftwizard.app import make_app
from ftwizard.screens.dialogs import HelpScreen, RowDetailsScreen
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from tests.view import interactive
from tests.waiting import step_opened

SIZES = [(80, 24), (120, 36)]
LONG = "a value far too long for its column " * 4


def _notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_typing_on_a_button_says_where_typing_goes_once(
    store: SessionStore, walked, size
) -> None:
    app = make_app(store=store, session_id=walked(StepId.dataset))
    async with app.run_test(size=size, notifications=True) as pilot:
        await step_opened(pilot)
        screen = app.screen
        check = screen.query_one("#check-dataset", Button)
        check.focus()
        await pilot.pause()
        await pilot.press("h", "e", "l", "l", "o")
        await pilot.pause()
        typing = [n for n in _notices(app) if "Typing does nothing on a button" in n]
        # One notice for the word, naming the box Tab reaches, not one per letter.
        assert len(typing) == 1, _notices(app)
        assert "Press Tab to reach" in typing[0]
        # The typed text reaches the box once the person tabs there.
        box = screen.query_one("#train-path", Input)
        box.focus()
        box.value = ""
        await pilot.press("x")
        assert box.value == "x"
        assert len([n for n in _notices(app) if "Typing does nothing" in n]) == 1


async def test_keys_that_controls_or_bindings_use_give_no_notice(
    store: SessionStore, walked
) -> None:
    app = make_app(store=store, session_id=walked(StepId.task))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await step_opened(pilot)
        before = len(_notices(app))
        # The task step opens on its first choice list: arrows and Enter act there.
        await pilot.press("down", "enter")
        await pilot.pause()
        # `?` is the app's help binding.
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert len(_notices(app)) == before, _notices(app)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_enter_on_a_table_row_shows_every_value_in_full(
    store: SessionStore, walked, size
) -> None:
    app = make_app(store=store, session_id=walked(StepId.grader))
    async with app.run_test(size=size) as pilot:
        await step_opened(pilot)
        table = app.screen.query_one("#grader-results", DataTable)
        table.clear()
        table.add_row(*[LONG.strip()] + ["x"] * (len(table.columns) - 1))
        table.display = True
        for ancestor in table.ancestors_with_self:
            if isinstance(ancestor, Widget):
                ancestor.display = True
        await pilot.pause()
        table.focus()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RowDetailsScreen)
        shown = str(app.screen.query_one("#row-details-text", Static).content)
        assert LONG.strip() in shown
        first_column = str(table.ordered_columns[0].label)
        assert f"{first_column}: " in shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#grader-results") is table
        assert app.focused is table


def _look(app, widget: Widget) -> list[list[tuple[str, str]]]:
    """What the widget's area of the screen shows: each line's text with its style."""
    region = widget.region.intersection(app.screen.region)
    strips = app.screen._compositor.render_strips()
    return [
        [(seg.text, str(seg.style)) for seg in strips[y].crop(region.x, region.right)]
        for y in range(region.y, region.bottom)
    ]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", list(StepId), ids=lambda s: s.value)
async def test_every_focusable_control_shows_when_it_has_the_focus(
    store: SessionStore, walked, step, size
) -> None:
    app = make_app(store=store, session_id=walked(step))
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await step_opened(pilot)
        screen = app.screen
        unmarked = []
        for widget in interactive(screen):
            widget.focus()
            await pilot.pause()
            await pilot.pause()
            focused = _look(app, widget)
            # The focus elsewhere, out of the step's content, so nothing scrolls between looks.
            # (Back, not Next, from the sidebar: Next is disabled until the step is done.)
            other = screen.query_one("#steps" if widget.id != "steps" else "#back")
            other.focus()
            # A few frames for the restyle to reach the screen on a busy machine.
            for _ in range(5):
                await pilot.pause()
                if _look(app, widget) != focused:
                    break
            else:
                unmarked.append(f"{type(widget).__name__}#{widget.id}")
        assert not unmarked, f"no focus indicator on {unmarked} ({step.value}, {size})"
