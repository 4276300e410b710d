"""The dataset screen's Preview tab: a page of the prepared training file."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Static

from ftwizard.errors import FtwizardError
from ftwizard.screens.step import StepScreen

PREVIEW_PAGE = 10


class PreviewTab(StepScreen):
    """The Preview tab's part of :class:`DatasetScreen` (a mixin of it)."""

    # The first line shown; set by :class:`DatasetScreen`'s constructor.
    _preview_line: int

    def compose_preview(self) -> ComposeResult:
        """Paging buttons, a line to jump to, and the page."""
        with Horizontal(classes="row"):
            yield Button("Previous", id="preview-prev")
            yield Input(placeholder="line", id="preview-line", type="integer")
            yield Button("Next page", id="preview-next")
        yield Static("", id="preview-page")

    def show_preview(self, line: int) -> None:
        """Show a page of the prepared training file from ``line`` on."""
        result = self.session.dataset.result
        target = self.query_one("#preview-page", Static)
        path = result.training_file if result else self.session.dataset.choice.train_path
        if not path:
            target.update("Nothing to preview yet.")
            return
        from ftwizard.datasets.preview import PagedReader

        try:
            records = PagedReader(path).page(line, PREVIEW_PAGE)
        except FtwizardError as exc:
            target.update(str(exc))
            return
        if not records:
            target.update(f"No lines from {line} on.")
            return
        self._preview_line = records[0].line
        text = Text()
        for record in records:
            text.append(f"{record.line:>7} ", style="bold cyan")
            if record.ok:
                body = json.dumps(record.data, ensure_ascii=False)
                text.append(body[:400] + ("…" if len(body) > 400 else "") + "\n")
            else:
                text.append(f"{record.error}\n", style="red")
        target.update(text)
