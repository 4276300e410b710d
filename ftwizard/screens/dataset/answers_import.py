"""The Distill tab's import of a teacher's existing answers (CSV files), paying nothing again."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from ftwizard.distill.imported import ImportResult
from ftwizard.distill.session_import import ImportPlan
from ftwizard.errors import FtwizardError
from ftwizard.screens.dataset.choices import set_choice, set_distill
from ftwizard.screens.step import StepScreen

IMPORT_INPUTS: tuple[str, ...] = ("import-files", "import-keys", "import-answer-column")
IMPORT_JOB = "answers-import"


class AnswersImportTab(StepScreen):
    """The import's part of :class:`DatasetScreen` (a mixin of it)."""

    # Set by :class:`DatasetScreen`'s constructor.
    busy: bool
    distilling: bool
    importing: bool

    if TYPE_CHECKING:

        def check(self) -> None: ...

    def compose_import(self) -> ComposeResult:
        """CSV files, key columns, the answer column; Import, its status and its summary."""
        yield Label(
            "Or import answers a teacher already gave (CSV files; nothing is paid again)",
            classes="field-label",
        )
        yield Input(placeholder="answers CSV files, separated by commas", id="import-files")
        with Horizontal(classes="row"):
            yield Input(
                placeholder="key columns: id, or site, lat~1e-5, col=csv_col", id="import-keys"
            )
            yield Input(placeholder="answer column (answer)", id="import-answer-column")
        with Horizontal(classes="row"):
            yield Button("Import answers", id="import-answers")
            yield Static("", id="import-status")
        yield Static("", id="import-summary")

    def _mount_import(self) -> None:
        """Show the saved import settings and the last import's summary."""
        choice = self.session.dataset.answers_import
        self.query_one("#import-files", Input).value = ", ".join(choice.files)
        self.query_one("#import-keys", Input).value = ", ".join(choice.keys)
        column = choice.answer_column
        self.query_one("#import-answer-column", Input).value = "" if column == "answer" else column
        self._show_import_summary()

    def _import_input_changed(self, widget_id: str, value: str) -> None:
        from ftwizard.distill.session_import import set_import, split_list

        if widget_id == "import-files":
            files = split_list(value)
            self.decide(widget_id, value, lambda s: set_import(s, files=files))
        elif widget_id == "import-keys":
            keys = split_list(value)
            self.decide(widget_id, value, lambda s: set_import(s, keys=keys))
        else:
            column = value or "answer"
            self.decide(widget_id, value, lambda s: set_import(s, answer_column=column))

    def _ask_and_import(self) -> None:
        """Check the choices and start the import in the background."""
        from ftwizard.distill.session_import import plan_import

        if self.importing:
            return
        if self.busy or self.distilling:
            self.notify("Wait for the check or the distillation to finish.", severity="warning")
            return
        self.job_started(IMPORT_JOB)
        status = self.query_one("#import-status", Static)
        try:
            plan = plan_import(self.session, self.wizard.store)
        except FtwizardError as exc:
            status.update(Text(str(exc), style="red"))
            self.notify(str(exc), title="Cannot import the answers", severity="error")
            self.job_ended(IMPORT_JOB, "failed")
            return
        # As for a distill run: the import makes its output the training file, so "the
        # training file" must be recorded as the rows now, or the next import reads its own.
        if not self.session.dataset.distill.prompts_path:
            data = plan.data
            self.decide("distill-prompts", data, lambda s: set_distill(s, prompts_path=data))
            self.query_one("#distill-prompts", Input).value = data
        self.importing = True
        self.query_one("#import-answers", Button).disabled = True
        status.update("Importing...")
        self.refresh_frame()
        self._run_import(plan)

    @work(thread=True, exclusive=True, group="answers-import", exit_on_error=False)
    def _run_import(self, plan: ImportPlan) -> None:
        from ftwizard.distill.session_import import run_import

        try:
            result = asyncio.run(run_import(plan))
        except FtwizardError as exc:
            self.app.call_from_thread(self._import_failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._import_failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._import_finished, result)

    def _import_ended(self) -> None:
        self.importing = False
        self.query_one("#import-answers", Button).disabled = False

    def _import_failed(self, message: str) -> None:
        if not self.is_attached:
            return
        self._import_ended()
        self.query_one("#import-status", Static).update(Text(message, style="red"))
        self.notify(message, title="Import failed", severity="error")
        self.job_ended(IMPORT_JOB, "failed")
        self.refresh_frame()

    def _import_finished(self, result: ImportResult) -> None:
        """Record the import; its file becomes the training file, which is checked at once."""
        from ftwizard.distill.session_import import record_import

        record_import(self.session, result)
        self.wizard.save_session()
        if not self.is_attached:
            return
        self._import_ended()
        self._show_import_summary()
        self.job_ended(IMPORT_JOB, "done")
        status = self.query_one("#import-status", Static)
        if result.kept == 0:
            status.update(
                Text("No answer was kept: the training file stays as it was.", style="yellow")
            )
            self.refresh_frame()
            return
        output = result.output
        status.update(f"Done: {result.kept} rows written; training on them now (checking).")
        self.decide("train-path", output, lambda s: set_choice(s, train_path=output))
        self.query_one("#train-path", Input).value = output
        # Even with an unchanged path the file was rewritten, so the last check is stale.
        self.check()

    def _show_import_summary(self) -> None:
        from ftwizard.distill.session_import import import_summary_text

        summary = self.session.dataset.imported
        target = self.query_one("#import-summary", Static)
        if summary is None:
            target.update("No answers imported yet.")
            return
        target.update(import_summary_text(summary))
