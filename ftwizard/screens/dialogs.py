"""Modal dialogs: confirmation, per-screen help and a table row in full."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Markdown, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks a yes/no question; dismisses with True only on an explicit yes."""

    screen_name = "confirm"
    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss(False)", "Cancel")]

    def __init__(self, question: str, *, yes_label: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes_label = yes_label

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="confirm-no")
                yield Button(self.yes_label, id="confirm-yes", variant="error")

    def on_mount(self) -> None:
        # Focus the safe choice, so a stray Enter never deletes anything.
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        # The answer is a decision like any other: an exported replay must give it too.
        journal = getattr(self.app, "journal", None)
        if journal is not None and event.button.id:
            journal({"press": event.button.id}, screen=self.screen_name)
        self.dismiss(event.button.id == "confirm-yes")


class HelpScreen(ModalScreen[None]):
    """Shows the help text of the screen it was opened from."""

    screen_name = "help"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("f1", "dismiss", "Close", show=False),
    ]

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            with VerticalScroll():
                yield Markdown(self.markdown, id="help-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="help-close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss()


class RowDetailsScreen(ModalScreen[None]):
    """Shows every value of a table row in full, wrapped: a cut cell is read here."""

    screen_name = "row-details"
    BINDINGS: ClassVar[list[Binding]] = [Binding("escape", "dismiss", "Close")]

    def __init__(self, title: str, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields

    def compose(self) -> ComposeResult:
        text = Text()
        for index, (name, value) in enumerate(self.fields):
            if index:
                text.append("\n")
            text.append(f"{name}: ", style="bold")
            text.append(value)
        with Vertical(id="dialog", classes="row-details") as dialog:
            dialog.border_title = self.title_text
            dialog.border_subtitle = "esc: close"
            with VerticalScroll():
                yield Static(text, id="row-details-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", id="row-close", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss()
