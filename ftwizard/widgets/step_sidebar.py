"""The sidebar listing every step of the wizard with its state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ftwizard.flow import STEPS, StepState
from ftwizard.session import StepId

_MARKS: dict[StepState, tuple[str, str]] = {
    StepState.done: ("✓", "green"),
    StepState.current: ("▶", "bold"),
    StepState.open: ("○", ""),
    StepState.locked: ("·", "dim"),
    StepState.unavailable: ("✗", "dim"),
}

_NOTES: dict[StepState, str] = {
    StepState.locked: "after earlier steps",
    StepState.unavailable: "not in this version",
}


# Narrower than this, the sidebar shows each step's mark and number only (the layout makes it
# that narrow below 100 terminal columns, see ftwizard.tcss).
COMPACT_WIDTH = 16


class StepSidebar(OptionList):
    """One option per step; selecting a reachable step asks the screen to go there."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._states: dict[StepId, StepState] | None = None
        self._marks_only = False

    @property
    def marks_only(self) -> bool:
        """Whether the list shows marks and numbers only."""
        return self._marks_only

    def on_resize(self) -> None:
        marks_only = 0 < self.size.width < COMPACT_WIDTH
        if marks_only != self._marks_only:
            self._marks_only = marks_only
            if self._states is not None:
                self.update_states(self._states)

    def update_states(self, states: dict[StepId, StepState]) -> None:
        """Redraw the list for the given step states, keeping the highlight on the current step."""
        self._states = dict(states)
        options: list[Option] = []
        current_index = 0
        for index, info in enumerate(STEPS):
            state = states[info.id]
            mark, style = _MARKS[state]
            if self._marks_only:
                label = Text.assemble((f"{mark} {index + 1}", style))
            else:
                label = Text.assemble((f"{mark} ", style), (info.title, style))
            note = None if self._marks_only else _NOTES.get(state)
            if note:
                label.append(f"\n  {note}", style="dim italic")
            if state is StepState.current:
                current_index = index
            options.append(
                Option(
                    label,
                    id=f"step-{info.id.value}",
                    disabled=state in (StepState.locked, StepState.unavailable),
                )
            )
        self.set_options(options)
        self.highlighted = current_index
