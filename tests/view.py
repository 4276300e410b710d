"""What a person can see and reach on a screen, found by walking the screen itself (not from
Textual's own focus chain, which is what these checks are about)."""

from __future__ import annotations

from textual.containers import ScrollableContainer
from textual.widget import Widget


def shown(widget: Widget) -> bool:
    """Whether the widget and every container around it are displayed and visible."""
    return all(node.display and node.visible for node in (widget, *widget.ancestors_with_self))


def interactive(screen) -> list[Widget]:
    """Every widget a person can act on: focusable, shown and enabled (found by walking the
    screen, not from Textual's own focus chain)."""
    return [
        widget
        for widget in screen.query("*")
        if widget.can_focus
        and shown(widget)
        and not widget.disabled
        and not any(a.disabled for a in widget.ancestors if isinstance(a, Widget))
        and not any(isinstance(a, Widget) and not a.can_focus_children for a in widget.ancestors)
    ]


def in_view(screen, widget: Widget) -> bool:
    """Whether the widget can be seen: its region lies on the screen, and the point at the
    middle of its visible part shows the widget itself (no bar or other widget covers it)."""
    region = widget.region
    if region.area == 0:
        return False
    for ancestor in widget.ancestors:
        if isinstance(ancestor, ScrollableContainer) and ancestor is not widget:
            region = region.intersection(ancestor.content_region)
    region = region.intersection(screen.region)
    if region.area == 0:
        return False
    # Fully in view when it fits; a widget taller than the view shows at least its top.
    fits = widget.region.height <= region.height or region.y == widget.region.y
    x, y = region.x + region.width // 2, region.y
    try:
        under, _ = screen.get_widget_at(x, y)
    except Exception:
        return False
    return fits and (under is widget or widget in under.ancestors)
