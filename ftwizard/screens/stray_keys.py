"""What a key that no control on a step uses should say, so that no keystroke is lost unseen.

A printable key or Enter that reaches the step screen unused (the focus is on a button, a table,
a choice list...) gets a short notice saying where typing goes or what Enter does there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.widget import Widget
from textual.widgets import Input, Label, Static, TextArea

if TYPE_CHECKING:
    from textual import events
    from textual.screen import Screen

# The same notice is not repeated within this many seconds: a person typing a word into the
# wrong place gets one notice, not one per letter.
QUIET_S = 4.0

_KINDS: dict[str, str] = {
    "Button": "a button",
    "DataTable": "a table",
    "RadioSet": "a list of choices",
    "Select": "a drop-down",
    "Checkbox": "a tick box",
    "Switch": "a switch",
    "StepSidebar": "the list of steps",
    "Tabs": "the tabs",
    "ContentTabs": "the tabs",
    "CollapsibleTitle": "a section title",
    "Log": "the log",
    "DirectoryTree": "the file tree",
}


def kind_of(widget: Widget) -> str:
    """How a notice names the kind of control that has the focus."""
    for cls in type(widget).__mro__:
        if cls.__name__ in _KINDS:
            return _KINDS[cls.__name__]
    return "this control"


def label_of(box: Widget) -> str:
    """The words a person sees for a text box: its field label, border title or placeholder."""
    parent = box.parent
    if isinstance(parent, Widget):
        siblings = list(parent.children)
        before = siblings[: siblings.index(box)]
        for sibling in reversed(before):
            if isinstance(sibling, (Label, Static)) and sibling.has_class("field-label"):
                return str(sibling.content).strip().rstrip(":")
            if isinstance(sibling, (Input, TextArea)):
                break
    if box.border_title:
        return str(box.border_title)
    if isinstance(box, Input) and box.placeholder:
        return box.placeholder
    return "text"


def next_text_box(screen: Screen[object], focused: Widget) -> Widget | None:
    """The text box Tab reaches first from ``focused`` (Input or editor), if the step has one."""
    chain = screen.focus_chain
    if focused not in chain:
        return next((w for w in chain if isinstance(w, (Input, TextArea))), None)
    start = chain.index(focused)
    for widget in chain[start + 1 :] + chain[:start]:
        if isinstance(widget, (Input, TextArea)):
            return widget
    return None


def stray_key_notice(screen: Screen[object], event: events.Key) -> str | None:
    """The notice for a key that reached the screen unused, or None when the key is in use
    (a binding anywhere on the focus chain, the app's included) or is no typing at all."""
    if event.key != "enter" and not event.is_printable:
        return None
    if event.key in screen.active_bindings:
        return None
    focused = screen.focused
    if focused is None:
        return None
    kind = kind_of(focused)
    if kind == "a drop-down":
        return "Press Enter to open the drop-down, then type to jump to a choice."
    if event.key == "enter":
        return (
            f"Enter does nothing on {kind}. Tab to a button and press Enter, "
            "or use the keys in the footer (ctrl+n: Next)."
        )
    box = next_text_box(screen, focused)
    if box is None:
        return (
            f"Typing does nothing on {kind}: this step has no text box. "
            "Tab moves between controls; Enter or space acts on one."
        )
    return f'Typing does nothing on {kind}. Press Tab to reach "{label_of(box)}" and type there.'


class StrayKeys:
    """Rate-limits the notices of one screen."""

    def __init__(self) -> None:
        self._last: tuple[str, float] | None = None

    def due(self, notice: str) -> bool:
        """Whether ``notice`` should show now (not the same one within :data:`QUIET_S`)."""
        now = time.monotonic()
        if self._last is not None and self._last[0] == notice and now - self._last[1] < QUIET_S:
            return False
        self._last = (notice, now)
        return True
