"""Runs a replay through the real app, headless, and prints a transcript line per action.

This is the UI half of replay (it drives Textual widgets); the file format, expectations and
export live in :mod:`ftwizard.replay`.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from textual.pilot import Pilot
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    RadioButton,
    RadioSet,
    Select,
    Switch,
    TextArea,
)

from ftwizard.app import FtwizardApp, make_app
from ftwizard.credentials import redact
from ftwizard.errors import EXIT_CHECK_FAILED, EXIT_OK, EXIT_UNUSABLE_INPUT, FtwizardError
from ftwizard.flow import start_session
from ftwizard.replay import Action, Replay, check_expectation
from ftwizard.replay_keys import REPLAY_SIZE, split_keys
from ftwizard.session import Backend, Session
from ftwizard.store import SessionStore

_WIDGET_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_POLL = 0.05


class ActionFailed(Exception):
    """An action could not be performed or an expectation did not hold."""


@dataclass
class ReplayResult:
    """What a replay run did."""

    exit_code: int
    session_id: str | None = None
    failures: list[str] = field(default_factory=list)


def _screen_name(app: FtwizardApp) -> str:
    return str(getattr(app.screen, "screen_name", type(app.screen).__name__))


async def _wait_until(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pilot.app.is_running:
            return False
        if predicate():
            return True
        await pilot.pause(_POLL)
    return predicate()


def _set_widget(app: FtwizardApp, widget_id: str, value: Any) -> None:
    screen = app.screen
    matches = screen.query(f"#{widget_id}")
    if not matches:
        raise ActionFailed(f"no widget #{widget_id} on screen '{_screen_name(app)}'")
    widget = matches.first()
    if widget.disabled:
        raise ActionFailed(f"#{widget_id} is disabled")
    if isinstance(widget, Input):
        widget.value = str(value)
    elif isinstance(widget, TextArea):
        widget.load_text(str(value))
    elif isinstance(widget, Select):
        allowed = [option_value for _, option_value in widget._options]
        if value not in allowed:
            raise ActionFailed(f"#{widget_id} has no option {value!r}; options: {allowed!r}")
        widget.value = value
    elif isinstance(widget, RadioSet):
        buttons = widget.query(f"#{widget_id}-{value}")
        if not buttons:
            choices = [
                b.id.removeprefix(f"{widget_id}-") for b in widget.query(RadioButton) if b.id
            ]
            raise ActionFailed(f"#{widget_id} has no choice {value!r}; choices: {choices!r}")
        buttons.first(RadioButton).value = True
    elif isinstance(widget, Switch | Checkbox):
        if not isinstance(value, bool):
            raise ActionFailed(f"#{widget_id} takes true or false, not {value!r}")
        widget.value = value
    elif isinstance(widget, DataTable):
        try:
            row = widget.get_row_index(str(value))
        except Exception:
            raise ActionFailed(f"#{widget_id} has no row {value!r}") from None
        widget.move_cursor(row=row)
    else:
        raise ActionFailed(f"#{widget_id} is a {type(widget).__name__}, which a replay cannot set")


async def _perform(pilot: Pilot[Any], action: Action, screenshots: Path | None) -> str:
    """Do one action; return a note for the transcript or raise :class:`ActionFailed`."""
    app: FtwizardApp = pilot.app  # type: ignore[assignment]
    if action.kind == "screen":
        name = action.screen or ""

        # A screen counts once it is mounted, not when it is pushed: until then its widgets
        # may not exist yet, and a loaded machine widens that gap.
        def shown() -> bool:
            return _screen_name(app) == name and app.screen.is_mounted

        if not await _wait_until(pilot, shown, action.timeout):
            raise ActionFailed(
                f"screen '{name}' did not appear within {action.timeout:g}s "
                f"(current screen: '{_screen_name(app)}')"
            )
        return ""
    if action.kind == "set":
        for widget_id, value in (action.set or {}).items():
            _set_widget(app, widget_id, value)
            await pilot.pause()
        return ""
    if action.kind == "press":
        target = action.press or ""
        buttons = app.screen.query(f"#{target}") if _WIDGET_ID.match(target) else None
        if buttons and isinstance(buttons.first(), Button):
            button = buttons.first(Button)
            if button.disabled:
                raise ActionFailed(f"button #{target} is disabled")
            button.press()
        elif "-" in target:
            raise ActionFailed(f"no button #{target} on screen '{_screen_name(app)}'")
        else:
            await pilot.press(target)
        await pilot.pause()
        return ""
    if action.kind == "keys":
        await pilot.press(*split_keys(action.keys or ""))
        await pilot.pause()
        return _focus_note(app)
    if action.kind == "type":
        focused = app.focused
        if not isinstance(focused, Input | TextArea):
            what = "nothing" if focused is None else _describe_widget(focused)
            raise ActionFailed(f"'type' needs a text box in focus; {what} has the focus")
        if focused.disabled or getattr(focused, "read_only", False):
            raise ActionFailed(f"{_describe_widget(focused)} does not take text now")
        # One key per character, as a terminal sends them: the widget sees real key events.
        await pilot.press(*[_char_key(char) for char in action.type or ""])
        await pilot.pause()
        return ""
    if action.kind == "wait":
        assert action.wait is not None
        return await _wait_for(pilot, action.wait.condition, action.wait.timeout)
    if action.kind == "expect":
        if app.session is None:
            raise ActionFailed("no session is open")
        problems = [
            problem
            for path, expected in (action.expect or {}).items()
            if (problem := check_expectation(app.session, path, expected))
        ]
        if problems:
            raise ActionFailed("; ".join(problems))
        return ""
    if action.kind == "screenshot":
        if screenshots is None:
            return "skipped (no --screenshots DIR)"
        screenshots.mkdir(parents=True, exist_ok=True)
        await _settle(pilot)
        saved = app.save_screenshot(filename=f"{action.screenshot}.svg", path=str(screenshots))
        return f"saved {saved}"
    raise ActionFailed(f"unknown action {action.kind}")


def _char_key(char: str) -> str:
    """The key a terminal sends for one typed character."""
    if char == " ":
        return "space"
    if char == "\n":
        return "enter"
    if char == "\t":
        return "tab"
    return char


def _describe_widget(widget: Any) -> str:
    name = type(widget).__name__
    return f"{name} #{widget.id}" if widget.id else name


def _focus_note(app: FtwizardApp) -> str:
    """Where the keys left the focus, for the transcript (a person reading it can follow)."""
    focused = app.focused
    return f"focus: {_describe_widget(focused)}" if focused is not None else ""


def _conditions(screen: Any) -> dict[str, tuple[Any, Callable[[Any], bool]]]:
    """The screen's conditions, and those of the shared widgets on it (a widget's
    ``WAIT_CONDITIONS`` take the widget), each with what its predicate is called on."""
    found: dict[str, tuple[Any, Callable[[Any], bool]]] = {}
    for widget in screen.query("*"):
        for name, predicate in getattr(type(widget), "WAIT_CONDITIONS", {}).items():
            found.setdefault(name, (widget, predicate))
    for name, predicate in getattr(screen, "WAIT_CONDITIONS", {}).items():
        found[name] = (screen, predicate)
    return found


async def _wait_for(pilot: Pilot[Any], condition: str, timeout: float) -> str:
    app: FtwizardApp = pilot.app  # type: ignore[assignment]
    if condition == "workers":
        try:
            await asyncio.wait_for(app.workers.wait_for_complete(), timeout)
        except TimeoutError:
            raise ActionFailed(f"workers still running after {timeout:g}s") from None
        await pilot.pause()
        return ""
    conditions = _conditions(app.screen)
    found = conditions.get(condition)
    if found is None:
        known = ", ".join(["workers", *sorted(conditions)])
        raise ActionFailed(
            f"no condition '{condition}' on screen '{_screen_name(app)}' (known: {known})"
        )
    owner, predicate = found
    if not await _wait_until(pilot, lambda: predicate(owner), timeout):
        raise ActionFailed(f"'{condition}' did not hold within {timeout:g}s")
    await _settle(pilot)
    return _focus_note(app)


async def _settle(pilot: Pilot[Any]) -> None:
    """Let the screen finish what a finished run asked of it (scroll its result into view, move
    the focus to the answer it needs, both after the next refresh), so that the next key acts
    where a person would see the focus, and a screenshot shows what they would see."""
    for _ in range(3):
        await pilot.pause()


def _stop_reason(app: FtwizardApp) -> str:
    # Textual keeps the exception that ended the app (a failed worker or handler) here.
    error = getattr(app, "_exception", None)
    if error is not None:
        return f"{type(error).__name__}: {error}"
    return f"exit code {app.return_code}"


def _serving(session: Session) -> bool:
    """Whether the session's local deployment has a server running."""
    from ftwizard.deploy.engine import local_server_alive

    return session.task.backend is Backend.local and local_server_alive(session)


