"""The environment check panel: which credentials and packages are present, never their values."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ftwizard.environment import CheckState, EnvCheck

_MARKS: dict[CheckState, tuple[str, str]] = {
    CheckState.ok: ("✓", "green"),
    CheckState.missing: ("✗", "red"),
    CheckState.optional: ("-", "dim"),
}


class EnvCheckPanel(Static):
    """Renders a list of :class:`EnvCheck` results, one line each, with a hint when absent."""

    def show(self, checks: list[EnvCheck]) -> None:
        """Replace the panel's content with these checks."""
        text = Text()
        for check in checks:
            mark, style = _MARKS[check.state]
            text.append(f"{mark} ", style=style)
            text.append(check.name, style="bold" if check.state is CheckState.missing else "")
            text.append(f": {check.state.value}", style=style)
            text.append(f" - {check.purpose}\n", style="dim")
            if check.hint:
                text.append(f"    {check.hint}\n", style="italic")
        self.update(text)
