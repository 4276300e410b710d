"""The training step: confirm the plan, start (or re-attach to) the job, watch it, choose.

Before the job: backend, base model, data counts, editable hyperparameters, the cost and time
estimate and the dry-run verdict; nothing remote happens before the user confirms, and a replay
never starts a paid job without ``--allow-spend``. During the job: status, elapsed and ETA,
loss (and for RFT reward) charts, a table per logged step, the event log, the checkpoints,
Pause / Resume / Cancel with confirmation. After it: a summary and the reminder to compare
checkpoints. Polling runs in a thread worker on a timer, so the screen stays responsive; a
session whose job runs re-attaches when the screen opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Log, ProgressBar, Static
from textual_plotext import PlotextPlot

from ftwizard.providers.training import JobStatus, TrainingProvider
from ftwizard.screens.step import job_conditions
from ftwizard.screens.training.charts import STEP_COLUMNS, ChartsPart
from ftwizard.screens.training.checkpoint_scores import CheckpointScoresPanel, scoring_finished
from ftwizard.screens.training.checkpoints import CheckpointsPart
from ftwizard.screens.training.confirm import ConfirmPart
from ftwizard.screens.training.controls import ControlsPart
from ftwizard.session import Backend, Method, StepId
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from ftwizard.training import results as training_results

HELP = """\
# Training

**Before the job** the screen shows what will run: the backend and base model, how many
examples, the settings (edit any of them: `auto` lets OpenAI or Vertex choose), the estimated
cost and time, and the dry run's verdict. Training needs a dry run that lets it go on; to train
without one, record your reason. **Start** asks once more before anything that costs money.

**While it runs** the charts show the training and validation loss (and reward for RFT), the
table lists every logged step, and the log shows the provider's events. You can quit at any
time: the job keeps running and the wizard re-attaches to it when you resume the session.
Pause (OpenAI) and Cancel ask for confirmation.