def _stop_served(store: SessionStore, session_id: str) -> str | None:
    """Stop the local server a replay started, so a CI run leaves no process behind.

    The session keeps its deployment; the deploy step says the server is not running and
    Deploy starts it again.
    """
    from ftwizard.deploy.engine import stop_local_server

    try:
        session = store.load(session_id)
    except FtwizardError:
        return None
    if not _serving(session):
        return None
    stop_local_server(session)
    return f"replay: stopped the local server it started ({session.deployment.base_url})"


def run_replay(
    replay: Replay,
    *,
    store: SessionStore | None = None,
    allow_spend: bool = False,
    screenshots: Path | None = None,
    out: TextIO | None = None,
    size: tuple[int, int] = REPLAY_SIZE,
) -> ReplayResult:
    """Run a parsed replay headless at ``size`` (columns, rows); the exit code is 0 passed,
    1 failed, 2 unusable."""
    return asyncio.run(
        run_replay_async(
            replay,
            store=store,
            allow_spend=allow_spend,
            screenshots=screenshots,
            out=out,
            size=size,
        )
    )


async def run_replay_async(
    replay: Replay,
    *,
    store: SessionStore | None = None,
    allow_spend: bool = False,
    screenshots: Path | None = None,
    out: TextIO | None = None,
    size: tuple[int, int] = REPLAY_SIZE,
) -> ReplayResult:
    """:func:`run_replay` for callers that already run an event loop."""
    stream = out or sys.stdout
    store = store or SessionStore()

    def say(text: str) -> None:
        stream.write(redact(text) + "\n")
        stream.flush()

    session_id: str | None = None
    served_before = False
    try:
        if replay.resume is not None:
            session_id = store.resolve(replay.resume)
            served_before = _serving(store.load(session_id))
        elif replay.session is not None:
            block = replay.session
            session_id = start_session(
                store,
                block.name,
                method=block.method,
                backend=block.backend,
                base_model=block.base_model,
            ).id
    except FtwizardError as exc:
        say(f"{replay.path}: {exc}")
        return ReplayResult(exit_code=EXIT_UNUSABLE_INPUT, session_id=session_id)
    at = f" at {size[0]}x{size[1]}"
    if session_id:
        say(f"replay {replay.path}: session {session_id}{at}")
    else:
        say(f"replay {replay.path}{at}")

    app = make_app(store=store, session_id=session_id, allow_spend=allow_spend)
    result = ReplayResult(exit_code=EXIT_OK, session_id=session_id)

    async def pilot_script(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        total = len(replay.actions)
        for number, action in enumerate(replay.actions, start=1):
            prefix = f"[{number}/{total}] line {action.line}: {action.describe()}"
            if not app.is_running or app.return_code is not None:
                reason = _stop_reason(app)
                result.failures.append(f"line {action.line}: the app stopped ({reason})")
                say(f"{prefix} ... FAILED: the app stopped ({reason})")
                break
            try:
                note = await _perform(pilot, action, screenshots)
            except ActionFailed as exc:
                result.failures.append(f"line {action.line}: {exc}")
                say(f"{prefix} ... FAILED: {exc}")
                break
            except Exception as exc:  # a fault in a screen: fail this line, never a traceback
                message = f"{type(exc).__name__}: {exc}"
                result.failures.append(f"line {action.line}: the screen raised {message}")
                say(f"{prefix} ... FAILED: the screen raised {message}")
                break
            say(f"{prefix} ... ok" + (f" ({note})" if note else ""))
        if app.session is not None and result.session_id is None:
            result.session_id = app.session.id
        # Only exit if nothing else ended the app: a crashed worker sets return_code, and
        # exiting over it would turn the crash into a pass.
        if app.is_running and app.return_code is None:
            app.close_session()
            app.exit(EXIT_CHECK_FAILED if result.failures else EXIT_OK)

    try:
        await app.run_async(headless=True, size=size, auto_pilot=pilot_script)
    except Exception as exc:  # the app itself crashed: report it, never a traceback
        result.failures.append(f"the app crashed: {type(exc).__name__}: {exc}")
    finally:
        app.close_session()
    if result.session_id is not None and not served_before:
        stopped = _stop_served(store, result.session_id)
        if stopped:
            say(stopped)
    code = app.return_code
    if code not in (None, EXIT_OK) and not result.failures:
        result.failures.append(f"the app ended with code {code} (a worker or screen failed)")
        if code == EXIT_UNUSABLE_INPUT:
            result.exit_code = EXIT_UNUSABLE_INPUT
    if result.failures and result.exit_code == EXIT_OK:
        result.exit_code = EXIT_CHECK_FAILED
    if result.failures:
        say(f"replay FAILED: {result.failures[0]}")
    else:
        say(f"replay passed: {len(replay.actions)} actions")
    return result
