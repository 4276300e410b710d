"""The ftwizard Textual app: opens sessions, moves between steps, saves on every change."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from ftwizard import __version__
from ftwizard.credentials import redact
from ftwizard.errors import EXIT_UNUSABLE_INPUT, FtwizardError
from ftwizard.flow import STEP_INFO, can_enter, previous_step, start_session
from ftwizard.screens import STEP_SCREENS
from ftwizard.screens.dialogs import HelpScreen
from ftwizard.screens.welcome import WelcomeScreen
from ftwizard.session import Session, StepId
from ftwizard.store import SessionLock, SessionStore


class FtwizardApp(App[int]):
    """The wizard. Holds the open session and its lock; screens change it through this app."""

    TITLE = "ftwizard"
    SUB_TITLE = f"v{__version__}"
    CSS_PATH = Path(__file__).with_name("ftwizard.tcss")
    # Screens get -narrow below 100 columns: the sidebar shrinks to step marks (ftwizard.tcss).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (100, "-wide"),
    ]
    # And -short below 30 rows: labels and titles drop their blank lines (ftwizard.tcss).
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [(0, "-short"), (30, "-tall")]
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("ctrl+q", "quit", "Quit (saves)", priority=True),
        # The footer names F1: ? types into a text field, where each step opens, and F1 shows
        # the help from anywhere. ? still opens it from a button, a list or a table.
        Binding("f1", "help", "Help", key_display="F1"),
        Binding("question_mark", "help", "Help", show=False),
    ]

    def __init__(
        self,
        store: SessionStore,
        *,
        session_id: str | None = None,
        allow_spend: bool = False,
    ) -> None:
        super().__init__()
        self.store = store
        self.initial_session_id = session_id
        # Later steps check this before anything that costs money; replays keep it False
        # unless run with --allow-spend.
        self.allow_spend = allow_spend
        self.session: Session | None = None
        self._lock: SessionLock | None = None
        # Printed by the command line once the app has quit (the terminal is back by then).
        self.exit_note: list[str] = []

    @property
    def available_steps(self) -> frozenset[StepId]:
        """The steps this version of ftwizard has screens for."""
        return frozenset(STEP_SCREENS)

    def on_mount(self) -> None:
        self.push_screen(WelcomeScreen())
        if self.initial_session_id is not None:
            self.open_session(self.initial_session_id, exit_on_error=True)

    def on_unmount(self) -> None:
        # However the app ends (quit, a test harness, a crash), the session is saved and its
        # lock released.
        self.close_session()

    # Sessions -------------------------------------------------------------------------------

    def create_session(self, name: str | None) -> None:
        """Create a new session with the offline defaults and open it."""
        session = start_session(self.store, name)
        self.open_session(session.id)

    def open_session(self, session_id: str, *, exit_on_error: bool = False) -> None:
        """Lock and load a session, then show its current step."""
        self.close_session()
        lock = self.store.lock(session_id)
        try:
            lock.acquire()
            session = self.store.load(session_id)
        except FtwizardError as exc:
            lock.release()
            if exit_on_error:
                self.exit(return_code=EXIT_UNUSABLE_INPUT, message=redact(str(exc)))
            else:
                self.notify(redact(str(exc)), title="Cannot open session", severity="error")
            return
        self._lock = lock
        self.session = session
        self.sub_title = session.name
        step = session.step if session.step in self.available_steps else StepId.task
        self.push_screen(STEP_SCREENS[step]())

    def save_session(self) -> None:
        """Write the open session to disk (atomic)."""
        if self.session is not None:
            self.store.save(self.session)

    def close_session(self) -> None:
        """Save the open session and release its lock."""
        if self.session is None:
            return
        self.save_session()
        self.session = None
        self.sub_title = f"v{__version__}"
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def journal(self, action: dict[str, Any], *, screen: str) -> None:
        """Record a user decision in the session's journal and save."""
        if self.session is None:
            return
        journal = self.session.journal
        if "screen" in action and journal and journal[-1].screen == action["screen"]:
            return
        self.session.record(screen, action)
        self.save_session()

    # Navigation -----------------------------------------------------------------------------

    def go_to(self, step: StepId) -> None:
        """Show ``step`` if every earlier step is done; the session remembers where it is."""
        if self.session is None:
            return
        if not can_enter(self.session, step, self.available_steps):
            self.notify(
                f"The {STEP_INFO[step].title.lower()} step is not reachable yet.",
                severity="warning",
            )
            return
        self.session.step = step
        self.save_session()
        # Switch once the event that asked for it (a button press, a key) is fully handled:
        # tearing the screen down from inside its own handler races with its widgets' timers.
        self.call_later(self.switch_screen, STEP_SCREENS[step]())

    def go_back(self, step: StepId) -> None:
        """Show the step before ``step``; from the first step, close the session."""
        previous = previous_step(step)
        if previous is None:
            self.close_session()
            self.pop_screen()
            return
        self.go_to(previous)

    # Actions --------------------------------------------------------------------------------

    def action_help(self) -> None:
        """Show the current screen's help."""
        if isinstance(self.screen, HelpScreen):
            return
        text = getattr(self.screen, "HELP", "") or "No help for this screen."
        self.push_screen(HelpScreen(text))

    async def action_quit(self) -> None:
        """Save everything and exit; leave a note on how to resume and what still runs."""
        from ftwizard.deploy.engine import goodbye

        session_id = self.session.id if self.session is not None else None
        self.close_session()
        self.exit_note = goodbye(self.store, session_id)
        self.exit(0)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.session is None:
            return
        for step in STEP_SCREENS:
            if can_enter(self.session, step, self.available_steps):
                title = STEP_INFO[step].title
                yield SystemCommand(
                    f"Go to step: {title}",
                    STEP_INFO[step].purpose,
                    lambda step=step: self.go_to(step),
                )
        yield SystemCommand(
            "Close session", "Save and go back to the session list", self._close_to_welcome
        )

    def _close_to_welcome(self) -> None:
        self.close_session()
        while not isinstance(self.screen, WelcomeScreen):
            self.pop_screen()


def make_app(
    *,
    store: SessionStore | None = None,
    session_id: str | None = None,
    allow_spend: bool = False,
) -> FtwizardApp:
    """Build the app for the CLI, the tests and replays."""
    return FtwizardApp(store or SessionStore(), session_id=session_id, allow_spend=allow_spend)
