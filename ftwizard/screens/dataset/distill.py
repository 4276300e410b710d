"""The dataset screen's Distill tab: a teacher relabels the prompts, a grader filters."""

from __future__ import annotations

import asyncio
import math
import threading
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from ftwizard.distill.generation import DistillProgress
from ftwizard.distill.options import DistillEstimate, DistillResult
from ftwizard.distill.session import DistillPlan
from ftwizard.errors import FtwizardError
from ftwizard.screens.dataset.choices import set_choice, set_distill
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import Session

DISTILL_INPUTS: dict[str, str] = {
    "distill-prompts": "prompts_path",
    "distill-teacher": "teacher",
    "distill-base-url": "base_url",
    "distill-grader-path": "grader_path",
    "distill-threshold": "threshold",
}


class DistillTab(StepScreen):
    """The Distill tab's part of :class:`DatasetScreen` (a mixin of it)."""

    # Set by :class:`DatasetScreen`'s constructor; ``busy`` is its check running.
    busy: bool
    distilling: bool
    _distill_stop: threading.Event

    if TYPE_CHECKING:

        def check(self) -> None: ...

    def compose_distill(self) -> ComposeResult:
        """Prompts, teacher, grader and threshold; the estimate, Run and Stop, the results."""
        yield Label("Prompts to relabel (empty: the training file)", classes="field-label")
        yield Input(placeholder="dataset or production trace log (JSONL)", id="distill-prompts")
        yield Label("Teacher", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(
                placeholder="anthropic:NAME, or openai:NAME (with a base URL for a compatible "
                "server)",
                id="distill-teacher",
            )
            yield Input(placeholder="teacher base URL (optional)", id="distill-base-url")
        yield Label(
            "Grader: keeps the answers scoring at least the threshold", classes="field-label"
        )
        with Horizontal(classes="row"):
            yield Select[str]([], id="distill-grader", prompt="pick a grader")
            yield Input(placeholder="or a grader file's path", id="distill-grader-path")
            yield Input(placeholder="threshold", id="distill-threshold", type="number")
        yield Static("", id="distill-estimate")
        with Horizontal(classes="row"):
            yield Button("Run distillation", id="distill-run", variant="primary")
            yield Button("Stop", id="distill-stop")
            yield ProgressBar(id="distill-progress", show_eta=False)
        yield Static("", id="distill-status")
        yield Static("", id="distill-summary")

    def _mount_distill(self) -> None:
        """Show the saved distill settings and the last run's summary."""
        from ftwizard.distill.session import grader_choices

        choice = self.session.dataset.distill
        self.query_one("#distill-prompts", Input).value = choice.prompts_path or ""
        self.query_one("#distill-teacher", Input).value = choice.teacher or ""
        self.query_one("#distill-base-url", Input).value = choice.base_url or ""
        self.query_one("#distill-grader-path", Input).value = choice.grader_path or ""
        self.query_one("#distill-threshold", Input).value = f"{choice.threshold:g}"
        choices = grader_choices(self.session, self.wizard.store)
        select = self.query_one("#distill-grader", Select)
        select.set_options([(name.replace("_", " "), name) for name in choices])
        self._sync_grader_select(choice.grader_path)
        self.query_one("#distill-progress", ProgressBar).display = False
        self.query_one("#distill-stop", Button).display = False
        self._show_distill_summary()
        self._show_distill_estimate()

    def _sync_grader_select(self, path: str | None) -> None:
        """Select the offered grader whose file is ``path``, or none."""
        from ftwizard.distill.session import grader_choices

        select = self.query_one("#distill-grader", Select)
        offered = grader_choices(self.session, self.wizard.store)
        name = next((n for n, p in offered.items() if path and str(p) == path), None)
        if name is not None and select.value != name:
            select.value = name
        elif name is None and not select.is_blank():
            select.clear()

    def _distill_input_changed(self, widget_id: str, value: str) -> None:
        field = DISTILL_INPUTS[widget_id]
        new: str | float | None = value or None
        if field == "threshold":
            try:
                new = float(value)
            except ValueError:
                return  # half-typed; the saved threshold stands until the text is a number
            if not math.isfinite(new):
                return
        # The journal keeps what was typed, as the other fields do: a replay types it back.
        shown: str | float = new if isinstance(new, float) else value
        self.decide(widget_id, shown, lambda s: set_distill(s, **{field: new}))
        if field == "grader_path":
            self._sync_grader_select(value or None)
        self._show_distill_estimate()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "distill-grader":
            return
        event.stop()
        if not isinstance(event.value, str):
            return
        from ftwizard.distill.session import grader_choices

        path = grader_choices(self.session, self.wizard.store).get(event.value)
        # The list only fills the path field; the field is the one source of the choice.
        field = self.query_one("#distill-grader-path", Input)
        if path is not None and field.value != str(path):
            field.value = str(path)

    def _show_distill_estimate(self) -> None:
        """Price the run in the background (it reads the whole prompts file)."""
        if not self.is_mounted:
            return
        target = self.query_one("#distill-estimate", Static)
        if not self.session.dataset.distill.teacher:
            target.update("Choose a teacher model to see what relabeling would cost.")
            return
        target.update("Estimating...")
        self._estimate_distill(self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="distill-estimate", exit_on_error=False)
    def _estimate_distill(self, snapshot: Session) -> None:
        from textual.worker import get_current_worker

        from ftwizard.distill.session import NO_GRADER, estimate_session, estimate_text

        text = Text()
        try:
            text.append(estimate_text(estimate_session(snapshot, self.wizard.store)))
        except (FtwizardError, OSError, ValueError) as exc:
            # A file that cannot be read yet is a message to show, not a fault of the screen.
            text.append(str(exc), style="red")
        if not snapshot.dataset.distill.grader_path:
            text.append("\n" + NO_GRADER, style="yellow")
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_estimate_text, text)

    def _show_estimate_text(self, text: Text) -> None:
        if self.is_attached:
            self.query_one("#distill-estimate", Static).update(text)

    def _ask_and_distill(self) -> None:
        """Check the plan, price it, and confirm before anything is spent."""
        from ftwizard.distill.session import (
            check_callable,
            estimate,
            needs_spend,
            plan_distill,
            price_text,
        )

        if self.distilling:
            return
        if self.busy:
            self.notify("Wait for the check to finish.", severity="warning")
            return
        self.job_started("distill")
        try:
            plan = plan_distill(self.session, self.wizard.store)
            found = estimate(plan)
            if found.to_request:
                check_callable(plan, judge_base_url=self.session.grader.judge_base_url)
        except FtwizardError as exc:
            self.query_one("#distill-status", Static).update(Text(str(exc), style="red"))
            self.notify(str(exc), title="Cannot distill", severity="error")
            self.job_ended("distill", "failed")
            return
        if not needs_spend(plan, found):
            self._start_distill(plan, found)
            return
        if not self.wizard.allow_spend:
            message = "Distillation calls a paid teacher; a replay runs it only with --allow-spend."
            self.query_one("#distill-status", Static).update(Text(message, style="red"))
            self.notify(message, severity="error")
            self.job_ended("distill", "failed")
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start_distill(plan, found)
            else:
                self.job_ended("distill", "declined")

        self.app.push_screen(
            ConfirmScreen(
                f"Distillation sends {found.to_request} requests to {found.teacher} and costs "
                f"{price_text(found)}; {found.already_paid} answers are already paid for. "
                "Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start_distill(self, plan: DistillPlan, found: DistillEstimate) -> None:
        # The prompts are recorded now: a finished run makes its output the training file, so
        # "the training file" would mean something else on the next run.
        if not self.session.dataset.distill.prompts_path:
            data = plan.data
            self.decide("distill-prompts", data, lambda s: set_distill(s, prompts_path=data))
            self.query_one("#distill-prompts", Input).value = data
        self.distilling = True
        self._distill_stop.clear()
        bar = self.query_one("#distill-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(1, found.requests), progress=found.already_paid)
        self.query_one("#distill-stop", Button).display = True
        self.query_one("#distill-run", Button).disabled = True
        self.query_one("#distill-status", Static).update("Starting...")
        self.refresh_frame()
        self._run_distill(plan, self.session.grader.judge_base_url)

    @work(thread=True, exclusive=True, group="distill", exit_on_error=False)
    def _run_distill(self, plan: DistillPlan, judge_base_url: str | None) -> None:
        from ftwizard.distill.generation import DistillCancelled
        from ftwizard.distill.session import run_plan

        def progress(update: DistillProgress) -> None:
            self.app.call_from_thread(self._distill_progress, update)

        try:
            result = asyncio.run(
                run_plan(
                    plan,
                    judge_base_url=judge_base_url,
                    on_progress=progress,
                    should_stop=self._distill_stop.is_set,
                )
            )
        except DistillCancelled as exc:
            self.app.call_from_thread(self._distill_failed, str(exc), stopped=True)
            return
        except FtwizardError as exc:
            self.app.call_from_thread(self._distill_failed, str(exc), stopped=False)
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(
                self._distill_failed, f"{type(exc).__name__}: {exc}", stopped=False
            )
            return
        self.app.call_from_thread(self._distill_finished, result)

    def _distill_progress(self, update: DistillProgress) -> None:
        if not self.is_attached:
            return
        from ftwizard.distill.session import progress_text

        self.query_one("#distill-progress", ProgressBar).update(
            total=max(1, update.total), progress=update.done
        )
        self.query_one("#distill-status", Static).update(progress_text(update))

    def _distill_ended(self) -> None:
        self.distilling = False
        self.query_one("#distill-progress", ProgressBar).display = False
        self.query_one("#distill-stop", Button).display = False
        self.query_one("#distill-run", Button).disabled = False

    def _distill_failed(self, message: str, *, stopped: bool) -> None:
        if not self.is_attached:
            return
        self._distill_ended()
        if stopped:
            self.query_one("#distill-status", Static).update(
                "Stopped. Every answer received is journaled: run again to pay only for the rest."
            )
        else:
            self.query_one("#distill-status", Static).update(Text(message, style="red"))
            self.notify(message, title="Distillation failed", severity="error")
        self._show_distill_estimate()
        self.job_ended("distill", "stopped" if stopped else "failed")
        self.refresh_frame()

    def _distill_finished(self, result: DistillResult) -> None:
        """Record the run; its file becomes the training file, which is checked at once."""
        from ftwizard.distill.session import record_result

        record_result(self.session, result)
        self.wizard.save_session()
        if not self.is_attached:
            return
        self._distill_ended()
        self._show_distill_summary()
        self._show_distill_estimate()
        self.job_ended("distill", "done")
        if result.kept == 0:
            self.query_one("#distill-status", Static).update(
                Text("No answer was kept: the training file stays as it was.", style="yellow")
            )
            self.refresh_frame()
            return
        output = result.output
        self.query_one("#distill-status", Static).update(
            f"Done: {result.kept} rows written; training on them now (checking)."
        )
        self.decide("train-path", output, lambda s: set_choice(s, train_path=output))
        self.query_one("#train-path", Input).value = output
        # Even with an unchanged path the file was rewritten, so the last check is stale.
        self.check()

    def _show_distill_summary(self) -> None:
        from ftwizard.distill.session import summary_text

        summary = self.session.dataset.distilled
        target = self.query_one("#distill-summary", Static)
        if summary is None:
            target.update("No distillation run yet.")
            return
        text = Text()
        lines = summary_text(summary).splitlines()
        text.append(lines[0] + "\n", style="bold")
        text.append("\n".join(lines[1:]))
        target.update(text)

    def on_unmount(self) -> None:
        # A run outliving its screen would keep paying with nobody watching; the journal keeps
        # what was paid for, so stopping loses nothing.
        self._distill_stop.set()
