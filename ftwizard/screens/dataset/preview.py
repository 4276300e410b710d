"""The dataset screen's Preview tab: a page of the prepared training file."""

from __future__ import annotations

import json
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
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
        # The page's first image, drawn by the terminal itself where it can (Kitty, Sixel).
        yield Vertical(id="preview-image")

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
        from ftwizard.datasets.images import may_hold_images
        from ftwizard.widgets.terminal_image import graphics_available

        graphics = graphics_available()
        first_image: bytes | None = None
        text = Text()
        for record in records:
            text.append(f"{record.line:>7} ", style="bold cyan")
            if record.ok:
                body = json.dumps(record.data, ensure_ascii=False, default=_bytes_label)
                text.append(body[:400] + ("…" if len(body) > 400 else "") + "\n")
                if may_hold_images(record.raw, record.data):
                    pictures, raw = self._pictures(record.data, Path(path).parent, graphics)
                    first_image = first_image or raw
                    for picture in pictures:
                        text.append_text(picture)
            else:
                text.append(f"{record.error}\n", style="red")
        target.update(text)
        self._show_picture(first_image if graphics else None)

    def _pictures(
        self, data: object, base_dir: Path, graphics: bool
    ) -> tuple[list[Text], bytes | None]:
        """The example's images with size, format and tokens, drawn in block characters
        unless the terminal draws them itself; and the first image's bytes."""
        from ftwizard.datasets.image_preview import first_image_bytes, preview_images

        task = self.session.task
        pictures = preview_images(
            data,
            base_dir=base_dir,
            backend=task.backend.value if task.backend else "local",
            model=task.base_model or "",
            pictures=not graphics,
            max_pixels=self.session.dataset.choice.max_pixels,
        )
        return pictures, first_image_bytes(data, base_dir) if graphics else None

    def _show_picture(self, data: bytes | None) -> None:
        """The page's first image in the terminal's own graphics, or nothing."""
        from ftwizard.widgets.terminal_image import picture_widget

        box = self.query_one("#preview-image", Vertical)
        box.remove_children()
        widget = picture_widget(data) if data is not None else None
        if widget is not None:
            box.mount(widget)


def _bytes_label(value: object) -> str:
    """How image bytes (a Hugging Face Image column) read in the JSON line."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value):,} bytes>"
    return repr(value)