**When it ends**, compare the checkpoints: the last one is not always the best, and an early
checkpoint's score is not the final model's. Select a checkpoint to deploy it instead of the
final model, or press *Choose best*. **Score checkpoints** answers the evaluate step's
held-out rows with every checkpoint and grades them with your grader (it asks first when that
costs); *Choose best* then goes by that score (ties to the earlier step) instead of the
validation loss, and the summary says when the curve suggests more epochs or an earlier
checkpoint.
"""


class TrainingScreen(ConfirmPart, ChartsPart, CheckpointsPart, ControlsPart):
    """Confirmation, then live monitoring, then the summary."""

    STEP: ClassVar[StepId] = StepId.training
    HELP: ClassVar[str] = HELP
    # Seconds between polls of a running job (the provider's own rate limits are far above).
    POLL_S: ClassVar[float] = 3.0
    # Today's date for OpenAI's cutoff check (None: the real date); tests inject it.
    TODAY: ClassVar[Callable[[], date] | None] = None
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "training-started": lambda screen: training_follow.job_id_of(screen.session) is not None,
        "training-finished": lambda screen: (
            screen.session.training.status in ("succeeded", "failed", "cancelled")
        ),
        **job_conditions("training"),
        "checkpoints-scored": scoring_finished,
        **job_conditions("checkpoints"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self._timer: Timer | None = None
        self._shown_events = 0
        self._polling = False
        # The intent's key was looked up and no job carries it: the app died before the
        # create, so starting again creates the one job (with the same key).
        self._job_missing = False
        # What the charts show, by chart and line: (steps, values).
        self.chart_series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}

    # Layout ---------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        session = self.session
        backend = session.task.backend
        method = session.task.method
        fields = training_plan.EDITABLE[backend][method] if backend and method else ()
        with Vertical(id="training-setup"):
            yield Static("", id="training-plan")
            yield Label("Settings", classes="field-label")
            with Horizontal(id="training-hyperparameters"):
                for name in fields:
                    with Vertical(classes="hp-field"):
                        yield Label(name.replace("_", " "), classes="hp-label")
                        yield Input(id=f"hp-{name}", classes="hp-input")
            yield Static("", id="hp-error")
            yield Static("", id="training-estimate")
            yield Static("", id="provider-quote")
            with Horizontal(classes="row", id="dryrun-override-row"):
                yield Input(
                    placeholder="reason to train without a passed dry run", id="dryrun-override"
                )
                yield Button("Record reason", id="record-override")
            with Horizontal(classes="row"):
                yield Button("Start training", id="start-training", variant="primary")
                yield Static("", id="start-hint")
        with Vertical(id="training-live"):
            yield Static("", id="training-status")
            yield ProgressBar(id="training-progress", show_eta=False)
            with Horizontal(classes="row"):
                yield Button("Pause", id="pause-training")
                yield Button("Resume", id="resume-training")
                yield Button("Cancel job", id="cancel-training", variant="error")
                yield Button("Refresh", id="refresh-training")
                yield Button("New attempt", id="new-attempt")
            with Horizontal(id="training-charts"):
                yield PlotextPlot(id="loss-chart")
                yield PlotextPlot(id="reward-chart")
            yield CheckpointScoresPanel(id="checkpoint-scores-panel")
            yield DataTable(id="training-steps", cursor_type="row", zebra_stripes=True)
            yield Label("Checkpoints (select one to deploy it)", classes="field-label")
            yield DataTable(id="training-checkpoints", cursor_type="row")
            with Horizontal(classes="row"):
                yield Button("Deploy this checkpoint", id="choose-checkpoint")
                yield Button("Choose best", id="choose-best")
                yield Static("", id="chosen-model")
            yield Static(Text(training_plan.LESSON, style="bold yellow"), id="training-lesson")
            yield Static("", id="training-summary")
            yield Label("Events", classes="field-label")
            yield Log(id="training-events", max_lines=1000)

    def on_mount(self) -> None:
        steps = self.query_one("#training-steps", DataTable)
        # Fixed widths, as in every table: see welcome.py.
        for key, label in STEP_COLUMNS:
            steps.add_column(label, key=key, width=max(8, len(label)))
        checkpoints = self.query_one("#training-checkpoints", DataTable)
        for key, label, width in (
            ("id", "Checkpoint", 60),
            ("step", "Step", 6),
            ("metric", "Validation", 24),
            ("mark", "", 6),
        ):
            checkpoints.add_column(label, key=key, width=width)
        values = training_plan.current_hyperparameters(self.session)
        for widget in self.query(".hp-input").results(Input):
            name = (widget.id or "").removeprefix("hp-")
            value = values.get(name)
            widget.value = "" if value is None else str(value)
        self.query_one("#reward-chart").display = self.session.task.method is Method.rft
        self._show_plan()
        self._show_job()
        super().on_mount()
        if self.session.training.intent is not None and not self._finished():
            # Opened on a session whose job was started earlier (maybe by another process):
            # re-attach and keep following it.
            self._start_polling()
            self.poll_now()

    def step_problem(self) -> str | None:
        if self.session.training.intent is None:
            blocker = training_plan.training_blocker(self.session, self.wizard.store)
            return blocker or "Confirm the plan and start training."
        return training_results.training_problem(self.session)

    def _finished(self) -> bool:
        return self.session.training.status in ("succeeded", "failed", "cancelled")

    # The plan -------------------------------------------------------------------------------

    def refresh_frame(self) -> None:
        super().refresh_frame()
        section = self.session.training
        started = section.intent is not None and not self._job_missing
        self.query_one("#training-setup").display = not started
        self.query_one("#training-live").display = started
        blocker = training_plan.training_blocker(self.session, self.wizard.store)
        start = self.query_one("#start-training", Button)
        start.disabled = self.busy or started or blocker is not None
        paid = self.session.task.backend is not Backend.local
        start.label = "Confirm and start (paid)" if paid else "Start training"
        hint = blocker or ("asks once more before creating a paid job" if paid else "")
        if self._job_missing:
            hint = "The job was never created (the wizard stopped before it): start it now."
        self.query_one("#start-hint", Static).update(hint)
        for widget in self.query(".hp-input").results(Input):
            widget.disabled = section.intent is not None
        provider_can_pause = self.session.task.backend is Backend.openai
        running = section.status in ("queued", "running")
        # A finished job has nothing to pause, resume or cancel: its controls go.
        finished = self._finished()
        self.query_one("#pause-training", Button).display = provider_can_pause and not finished
        self.query_one("#resume-training", Button).display = provider_can_pause and not finished
        self.query_one("#cancel-training", Button).display = not finished
        self.query_one("#pause-training", Button).disabled = (
            self.busy or section.status != "running"
        )
        self.query_one("#resume-training", Button).disabled = (
            self.busy or section.status != "paused"
        )
        self.query_one("#cancel-training", Button).disabled = self.busy or not (
            running or section.status == "paused"
        )
        self.query_one("#new-attempt", Button).display = self._finished() and (
            section.status != "succeeded"
        )
        self.query_one("#choose-best", Button).disabled = not section.checkpoints
        self.query_one("#choose-checkpoint", Button).disabled = not section.checkpoints

    # Editing --------------------------------------------------------------------------------

    # Buttons --------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        handlers: dict[str, Callable[[], None]] = {
            "start-training": self._ask_start,
            "record-override": self._record_override,
            "pause-training": lambda: self._ask_control("pause"),
            "resume-training": lambda: self._ask_control("resume"),
            "cancel-training": lambda: self._ask_control("cancel"),
            "refresh-training": self.poll_now,
            "new-attempt": self._new_attempt,
            "choose-best": self._choose_best,
            "choose-checkpoint": self._choose_highlighted,
        }
        handler = handlers.get(event.button.id or "")
        if handler is None:
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this
            return
        event.stop()
        self.wizard.journal({"press": event.button.id}, screen=self.screen_name)
        handler()

    def _provider(self) -> TrainingProvider:
        def notice(text: str) -> None:
            self.app.call_from_thread(self.notify, text, severity="warning")

        return training_jobs.training_provider(
            self.session, self.wizard.store, on_notice=notice, today=type(self).TODAY
        )

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        # RuntimeError: the app is shutting down; the session file already holds the intent.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback, *args)

    # Following the job ----------------------------------------------------------------------

    def _show_job(self, status: JobStatus | None = None) -> None:
        section = self.session.training
        if section.intent is None:
            return
        points = training_results.metric_points(self.session)
        self._show_status(points, status)
        self._show_charts(points)
        self._show_steps(points)
        self._show_checkpoints()
        self.query_one(CheckpointScoresPanel).show()
        self._show_events()
        self._show_summary()

    def _show_events(self) -> None:
        events = self.session.training.events
        log = self.query_one("#training-events", Log)
        if self._shown_events > len(events):
            log.clear()
            self._shown_events = 0
        for event in events[self._shown_events :]:
            log.write_line(f"[{event.get('level', 'info')}] {event.get('message', '')}")
        self._shown_events = len(events)

    # Checkpoints ----------------------------------------------------------------------------

    # Pause / resume / cancel ----------------------------------------------------------------
