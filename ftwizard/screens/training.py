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

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Log, ProgressBar, Static
from textual_plotext import PlotextPlot

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.training import JobStatus, MetricPoint, TrainingProvider
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import Backend, Method, Session, StepId
from ftwizard.training import engine as training

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
final model, or press *Choose best*.
"""

_STEP_COLUMNS = (
    ("step", "Step"),
    ("train_loss", "Train loss"),
    ("valid_loss", "Valid loss"),
    ("train_accuracy", "Train acc"),
    ("valid_accuracy", "Valid acc"),
    ("train_reward", "Train reward"),
    ("valid_reward", "Valid reward"),
)
MAX_TABLE_ROWS = 300


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _valid_loss(point: MetricPoint) -> float | None:
    return point.full_valid_loss if point.full_valid_loss is not None else point.valid_loss


def _valid_reward(point: MetricPoint) -> float | None:
    return point.full_valid_reward if point.full_valid_reward is not None else point.valid_reward


class TrainingScreen(StepScreen):
    """Confirmation, then live monitoring, then the summary."""

    STEP: ClassVar[StepId] = StepId.training
    HELP: ClassVar[str] = HELP
    # Seconds between polls of a running job (the provider's own rate limits are far above).
    POLL_S: ClassVar[float] = 3.0
    # Today's date for OpenAI's cutoff check (None: the real date); tests inject it.
    TODAY: ClassVar[Callable[[], date] | None] = None
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "training-started": lambda screen: training.job_id_of(screen.session) is not None,
        "training-finished": lambda screen: (
            screen.session.training.status in ("succeeded", "failed", "cancelled")
        ),
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
        fields = training.EDITABLE[backend][method] if backend and method else ()
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
            yield DataTable(id="training-steps", cursor_type="row", zebra_stripes=True)
            yield Label("Checkpoints (select one to deploy it)", classes="field-label")
            yield DataTable(id="training-checkpoints", cursor_type="row")
            with Horizontal(classes="row"):
                yield Button("Deploy this checkpoint", id="choose-checkpoint")
                yield Button("Choose best", id="choose-best")
                yield Static("", id="chosen-model")
            yield Static(Text(training.LESSON, style="bold yellow"), id="training-lesson")
            yield Static("", id="training-summary")
            yield Label("Events", classes="field-label")
            yield Log(id="training-events", max_lines=1000)

    def on_mount(self) -> None:
        steps = self.query_one("#training-steps", DataTable)
        # Fixed widths, as in every table: see welcome.py.
        for key, label in _STEP_COLUMNS:
            steps.add_column(label, key=key, width=max(8, len(label)))
        checkpoints = self.query_one("#training-checkpoints", DataTable)
        for key, label, width in (
            ("id", "Checkpoint", 60),
            ("step", "Step", 6),
            ("metric", "Validation", 24),
            ("mark", "", 6),
        ):
            checkpoints.add_column(label, key=key, width=width)
        values = training.current_hyperparameters(self.session)
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
            blocker = training.training_blocker(self.session, self.wizard.store)
            return blocker or "Confirm the plan and start training."
        return training.training_problem(self.session)

    def _finished(self) -> bool:
        return self.session.training.status in ("succeeded", "failed", "cancelled")

    # The plan -------------------------------------------------------------------------------

    def _show_plan(self) -> None:
        session = self.session
        store = self.wizard.store
        try:
            plan = training.plan_training(session, store)
        except FtwizardError as exc:
            self.query_one("#training-plan", Static).update(Text(str(exc), style="red"))
            return
        verdict = plan.dryrun_verdict or "not run"
        override = session.training.dryrun_override
        lines = Text()
        lines.append(f"Backend {plan.backend.value}   base model {plan.base_model}   ")
        lines.append(f"method {plan.method.value.upper()}\n")
        lines.append(
            f"Data: {plan.train_examples} training and {plan.valid_examples} validation "
            f"examples, {plan.tokens_per_epoch:,} tokens per epoch\n"
        )
        lines.append("Dry run: ")
        style = {"GO": "green", "WARNING": "yellow", "NO-GO": "red"}.get(verdict, "red")
        lines.append(verdict, style=f"bold {style}")
        if plan.dryrun_problem:
            lines.append(f" - {plan.dryrun_problem}", style="red")
        elif override:
            lines.append(f" - trained without it: {override}", style="yellow")
        for notice in plan.notices:
            lines.append(f"\n{notice}", style="yellow")
        self.query_one("#training-plan", Static).update(lines)
        self._show_estimate()
        needs_override = plan.dryrun_problem is not None
        self.query_one("#dryrun-override-row").display = needs_override

    def _show_estimate(self) -> None:
        try:
            estimate = training.estimate_training(self.session)
        except FtwizardError as exc:
            self.query_one("#training-estimate", Static).update(Text(str(exc), style="red"))
            return
        cost = "unknown" if estimate.usd is None else f"${estimate.usd:,.2f}"
        text = Text()
        text.append(f"Estimated cost {cost}", style="bold")
        text.append(f" ({estimate.basis})\n")
        text.append(f"Estimated time {_duration(estimate.seconds)}", style="bold")
        text.append(f" ({estimate.time_basis})")
        self.query_one("#training-estimate", Static).update(text)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        section = self.session.training
        started = section.intent is not None and not self._job_missing
        self.query_one("#training-setup").display = not started
        self.query_one("#training-live").display = started
        blocker = training.training_blocker(self.session, self.wizard.store)
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
        self.query_one("#pause-training", Button).display = provider_can_pause
        self.query_one("#resume-training", Button).display = provider_can_pause
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

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        if not widget_id.startswith("hp-"):
            return
        event.stop()
        name = widget_id.removeprefix("hp-")
        error = self.query_one("#hp-error", Static)
        if self.session.training.intent is not None:
            return
        try:
            # Validate on a copy: an invalid value never reaches the session.
            trial = self.session.model_copy(deep=True)
            training.set_hyperparameter(trial, name, event.value)
        except InputError as exc:
            error.update(Text(str(exc), style="red"))
            return
        error.update("")

        def apply(session: Session) -> bool:
            return training.set_hyperparameter(session, name, event.value)

        self.decide(widget_id, event.value, apply)
        self._show_estimate()

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
            super().on_button_pressed(event)
            return
        event.stop()
        self.wizard.journal({"press": event.button.id}, screen=self.screen_name)
        handler()

    def _record_override(self) -> None:
        reason = self.query_one("#dryrun-override", Input).value

        def apply(session: Session) -> bool:
            if session.training.dryrun_override == reason.strip():
                return False
            training.record_dryrun_override(session, reason)
            return True

        try:
            self.decide("dryrun-override", reason, apply)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self._show_plan()
        self.refresh_frame()

    def _ask_start(self) -> None:
        session = self.session
        store = self.wizard.store
        blocker = training.training_blocker(session, store)
        if blocker:
            self.notify(blocker, title="Not yet", severity="warning")
            return
        backend = session.task.backend
        if backend is Backend.local:
            self._start()
            return
        if not self.wizard.allow_spend:
            self.notify(
                "Starting a paid job is not allowed here (a replay needs --allow-spend).",
                title="Not started",
                severity="error",
            )
            return
        estimate = training.estimate_training(session)
        cost = "an unknown amount" if estimate.usd is None else f"about ${estimate.usd:,.2f}"
        assert backend is not None

        def answer(yes: bool | None) -> None:
            if yes:
                self._start()

        self.app.push_screen(
            ConfirmScreen(
                f"Create a fine-tuning job on {backend.value} for {session.task.base_model}? "
                f"It costs {cost} ({estimate.basis}).",
                yes_label="Start the paid job",
            ),
            answer,
        )

    def _start(self) -> None:
        session = self.session
        store = self.wizard.store
        try:
            training.confirm_training(session, store)
            key = training.prepare_attempt(session, store, allow_spend=self.wizard.allow_spend)
            spec = training.build_spec(session, store, key)
            provider = self._provider()
        except FtwizardError as exc:
            self.notify(str(exc), title="Not started", severity="error")
            return
        self.wizard.save_session()
        self.busy = True
        self.query_one("#training-status", Static).update("Starting the job...")
        self.refresh_frame()
        self._create_job(provider, spec)

    def _provider(self) -> TrainingProvider:
        def notice(text: str) -> None:
            self.app.call_from_thread(self.notify, text, severity="warning")

        return training.training_provider(
            self.session, self.wizard.store, on_notice=notice, today=type(self).TODAY
        )

    @work(thread=True, exclusive=True, group="training-start", exit_on_error=False)
    def _create_job(self, provider: TrainingProvider, spec: Any) -> None:
        async def create() -> tuple[str, bool]:
            try:
                return await training.create_or_find_job(provider, spec)
            finally:
                await training.close_training_provider(provider)

        try:
            job_id, reattached = asyncio.run(create())
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self._call(self._start_failed, str(exc))
            return
        self._call(self._job_created, job_id, reattached)

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        # RuntimeError: the app is shutting down; the session file already holds the intent.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback, *args)

    def _start_failed(self, message: str) -> None:
        self.busy = False
        self.query_one("#training-status", Static).update(Text(message, style="red"))
        self.notify(message, title="Training did not start", severity="error")
        self.refresh_frame()

    def _job_created(self, job_id: str, reattached: bool) -> None:
        self.busy = False
        self._job_missing = False
        training.record_job(self.session, job_id)
        self.wizard.save_session()
        verb = "Re-attached to" if reattached else "Started"
        self.notify(f"{verb} job {job_id}")
        self._show_job()
        self.refresh_frame()
        self._start_polling()
        self.poll_now()

    def _new_attempt(self) -> None:
        try:
            training.new_attempt(self.session)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.wizard.save_session()
        self.query_one("#training-events", Log).clear()
        self._shown_events = 0
        self._show_plan()
        self._show_job()
        self.refresh_frame()

    # Following the job ----------------------------------------------------------------------

    def _start_polling(self) -> None:
        if self._timer is None:
            self._timer = self.set_interval(self.POLL_S, self.poll_now)

    def _stop_polling(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poll_now(self) -> None:
        """Ask the provider for news now (the timer calls this too)."""
        session = self.session
        if session.training.intent is None or self._polling:
            return
        self._polling = True
        self._poll(
            self._provider(),
            training.job_id_of(session),
            session.training.intent.key,
            session.training.events_cursor,
            session.training.metrics_cursor,
        )

    @work(thread=True, exclusive=True, group="training-poll", exit_on_error=False)
    def _poll(
        self,
        provider: TrainingProvider,
        job_id: str | None,
        key: str,
        events_cursor: str | None,
        metrics_cursor: str | None,
    ) -> None:
        async def fetch() -> tuple[str | None, training.JobUpdate | None]:
            try:
                found = job_id or await provider.find_job(key)
                if found is None:
                    return None, None
                update = await training.fetch_update(
                    provider, found, events_cursor=events_cursor, metrics_cursor=metrics_cursor
                )
                return found, update
            finally:
                await training.close_training_provider(provider)

        try:
            found, update = asyncio.run(fetch())
        except Exception as exc:  # network faults: say so and try again at the next tick
            self._call(self._poll_failed, str(exc))
            return
        self._call(self._polled, found, update, events_cursor, metrics_cursor)

    def _poll_failed(self, message: str) -> None:
        self._polling = False
        self.query_one("#training-status", Static).update(
            Text(f"Could not reach the job (retrying): {message}", style="red")
        )

    def _polled(
        self,
        job_id: str | None,
        update: training.JobUpdate | None,
        events_cursor: str | None,
        metrics_cursor: str | None,
    ) -> None:
        self._polling = False
        section = self.session.training
        if section.intent is None:
            return
        if job_id is None or update is None:
            self._job_missing = True
            self._stop_polling()
            self.refresh_frame()
            return
        if section.intent.job_id is None:
            training.record_job(self.session, job_id)
        if (section.events_cursor, section.metrics_cursor) != (events_cursor, metrics_cursor):
            return  # a newer poll already applied these points
        training.apply_update(self.session, update)
        self.wizard.save_session()
        self._show_job(update.status)
        self.refresh_frame()
        if update.status.finished:
            self._stop_polling()
            training.record_in_ledger(self.session, self.wizard.store)

    def _show_job(self, status: JobStatus | None = None) -> None:
        section = self.session.training
        if section.intent is None:
            return
        points = training.metric_points(self.session)
        self._show_status(points, status)
        self._show_charts(points)
        self._show_steps(points)
        self._show_checkpoints()
        self._show_events()
        self._show_summary()

    def _show_status(self, points: list[MetricPoint], status: JobStatus | None) -> None:
        section = self.session.training
        now = datetime.now(UTC)
        elapsed = None
        if section.started_at is not None:
            end = section.finished_at or now
            elapsed = max(0.0, (end - section.started_at).total_seconds())
        last = points[-1] if points else None
        total = last.total_steps if last else None
        eta = "-"
        if status is not None and status.estimated_finish is not None and not self._finished():
            eta = _duration(max(0.0, (status.estimated_finish - now).total_seconds()))
        elif last and total and last.step and elapsed and not self._finished():
            eta = _duration(elapsed * (total - last.step) / last.step)
        state = section.status or "starting"
        text = Text()
        text.append(f"Job {training.job_id_of(self.session) or '(looking up)'}  ")
        style = {"succeeded": "green", "failed": "red", "cancelled": "red"}.get(state, "cyan")
        text.append(state, style=f"bold {style}")
        if last is not None:
            text.append(f"   step {last.step}" + (f"/{total}" if total else ""))
        text.append(f"   elapsed {_duration(elapsed)}   ETA {eta}")
        if section.error:
            text.append(f"\n{section.error}", style="red")
        self.query_one("#training-status", Static).update(text)
        bar = self.query_one("#training-progress", ProgressBar)
        if total and last:
            bar.update(total=total, progress=last.step)
        elif section.status == "succeeded":
            bar.update(total=1, progress=1)

    def _show_charts(self, points: list[MetricPoint]) -> None:
        series: dict[str, tuple[str, list[tuple[str, Callable[[MetricPoint], float | None]]]]]
        series = {
            "#loss-chart": ("Loss", [("train", lambda p: p.train_loss), ("valid", _valid_loss)]),
            "#reward-chart": (
                "Reward",
                [("train", lambda p: p.train_reward), ("valid", _valid_reward)],
            ),
        }
        for selector, (title, lines) in series.items():
            plot = self.query_one(selector, PlotextPlot)
            plt = plot.plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(title)
            plt.xlabel("step")
            shown: dict[str, tuple[list[int], list[float]]] = {}
            for label, value in lines:
                pairs = [(p.step, v) for p in points if (v := value(p)) is not None]
                if pairs:
                    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
                    plt.plot(xs, ys, label=label, marker="braille")
                    shown[label] = (xs, ys)
            self.chart_series[selector.removeprefix("#")] = shown
            plot.refresh()

    def _show_steps(self, points: list[MetricPoint]) -> None:
        table = self.query_one("#training-steps", DataTable)
        table.clear()
        for point in points[-MAX_TABLE_ROWS:]:
            table.add_row(
                point.step,
                _fmt(point.train_loss),
                _fmt(_valid_loss(point)),
                _fmt(point.train_accuracy),
                _fmt(
                    point.valid_accuracy
                    if point.valid_accuracy is not None
                    else point.full_valid_accuracy
                ),
                _fmt(point.train_reward),
                _fmt(_valid_reward(point)),
                key=f"step-{point.step}-{table.row_count}",
            )

    def _show_checkpoints(self) -> None:
        table = self.query_one("#training-checkpoints", DataTable)
        table.clear()
        best = training.best_checkpoint_of(self.session)
        chosen = self.session.training.chosen_checkpoint
        for checkpoint in training.checkpoints_of(self.session):
            metric = best[1] if best else None
            value = checkpoint.metrics.get(metric) if metric else None
            marks = []
            if best is not None and best[0].id == checkpoint.id:
                marks.append("best")
            if chosen is not None and checkpoint.name == chosen:
                marks.append("chosen")
            table.add_row(
                checkpoint.id,
                checkpoint.step if checkpoint.step is not None else "-",
                f"{metric} {value:.4f}" if value is not None else "-",
                ", ".join(marks),
                key=checkpoint.id,
            )
        model = training.final_model(self.session)
        self.query_one("#chosen-model", Static).update(
            f"Model to deploy: {model}" if model else "No model yet."
        )

    def _show_events(self) -> None:
        events = self.session.training.events
        log = self.query_one("#training-events", Log)
        if self._shown_events > len(events):
            log.clear()
            self._shown_events = 0
        for event in events[self._shown_events :]:
            log.write_line(f"[{event.get('level', 'info')}] {event.get('message', '')}")
        self._shown_events = len(events)

    def _show_summary(self) -> None:
        target = self.query_one("#training-summary", Static)
        if not self._finished():
            target.update("")
            return
        summary = training.training_summary(self.session)
        text = Text()
        state = summary["status"]
        text.append(f"Job {state}", style="bold green" if state == "succeeded" else "bold red")
        latest = ", ".join(f"{k} {v:.4f}" for k, v in summary["latest"].items())
        text.append(f"\nFinal metrics: {latest or 'none reported'}")
        text.append(f"\nDuration {_duration(summary['duration_s'])}")
        tokens = summary["trained_tokens"]
        text.append(f"   trained tokens {tokens:,}" if tokens else "   trained tokens -")
        cost = summary["cost_usd"]
        text.append(f"   cost ${cost:,.2f}" if cost is not None else "   cost -")
        if summary["best_checkpoint"]:
            text.append(f"\nBest checkpoint by {summary['best_by']}: {summary['best_checkpoint']}")
        target.update(text)

    # Checkpoints ----------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "training-checkpoints":
            return
        event.stop()
        checkpoint_id = str(event.row_key.value)
        # Journaled as a replay repeats it: move to the row, then press the button.
        name = self.screen_name
        self.wizard.journal({"set": {"training-checkpoints": checkpoint_id}}, screen=name)
        self.wizard.journal({"press": "choose-checkpoint"}, screen=name)
        self._choose(checkpoint_id)

    def _choose_highlighted(self) -> None:
        table = self.query_one("#training-checkpoints", DataTable)
        if table.row_count == 0:
            self.notify("No checkpoint yet.", severity="warning")
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self._choose(str(row_key.value))

    def _choose(self, checkpoint_id: str) -> None:
        try:
            training.choose_checkpoint(self.session, checkpoint_id)
        except InputError as exc:
            self.notify(str(exc), severity="warning")
            return
        self.wizard.save_session()
        self._show_checkpoints()
        self.refresh_frame()

    def _choose_best(self) -> None:
        best = training.best_checkpoint_of(self.session)
        if best is None:
            self.notify("No checkpoint has a validation figure to compare.", severity="warning")
            return
        self._choose(best[0].id)

    # Pause / resume / cancel ----------------------------------------------------------------

    def _ask_control(self, action: str) -> None:
        questions = {
            "pause": "Pause the job? It keeps its progress and can be resumed.",
            "resume": "Resume the paused job? Training (and billing) continues.",
            "cancel": "Cancel the job? This cannot be undone; checkpoints saved so far remain.",
        }
        labels = {"pause": "Pause", "resume": "Resume", "cancel": "Cancel the job"}

        def answer(yes: bool | None) -> None:
            if yes:
                self.busy = True
                self.refresh_frame()
                self._control(self._provider(), action, training.job_id_of(self.session))

        self.app.push_screen(ConfirmScreen(questions[action], yes_label=labels[action]), answer)

    @work(thread=True, exclusive=True, group="training-control", exit_on_error=False)
    def _control(self, provider: TrainingProvider, action: str, job_id: str | None) -> None:
        async def act() -> JobStatus:
            try:
                if job_id is None:
                    raise InputError("the job id is not known yet; wait for the next poll")
                call: Callable[[str], Awaitable[JobStatus]] = getattr(provider, action)
                return await call(job_id)
            finally:
                await training.close_training_provider(provider)

        try:
            status = asyncio.run(act())
        except Exception as exc:  # shown, not swallowed: the user asked for this
            self._call(self._control_failed, action, str(exc))
            return
        self._call(self._controlled, status)

    def _control_failed(self, action: str, message: str) -> None:
        self.busy = False
        self.notify(message, title=f"Could not {action}", severity="error")
        self.refresh_frame()

    def _controlled(self, status: JobStatus) -> None:
        self.busy = False
        self.session.training.status = status.state.value
        self.session.training.raw_status = status.raw_status
        self.wizard.save_session()
        self._show_job(status)
        self.refresh_frame()
        self.poll_now()
