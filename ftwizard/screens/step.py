"""The frame every step screen shares: sidebar, title, Back / Next, help, and journaling."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, OptionList, Static

from ftwizard.flow import STEP_INFO, StepState, next_step, previous_step, step_states
from ftwizard.session import Session, StepId
from ftwizard.widgets.step_sidebar import StepSidebar

if TYPE_CHECKING:
    from ftwizard.screens.host import WizardHost


class StepScreen(Screen[None]):
    """Base class of the step screens.

    Subclasses set :attr:`STEP` and :attr:`HELP`, yield their widgets from :meth:`compose_body`
    and return what still blocks the step from :meth:`step_problem`. They change the session
    only through :meth:`decide`, which saves and journals the change.
    """

    STEP: ClassVar[StepId]
    HELP: ClassVar[str] = ""
    # Named conditions a replay may `wait` for on this screen: name -> predicate.
    WAIT_CONDITIONS: ClassVar[dict[str, Callable[[StepScreen], bool]]] = {}
    # The journal entry of the set being folded, and the session before that set.
    _fold_start: tuple[int, dict[str, Any]] | None = None
    # How each background job on this screen last ended (job -> done | failed | stopped |
    # declined), cleared when the job starts again; replays wait on it.
    _outcomes: dict[str, str] | None = None

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+b", "back", "Back"),
    ]

    @property
    def screen_name(self) -> str:
        """The name replays use for this screen (``screen: task``)."""
        return self.STEP.value

    @property
    def wizard(self) -> WizardHost:
        """The running ftwizard app."""
        return self.app  # type: ignore[return-value]

    @property
    def session(self) -> Session:
        """The open session (a step screen only exists while one is open)."""
        session = self.wizard.session
        assert session is not None, "a step screen needs an open session"
        return session

    def compose(self) -> ComposeResult:
        info = STEP_INFO[self.STEP]
        yield Header()
        with Horizontal(id="frame"):
            yield StepSidebar(id="steps")
            with Vertical(id="step-body"):
                yield Static(f"{info.title} - {info.purpose}", id="step-title")
                with VerticalScroll(id="step-content"):
                    yield from self.compose_body()
                with Horizontal(id="nav"):
                    yield Button("Back", id="back")
                    yield Static("", id="next-hint")
                    yield Button("Next", id="next", variant="primary")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def step_problem(self) -> str | None:
        """What the user must still do before Next; None when the step is complete."""
        return None

    def on_mount(self) -> None:
        self.refresh_frame()

    # Background jobs ------------------------------------------------------------------------

    def job_started(self, job: str) -> None:
        """Forget how ``job`` ended last time: a replay waiting on it waits for this run."""
        if self._outcomes is not None:
            self._outcomes.pop(job, None)

    def job_ended(self, job: str, result: str) -> None:
        """Record how ``job`` ended (done, failed, stopped, declined) and journal it, so an
        exported replay waits on the outcome that happened rather than on success."""
        if self._outcomes is None:
            self._outcomes = {}
        self._outcomes[job] = result
        self.wizard.journal({"outcome": {job: result}}, screen=self.screen_name)

    def job_outcome(self, job: str) -> str | None:
        """How ``job`` last ended on this screen, or ``None`` while it runs or never ran."""
        return (self._outcomes or {}).get(job)

    def on_screen_resume(self) -> None:
        self.wizard.journal({"screen": self.screen_name}, screen=self.screen_name)
        self.refresh_frame()

    def refresh_frame(self) -> None:
        """Bring the sidebar and the Next button in line with the session."""
        available = self.wizard.available_steps
        self.query_one(StepSidebar).update_states(step_states(self.session, available))
        problem = self.step_problem()
        following = next_step(self.STEP)
        hint = self.query_one("#next-hint", Static)
        next_button = self.query_one("#next", Button)
        if problem:
            hint.update(problem)
            next_button.disabled = True
        elif following is None:
            hint.update("This is the last step.")
            next_button.disabled = True
        elif following not in available:
            hint.update(
                f"The {STEP_INFO[following].title.lower()} step is not in this version of "
                "ftwizard yet. Your choices are saved; quit with ctrl+q and resume later."
            )
            next_button.disabled = True
        else:
            hint.update(f"Next: {STEP_INFO[following].title}")
            next_button.disabled = False

    def decide(self, widget_id: str, value: Any, apply: Callable[[Session], bool]) -> None:
        """Apply a user's choice to the session; save and journal it when it changed something.

        ``apply`` mutates the session and returns whether anything changed. Restoring saved
        values into widgets fires the same events but changes nothing, so it is not journaled.
        """
        journal = self.session.journal
        # The journal folds consecutive sets of one widget into one entry; remember the session
        # before the first of them, so a fold that ends where it started (dpo, then back to
        # sft) leaves no entry: it was no decision, and a replay of it would record none.
        folding = bool(journal) and _sets(journal[-1].screen, journal[-1].action) == (
            self.screen_name,
            {widget_id},
        )
        before = None if folding else _state(self.session)
        if apply(self.session):
            start = self._fold_start
            if (
                folding
                and start is not None
                and start[0] == len(journal) - 1
                and _state(self.session) == start[1]
            ):
                journal.pop()
                self._fold_start = None
                self.wizard.save_session()
                self.refresh_frame()
                return
            self.wizard.journal({"set": {widget_id: value}}, screen=self.screen_name)
            if before is not None:
                self._fold_start = (len(journal) - 1, before)
        self.refresh_frame()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if not isinstance(event.option_list, StepSidebar) or event.option.id is None:
            return
        event.stop()
        target = StepId(event.option.id.removeprefix("step-"))
        if target != self.STEP:
            self.wizard.journal({"press": event.option.id}, screen=self.screen_name)
            self.wizard.go_to(target)

    def action_next(self) -> None:
        """Go to the next step when this one is complete and the next one exists."""
        following = next_step(self.STEP)
        states = step_states(self.session, self.wizard.available_steps)
        problem = self.step_problem()
        if problem:
            self.notify(problem, title="Not yet", severity="warning")
            return
        if following is None or states[following] is StepState.unavailable:
            self.notify(str(self.query_one("#next-hint", Static).content), severity="warning")
            return
        self.wizard.journal({"press": "next"}, screen=self.screen_name)
        self.wizard.go_to(following)

    def action_back(self) -> None:
        """Go to the previous step, or close the session from the first step."""
        if previous_step(self.STEP) is not None:
            # Leaving the session from its first step closes it; that is not a decision to replay.
            self.wizard.journal({"press": "back"}, screen=self.screen_name)
        self.wizard.go_back(self.STEP)


def ended(job: str, *results: str) -> Callable[[StepScreen], bool]:
    """A wait condition: ``job`` has ended here, with one of ``results`` (any when none)."""

    def holds(screen: StepScreen) -> bool:
        outcome = screen.job_outcome(job)
        return outcome is not None and (not results or outcome in results)

    return holds


def job_conditions(job: str) -> dict[str, Callable[[StepScreen], bool]]:
    """``<job>-failed`` and ``<job>-ended``: the conditions every background job has."""
    return {f"{job}-failed": ended(job, "failed"), f"{job}-ended": ended(job)}


def _sets(screen: str, action: dict[str, Any]) -> tuple[str, set[str]]:
    return screen, set(action.get("set") or ())


def _state(session: Session) -> dict[str, Any]:
    """The session's choices and results, without the journal and the save time."""
    return session.model_dump(exclude={"journal", "updated"})
