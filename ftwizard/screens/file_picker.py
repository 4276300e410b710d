"""A modal file browser for choosing a data file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Static


class FilePickerScreen(ModalScreen[Path | None]):
    """Browse from a folder (the working directory by default) and pick a file."""

    screen_name = "file-picker"
    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, start: Path | None = None) -> None:
        super().__init__()
        self.start = start or Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Static(f"Choose a file under {self.start}", id="picker-title")
            yield DirectoryTree(self.start, id="file-tree")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="pick-cancel")

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(event.path)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)
