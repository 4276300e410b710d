"""The welcome screen: start a new session, import an OpenAI fine-tune, resume one, or delete
one."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Select, Static

from ftwizard.errors import FtwizardError
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.session import SessionSummary

if TYPE_CHECKING:
    from ftwizard.screens.host import WizardHost

HELP = """\
# Welcome

ftwizard walks you through fine-tuning: task, dataset, grader, dry run, training, deploy and
a blind A/B evaluation. Everything you decide is saved as you go, so you can quit at any point
and resume later from the same step.

- **New session**: type a name (optional) and press *New session* (or Enter).
- **Resume**: pick a session in the table and press *Resume* (or Enter on the row).
- **Delete**: pick a session and press *Delete*; you are asked to confirm.
- **Import an OpenAI fine-tune**: type the job id (`ftjob-...`), choose where to train it
  now and press *Import*. OpenAI accepts no new fine-tuning jobs from 2027-01-06 and its
  tunable bases (and their fine-tunes) shut down on 2027-01-14. The import downloads the job's
  files, converts its grader and keeps the old fine-tune as the model the A/B compares with.

Sessions are stored under `$FTWIZARD_HOME` (or your user state directory). No API key is ever
written to disk.
"""


# Where an imported OpenAI fine-tune can train now; Fireworks first, the one with hosted RFT.
IMPORT_BACKENDS = ("fireworks", "together", "vertex", "local")


def _age(summary: SessionSummary) -> str:
    return summary.updated.astimezone().strftime("%Y-%m-%d %H:%M")


class WelcomeScreen(Screen[None]):
    """New / resume / delete sessions."""

    screen_name = "welcome"
    HELP: ClassVar[str] = HELP
    BINDINGS: ClassVar[list[Binding]] = [Binding("delete", "delete_session", "Delete")]

    def __init__(self) -> None:
        super().__init__()
        self.sessions_loaded = False

    @property
    def wizard(self) -> WizardHost:
        """The running ftwizard app."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="welcome"):
            yield Static(
                "Fine-tune a language model, step by step: data, grader, dry run, training, "
                "deploy, and a blind A/B evaluation.",
                id="welcome-intro",
            )
            yield Label("New session", classes="field-label")
            with Horizontal(classes="row"):
                yield Input(placeholder="session name (optional)", id="session-name")
                yield Button("New session", id="new-session", variant="primary")
            yield Label("Import an OpenAI fine-tune", classes="field-label")
            with Horizontal(classes="row"):
                yield Input(placeholder="OpenAI job id (ftjob-...)", id="import-job-id")
                yield Select(
                    [(b.capitalize(), b) for b in IMPORT_BACKENDS],
                    value=IMPORT_BACKENDS[0],
                    allow_blank=False,
                    id="import-backend",
                )
                yield Button("Import", id="import-openai")
            yield Label("Saved sessions", classes="field-label")
            yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
            yield Static("", id="sessions-note")
            with Horizontal(classes="row"):
                yield Button("Resume", id="resume-session")
                yield Button("Delete", id="delete-session", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        # Fixed widths: columns sized from content resize as rows arrive, and a table drawn
        # mid-update keeps a stale header (a Textual DataTable quirk).
        # Narrow terminals give the name less room, so the date still fits.
        table.add_column("Name", key="name", width=36 if self.app.size.width >= 100 else 24)
        table.add_column("Step", key="step", width=9)
        table.add_column("Method", key="method", width=7)
        table.add_column("Backend", key="backend", width=8)
        table.add_column("Updated", key="updated", width=16)
        # Inline, beside the widgets they size: the job id takes the room the backend leaves.
        self.query_one("#import-job-id", Input).styles.width = "1fr"
        self.query_one("#import-backend", Select).styles.width = 20
        self.query_one("#session-name", Input).focus()

    def on_screen_resume(self) -> None:
        self.load_sessions()

    @work(thread=True, exclusive=True, group="sessions")
    def load_sessions(self) -> None:
        """Read the session list off the main thread (there may be many sessions)."""
        summaries, problems = self.wizard.store.list()
        self.app.call_from_thread(self._show_sessions, summaries, [str(p) for p in problems])

    def _show_sessions(self, summaries: list[SessionSummary], problems: list[str]) -> None:
        tables = self.query("#sessions")
        if not tables:
            # A session was opened before this screen was ever shown; it reloads on resume.
            return
        table = tables.first(DataTable)
        table.clear()
        for summary in summaries:
            table.add_row(
                summary.name,
                summary.step,
                summary.method or "-",
                summary.backend or "-",
                _age(summary),
                key=summary.id,
            )
        note = "" if summaries else "No saved sessions yet."
        if problems:
            note += f"\n{len(problems)} session file(s) could not be read: " + "; ".join(problems)
        self.query_one("#sessions-note", Static).update(note.strip())
        has_rows = bool(summaries)
        self.query_one("#resume-session", Button).disabled = not has_rows
        self.query_one("#delete-session", Button).disabled = not has_rows
        self.sessions_loaded = True

    def _selected_id(self) -> str | None:
        table = self.query_one("#sessions", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "session-name":
            event.stop()
            self.new_session()
        elif event.input.id == "import-job-id":
            event.stop()
            self.import_openai_job()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.wizard.open_session(event.row_key.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "new-session":
            self.new_session()
        elif event.button.id == "resume-session":
            session_id = self._selected_id()
            if session_id:
                self.wizard.open_session(session_id)
        elif event.button.id == "delete-session":
            self.action_delete_session()
        elif event.button.id == "import-openai":
            self.import_openai_job()

    def import_openai_job(self) -> None:
        """Import the typed OpenAI job into a new session on the chosen backend."""
        job_id = self.query_one("#import-job-id", Input).value.strip()
        if not job_id:
            self.notify("Type the OpenAI job id (ftjob-...) first.", severity="warning")
            return
        backend = str(self.query_one("#import-backend", Select).value)
        self.query_one("#import-openai", Button).disabled = True
        self.notify(f"Importing {job_id} from OpenAI...")
        self._import(job_id, backend)

    @work(thread=True, exclusive=True, group="import")
    def _import(self, job_id: str, backend: str) -> None:
        import asyncio

        from ftwizard.migrate.openai_import import import_openai_job
        from ftwizard.session import Backend

        try:
            result = asyncio.run(
                import_openai_job(self.wizard.store, job_id, backend=Backend(backend))
            )
        except FtwizardError as exc:
            self.app.call_from_thread(self._import_failed, str(exc))
            return
        self.app.call_from_thread(self._imported, result.session, result.compare_model)

    def _import_failed(self, message: str) -> None:
        self.query_one("#import-openai", Button).disabled = False
        self.notify(message, title="Not imported", severity="error")

    def _imported(self, session_id: str, compare_model: str | None) -> None:
        self.query_one("#import-openai", Button).disabled = False
        self.query_one("#import-job-id", Input).value = ""
        compared = f"; the A/B compares with {compare_model}" if compare_model else ""
        self.notify(f"Imported as session {session_id}{compared}.")
        self.wizard.open_session(session_id)

    def new_session(self) -> None:
        """Create a session with the typed name and open it at its first step."""
        name = self.query_one("#session-name", Input).value
        self.query_one("#session-name", Input).value = ""
        self.wizard.create_session(name)

    def action_delete_session(self) -> None:
        """Ask, then delete the highlighted session."""
        session_id = self._selected_id()
        if session_id is None:
            return
        table = self.query_one("#sessions", DataTable)
        name = table.get_cell(session_id, "name")

        def delete(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                self.wizard.store.delete(session_id)
            except FtwizardError as exc:
                self.notify(str(exc), title="Not deleted", severity="error")
                return
            self.notify(f"Deleted session '{name}'.")
            self.load_sessions()

        self.app.push_screen(
            ConfirmScreen(
                f"Delete session '{name}' ({session_id}) and all its files? This cannot be undone.",
                yes_label="Delete",
            ),
            delete,
        )
