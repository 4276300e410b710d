"""A radio button whose label wraps, so a long choice reads whole in a narrow terminal."""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import RadioButton


class Choice(RadioButton):
    """A RadioButton that wraps its label under itself instead of cutting it with "…"."""

    DEFAULT_CSS = """
    Choice {
        width: 1fr;
        height: auto;
        text-wrap: wrap;
        text-overflow: fold;
    }
    """

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # The button and its padding take the first columns; the label wraps in the rest.
        label_width = max(1, width - self._button.get_optimal_width(self.styles, 0) - 2)
        return max(1, self._label.get_height(self.styles, label_width))
