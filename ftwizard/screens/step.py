"""The frame every step screen shares: sidebar, title, Back / Next, help, and journaling."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Header, OptionList, Static, TextArea

from ftwizard.flow import STEP_INFO, StepState, next_step, previous_step, step_states
from ftwizard.screens.dialogs import RowDetailsScreen
from ftwizard.screens.step_keys import EDITOR_HINTS, STEP_KEYS
from ftwizard.screens.stray_keys import StrayKeys, stray_key_notice
from ftwizard.session import Session, StepId
from ftwizard.widgets.step_sidebar import StepSidebar

if TYPE_CHECKING:
    from ftwizard.screens.host import WizardHost


def displayed(widget: Widget) -> bool:
    """Whether the widget and every container around it are displayed (``display`` is not
    part of Textual's ``focusable``)."""
    return widget.display and all(a.display for a in widget.ancestors if isinstance(a, Widget))


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
    # Rate-limits the notice for keys no control used (see on_key).
    _stray_keys: StrayKeys | None = None

    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("ctrl+n", "next", "Next"),
        Binding("ctrl+b", "back", "Back"),
        # The step's content scrolls from anywhere, the Back / Next bar included.
        Binding("pageup", "scroll_content(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_content(1)", "Scroll down", show=False),
    ]
    # Focus goes where the person acts first, not to the sidebar (see focus_first_control).
    AUTO_FOCUS: ClassVar[str | None] = ""
    # Shown in the border of every editor on the step: how to leave it, and what to press to
    # check what was typed (a step with a check binding says so).
    EDITOR_HINT: ClassVar[str] = "esc: leave the editor"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A step's screen gets its footer keys from step_keys, before Textual merges bindings.
        step = cls.__dict__.get("STEP")
        if step is not None:
            cls.BINDINGS = [*cls.__dict__.get("BINDINGS", []), *STEP_KEYS.get(step, [])]
            if "EDITOR_HINT" not in cls.__dict__ and step in EDITOR_HINTS:
                cls.EDITOR_HINT = EDITOR_HINTS[step]
        super().__init_subclass__(**kwargs)

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
                # Not a Tab stop: focus moves through the controls inside and scrolls them into
                # view; pageup / pagedown scroll it for reading.
                with VerticalScroll(id="step-content", can_focus=False):
                    yield from self.compose_body()
                with Horizontal(id="nav"):
                    yield Button("Back", id="back")
                    yield Static("", id="next-hint")
                    yield Button("Next", id="next", variant="primary")
        # Compact, so that a step's keys fit on one line at 80 columns.
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def step_problem(self) -> str | None:
        """What the user must still do before Next; None when the step is complete."""
        return None

    def on_mount(self) -> None:
        self.refresh_frame()
        for editor in self.query(TextArea):
            editor.border_subtitle = self.EDITOR_HINT

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
        self.call_after_refresh(self.fit_rows)
        if self.focused is None:
            # After the first layout, so that what the step shows or hides is settled.
            self.call_after_refresh(self.focus_first_control)

    def on_resize(self) -> None:
        # A wider terminal may fit rows that were stacked: lay them out in one line again,
        # then stack those that still do not fit.
        for row in self.query("#step-content Horizontal.-stacked"):
            row.remove_class("-stacked")
        self.call_after_refresh(self.fit_rows)

    def fit_rows(self) -> None:
        """Stack the rows of the step's content that are wider than the screen (a form row of
        labelled fields, a row of buttons) into two columns, so nothing is cut off at the
        right edge of a narrow terminal."""
        for row in self.query("#step-content Horizontal"):
            if not row.display or row.has_class("-stacked"):
                continue
            needed = sum(
                child.outer_size.width + child.styles.margin.width
                for child in row.children
                if child.display
            )
            if needed > row.content_size.width > 0:
                row.add_class("-stacked")

    def watch_focused(self, focused: Widget | None) -> None:
        # A focused control that the step hides (the settings once training starts) leaves the
        # focus nowhere, or on a hidden neighbour where Enter would act unseen: put it back on
        # the step's first control.
        if self.is_current:
            self.call_after_refresh(self._keep_focus_shown)

    def _keep_focus_shown(self) -> None:
        focused = self.focused
        if focused is not None and focused in self.focus_chain:
            return
        target = self.first_control()
        if target is not None and target is not focused:
            target.focus()

    def first_control(self) -> Widget | None:
        """The control the person decides on first: the first Tab stop of the step's content,
        or Next when the content has none (while a run disables them all, nothing)."""
        content = self.query_one("#step-content")
        for widget in self.focus_chain:
            if content in widget.ancestors:
                return widget
        # Never Back: Enter there would leave the step while its work runs.
        for widget in self.focus_chain:
            if widget.id == "next":
                return widget
        return None

    def focus_first_control(self) -> None:
        """Put the focus on :meth:`first_control` unless the person already moved it."""
        if self.focused is not None and not isinstance(self.focused, StepSidebar):
            return
        target = self.first_control()
        if target is not None:
            target.focus()

    def show_outcome(self, result: Widget, decision: Widget | None = None) -> None:
        """After a run ends: scroll its ``result`` to the top of the step's content and put the
        focus on the ``decision`` it asks for, so that on a short terminal the verdict is in
        view and the next keypress acts on it, not on the Run button above."""

        def apply() -> None:
            content = self.query_one("#step-content", VerticalScroll)
            content.scroll_to_widget(result, animate=False, top=True, immediate=True)
            if decision is not None and displayed(decision) and decision.focusable:
                # Not focus's own scrolling, which centres the control and can push the result
                # off the top: only as far as the control needs, the result staying above it.
                decision.focus(scroll_visible=False)
                if content in decision.ancestors:
                    content.scroll_to_widget(decision, animate=False, immediate=True)

        self.call_after_refresh(apply)

    def focus_next(self, selector: str | type[Widget] = "*") -> Widget | None:
        """Tab order, except that Escape from an editor leaves every editor behind it too:
        an editor's Escape moves on, and landing in the next editor would trap the person."""
        current = self.focused
        if isinstance(current, TextArea) and current.tab_behavior == "indent":
            chain = self.focus_chain
            if current in chain:
                start = chain.index(current)
                for widget in chain[start + 1 :] + chain[:start]:
                    if not isinstance(widget, TextArea):
                        self.set_focus(widget)
                        return widget
        return super().focus_next(selector)

    def action_scroll_content(self, direction: int) -> None:
        """Scroll the step's content by a page."""
        content = self.query_one("#step-content", VerticalScroll)
        if direction < 0:
            content.scroll_page_up()
        else:
            content.scroll_page_down()

    def action_focus_control(self, widget_id: str) -> None:
        """Move the focus to one of the step's controls from its footer binding."""
        found = self.query(f"#{widget_id}")
        if not found or not found.first().focusable or found.first() not in self.focus_chain:
            self.notify("That is not offered right now.", severity="warning")
            return
        found.first().focus()

    def action_press(self, button_id: str) -> None:
        """Press a button of the step from its footer binding; say why when it cannot be."""
        buttons = self.query(f"#{button_id}")
        if not buttons or not isinstance(buttons.first(), Button):
            self.notify("This key does nothing on this step.", severity="warning")
            return
        button = buttons.first(Button)
        label = str(button.label)
        if not displayed(button):
            self.notify(f'"{label}" is not offered right now.', severity="warning")
            return
        if button.disabled:
            self.notify(f'"{label}" is not available yet.', severity="warning")
            return
        button.scroll_visible(animate=False)
        button.press()

    def refresh_frame(self) -> None:
        """Bring the sidebar and the Next button in line with the session."""
        # What the step shows may have grown (buttons of a result): stack what no longer fits.
        self.call_after_refresh(self.fit_rows)
        if self.focused is None and self.is_current:
            # Controls a run disabled may be back: give the focus to the first of them.
            self.call_after_refresh(self.focus_first_control)
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

    def on_key(self, event: events.Key) -> None:
        # A key reaching the screen was used by no control on the way: say where it would act,
        # unless a binding (the footer's, the app's) takes it next.
        notice = stray_key_notice(self, event)
        if notice is None:
            return
        if self._stray_keys is None:
            self._stray_keys = StrayKeys()
        if self._stray_keys.due(notice):
            self.notify(notice, title="Key not used here", timeout=4)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # Runs after the step's own handler (the base class is last in the order), which calls
        # prevent_default when Enter on a row already does something there.
        event.stop()
        table = event.data_table
        row = table.get_row(event.row_key)
        fields = [
            (str(column.label) or f"column {index + 1}", str(value))
            for index, (column, value) in enumerate(zip(table.ordered_columns, row, strict=False))
        ]
        self.app.push_screen(RowDetailsScreen(f"Row {event.cursor_row + 1}", fields))

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
