"""The training screen's grader scores by checkpoint: a button that scores every checkpoint
with the session's grader on the evaluate step's rows, a table and a chart of score by step.

A panel of its own, so the training screen only composes it: it reads the session from its
screen, asks before a paid run (a replay needs ``--allow-spend``), scores in a thread worker
and saves after each checkpoint, so leaving half-way resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Static
from textual_plotext import PlotextPlot

from ftwizard.errors import FtwizardError, InputError
from ftwizard.session import CheckpointEval, Session


class CheckpointScoresPanel(Vertical):
    """Score every checkpoint with the grader; show the scores as a table and a chart."""

    DEFAULT_CSS = """
    CheckpointScoresPanel { height: auto; }
    CheckpointScoresPanel #checkpoint-scores-row { height: 12; }
    CheckpointScoresPanel #checkpoint-scores { width: 1fr; height: auto; max-height: 12; }
    CheckpointScoresPanel #checkpoint-score-chart { width: 1fr; }
    CheckpointScoresPanel #checkpoint-rows { width: 16; }
    CheckpointScoresPanel #checkpoint-score-status { width: 1fr; height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Label("Grader score by checkpoint (the evaluate step's rows)", classes="field-label")
        with Horizontal(classes="row"):
            yield Button("Score checkpoints", id="score-checkpoints")
            yield Input(placeholder="rows (all)", id="checkpoint-rows")
            yield Static("", id="checkpoint-score-status")
        with Horizontal(id="checkpoint-scores-row"):
            yield DataTable(id="checkpoint-scores", cursor_type="row")
            yield PlotextPlot(id="checkpoint-score-chart")

    def on_mount(self) -> None:
        table = self.query_one("#checkpoint-scores", DataTable)
        for key, label, width in (
            ("id", "Checkpoint", 16),
            ("step", "Step", 6),
            ("score", "Score", 7),
            ("ci", "95% CI", 11),
            ("weights", "Weights", 14),
        ):
            table.add_column(label, key=key, width=width)
        self.show()

    @property
    def session(self) -> Session:
        return self.screen.session  # type: ignore[attr-defined, no-any-return]

    @property
    def wizard(self) -> Any:
        return self.screen.wizard  # type: ignore[attr-defined]

    # Showing --------------------------------------------------------------------------------

    def show(self) -> None:
        """Redraw the table, the chart and the button from the session."""
        from ftwizard.training.choice import best_choice, chosen_row

        section = self.session.training
        self.display = bool(section.checkpoints) and section.status == "succeeded"
        self.query_one("#score-checkpoints", Button).disabled = self.busy
        table = self.query_one("#checkpoint-scores", DataTable)
        table.clear()
        scores = section.checkpoint_eval.scores if section.checkpoint_eval else []
        best = best_choice(self.session)
        chosen = chosen_row(self.session)
        xs: list[int] = []
        ys: list[float] = []
        for s in scores:
            marks = ""
            if best is not None and best.checkpoint.id == s.id:
                marks = " *"
            if chosen is not None and chosen[0] == s.id:
                marks += " <"
            weights = s.identity.sha256[:12] if s.identity and s.identity.sha256 else "hosted"
            table.add_row(
                s.id + marks,
                "-" if s.step is None else s.step,
                "-" if s.score is None else f"{s.score:.3f}",
                f"{s.ci95[0]:.2f}-{s.ci95[1]:.2f}" if s.ci95 else "-",
                weights if s.score is not None else (s.error or "-")[:14],
                key=s.id,
            )
            if s.score is not None and s.step is not None:
                xs.append(s.step)
                ys.append(s.score)
        plot = self.query_one("#checkpoint-score-chart", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("Grader score")
        plt.xlabel("step")
        if xs:
            plt.plot(xs, ys, label="score", marker="braille")
            plt.ylim(0, max(1.0, max(ys)))
        plot.refresh()
        if not self.busy:
            status = self.query_one("#checkpoint-score-status", Static)
            if scores:
                text = Text(f"{sum(1 for s in scores if s.score is not None)} scored")
                if best is not None:
                    text.append(f"; best {best.checkpoint.id} by {best.by}", style="bold")
                status.update(text)
            else:
                status.update("Score each checkpoint with the grader to choose by evidence.")

    # Scoring --------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "score-checkpoints":
            return
        event.stop()
        self.wizard.journal({"press": "score-checkpoints"}, screen=self.screen.screen_name)  # type: ignore[attr-defined]
        self.start()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "checkpoint-rows":
            event.stop()
            self.wizard.journal(
                {"set": {"checkpoint-rows": event.value}},
                screen=self.screen.screen_name,  # type: ignore[attr-defined]
            )

    def _rows(self) -> int | None:
        text = self.query_one("#checkpoint-rows", Input).value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise InputError("rows must be a whole number", field="checkpoint-rows") from None

    def start(self) -> None:
        """Plan the run, ask before a paid one, then score in a worker."""
        from ftwizard.evaluate.checkpoints import plan_scoring
        from ftwizard.screens.dialogs import ConfirmScreen

        if self.busy:
            return
        self._job_started()
        try:
            plan = plan_scoring(self.session, rows=self._rows())
        except FtwizardError as exc:
            self._status(str(exc), error=True)
            self._job_ended("failed")
            return
        estimate = plan.estimate
        if not estimate.paid:
            self._run(plan)
            return
        if not self.wizard.allow_spend:
            self._status(
                f"Scoring calls paid models ({', '.join(estimate.paid)}); a replay runs it "
                "only with --allow-spend.",
                error=True,
            )
            self._job_ended("failed")
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._run(plan)
            else:
                self._job_ended("declined")

        self.app.push_screen(
            ConfirmScreen(
                f"Scoring {len(plan.todo)} checkpoints on {len(plan.items)} held-out rows makes "
                f"about {estimate.calls} calls to {', '.join(estimate.paid)} and costs "
                f"{estimate.describe()}. Run it?",
                yes_label="Score them",
            ),
            confirmed,
        )

    # The journal's outcome of a scoring run, so an exported replay waits on what happened.
    def _job_started(self) -> None:
        started = getattr(self.screen, "job_started", None)
        if started is not None:
            started("checkpoints")

    def _job_ended(self, result: str) -> None:
        ended = getattr(self.screen, "job_ended", None)
        if ended is not None:
            ended("checkpoints", result)

    def _status(self, message: str, *, error: bool = False) -> None:
        style = "red" if error else ""
        self.query_one("#checkpoint-score-status", Static).update(Text(message, style=style))

    def _run(self, plan: Any) -> None:
        self.busy = True
        self._status(f"Scoring {len(plan.todo)} checkpoints on {len(plan.items)} rows...")
        self.show()
        self._score(plan, self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="checkpoint-scores", exit_on_error=False)
    def _score(self, plan: Any, snapshot: Session) -> None:
        from ftwizard.evaluate.checkpoints import score_checkpoints

        store = self.wizard.store

        def save(session: Session) -> None:
            section = session.training.checkpoint_eval
            if section is not None:
                self._call(self._apply, section.model_copy(deep=True))

        def progress(score: Any, index: int, total: int) -> None:
            figure = "-" if score.score is None else f"{score.score:.3f}"
            self._call(self._status, f"{index}/{total}: {score.id} {figure}")

        try:
            asyncio.run(score_checkpoints(snapshot, store, plan, on_progress=progress, save=save))
        except FtwizardError as exc:
            self._call(self._done, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self._call(self._done, f"{type(exc).__name__}: {exc}")
            return
        self._call(self._done, None)

    def _call(self, callback: Any, *args: Any) -> None:
        # RuntimeError: the app is shutting down; the session file holds what was saved.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback, *args)

    def _apply(self, section: CheckpointEval) -> None:
        self.session.training.checkpoint_eval = section
        self.wizard.save_session()
        self.show()

    def _done(self, error: str | None) -> None:
        from ftwizard.credentials import redact

        self.busy = False
        self._job_ended("failed" if error else "done")
        if error:
            self._status(redact(error), error=True)
        self.show()
        refresh = getattr(self.screen, "refresh_frame", None)
        if refresh is not None:
            refresh()
        show_summary = getattr(self.screen, "_show_summary", None)
        if show_summary is not None:
            show_summary()


def scoring_finished(screen: Any) -> bool:
    """The replay condition ``checkpoints-scored``: a scoring run ended with scores."""
    panels = screen.query(CheckpointScoresPanel)
    return (
        bool(panels)
        and not panels.first().busy
        and (screen.session.training.checkpoint_eval is not None)
    )


__all__ = ["CheckpointScoresPanel", "scoring_finished"]
