"""Waiting for the app the way a person does: until what they look for is there.

A fixed pause is long enough on a developer's machine and too short on a loaded CI runner,
where a pushed dialog or a focus hand-back can take a few more turns of the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button

from ftwizard.screens.dialogs import ConfirmScreen


async def until(
    pilot: Pilot[Any], holds: Callable[[], object], what: str, timeout: float = 20.0
) -> None:
    """Let the app run until ``holds()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        await pilot.pause(0.05)


async def step_opened(pilot: Pilot[Any]) -> None:
    """Wait until the current screen is mounted and has put the focus on a control (a step
    does that after its first layout)."""
    app = pilot.app
    await until(
        pilot,
        lambda: app.screen.is_mounted and app.focused is not None,
        f"{type(app.screen).__name__} opening with a focused control",
    )
    await pilot.pause()


async def asked(pilot: Pilot[Any]) -> ConfirmScreen:
    """Wait for the yes/no question a paid or destructive action asks first, and return it."""

    def laid_out() -> bool:
        # A click on a dialog that a loaded machine has not laid out yet lands nowhere.
        screen = pilot.app.screen
        if not isinstance(screen, ConfirmScreen) or not screen.is_mounted:
            return False
        return all(button.region.area > 0 for button in screen.query(Button))

    await until(pilot, laid_out, "the question")
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmScreen)
    return screen


async def confirm(pilot: Pilot[Any]) -> None:
    """Answer yes to that question, as a person clicking its button."""
    await asked(pilot)
    await pilot.click("#confirm-yes")
