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
    StepState.locked: "finish the steps above first",
    StepState.unavailable: "not in this version",
}


class StepSidebar(OptionList):
    """One option per step; selecting a reachable step asks the screen to go there."""

    def update_states(self, states: dict[StepId, StepState]) -> None:
        """Redraw the list for the given step states, keeping the highlight on the current step."""
        options: list[Option] = []
        current_index = 0
        for index, info in enumerate(STEPS):
            state = states[info.id]
            mark, style = _MARKS[state]
            label = Text.assemble((f"{mark} ", style), (info.title, style))
            note = _NOTES.get(state)
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
