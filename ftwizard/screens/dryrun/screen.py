"""The dry-run step: sample the base model, grade it, and show GO / WARNING / NO-GO."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static, Switch
from textual_plotext import PlotextPlot

from ftwizard.dryrun.report import DryRunReport, draws_text
from ftwizard.errors import FtwizardError
from ftwizard.flow import dryrun_problem
from ftwizard.screens.dryrun.decision import DecisionPanel
from ftwizard.screens.dryrun.results import ResultsPanel
from ftwizard.screens.dryrun.running import RunPanel
from ftwizard.screens.step import StepScreen, job_conditions
from ftwizard.session import StepId, assign

HELP = """\
# Dry run

Before anyone pays for training, the dry run asks the base model to answer a sample of your
data and grades the answers with your grader. It tells you whether training can teach
anything:

- **GO**: the scores leave room to learn and the grader gives a usable signal.
- **WARNING**: something deserves a look (read the reasons); acknowledge to go on.
- **NO-GO**: training would waste money as things stand (scores all 0 or all 1, a grader
  that fails, answers that do not parse). Fix it, or override with a written reason, which
  the session records.

For SFT the dry run is a baseline to compare the tuned model with, not a gate.
A paid dry run shows its estimated cost and asks first. Browse the lowest-scoring samples to
see what the grader saw.
"""


# The on-screen names of the settings, for messages (never a widget id or a field name).
_LABELS = {
    "samples": "Prompts",
    "concurrency": "Concurrency",
    "seed": "Seed",
    "samples_per_prompt": "Answers per prompt",
    "max_tokens": "Max output tokens",
}


class DryRunScreen(RunPanel, ResultsPanel, DecisionPanel, StepScreen):
    """Settings, a live run, metrics, the verdict and the lowest-scoring samples."""

    STEP: ClassVar[StepId] = StepId.dryrun
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "dryrun-finished": lambda screen: (
            not screen.busy and screen.session.dryrun.verdict is not None
        ),
        **job_conditions("dryrun"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self.report: DryRunReport | None = None
        self._cancel: Any = None
        # Why the last run did not give a verdict (None: it did, or none was tried).
        self.failure: str | None = None
        # Set by Stop, so the run's end is recorded as stopped, not as done or failed.
        self._stopping = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Prompts", classes="switch")
            yield Input(id="dryrun-samples", type="integer")
            yield Label("Concurrency", classes="switch")
            yield Input(id="dryrun-concurrency", type="integer")
            yield Label("Seed", classes="switch")
            yield Input(id="dryrun-seed", type="integer")
            yield Label("Answers per prompt", classes="switch")
            yield Input(id="dryrun-k", type="integer")
        with Horizontal(classes="row"):
            yield Label("Max output tokens", classes="switch")
            yield Input(placeholder="default", id="dryrun-max-tokens", type="integer")
        with Horizontal(classes="row", id="dryrun-batch-row"):
            yield Switch(id="dryrun-batch")
            yield Label(
                "One provider batch: half the price, may take hours, resumes after a restart",
                classes="switch",
            )
        yield Static("", id="dryrun-estimate")
        with Horizontal(classes="row"):
            yield Button("Run dry run", id="dryrun-run", variant="primary")
            yield Button("Stop", id="dryrun-stop")
            yield ProgressBar(id="dryrun-progress", show_eta=False)
        yield Static("", id="dryrun-live")
        yield PlotextPlot(id="dryrun-histogram")
        yield Static("", id="dryrun-verdict")
        # Right under the verdict, so that on a short terminal both are in view at once.
        with Vertical(classes="row", id="dryrun-decision"):
            # A line of its own: beside the buttons it had a few columns left.
            yield Input(
                placeholder="why you override this NO-GO (recorded; Enter overrides)",
                id="dryrun-override-reason",
            )
            with Horizontal(classes="row"):
                yield Button("Acknowledge and go on", id="dryrun-proceed", variant="warning")
                yield Button("Adjust the grader", id="dryrun-adjust-grader")
                yield Button("More samples", id="dryrun-more")
                yield Button("Drop always/never-solved prompts", id="dryrun-drop-flat")
        yield Static("", id="dryrun-moves")
        yield DataTable(id="dryrun-metrics", cursor_type="row")
        yield Label("Lowest-scoring samples (Enter to read one)", classes="field-label")
        yield DataTable(id="dryrun-lowest", cursor_type="row", zebra_stripes=True)
        yield Static("", id="dryrun-sample")

    def on_mount(self) -> None:
        section = self.session.dryrun
        self.query_one("#dryrun-samples", Input).value = str(section.samples)
        self.query_one("#dryrun-concurrency", Input).value = str(section.concurrency)
        self.query_one("#dryrun-seed", Input).value = str(section.seed)
        self.query_one("#dryrun-k", Input).value = str(self._k())
        if section.max_tokens is not None:
            self.query_one("#dryrun-max-tokens", Input).value = str(section.max_tokens)
        self.query_one("#dryrun-batch", Switch).value = section.batch
        backend = self.session.task.backend
        self.query_one("#dryrun-batch-row").display = (
            backend is not None and backend.value == "openai"
        )
        metrics = self.query_one("#dryrun-metrics", DataTable)
        metrics.add_column("", key="mark", width=1)
        # Fixed widths, as in every table: see welcome.py.
        for label, width in (("Metric", 26), ("Value", 20), ("Healthy range", 20)):
            metrics.add_column(label, key=label.lower(), width=width)
        lowest = self.query_one("#dryrun-lowest", DataTable)
        for label, width in (("Line", 7), ("Score", 6), ("Answer", 50), ("Notes", 60)):
            lowest.add_column(label, key=label.lower(), width=width)
        self.query_one("#dryrun-progress", ProgressBar).display = False
        self.query_one("#dryrun-stop", Button).display = False
        super().on_mount()
        from ftwizard.dryrun.session import load_report

        self.report = load_report(self.session)
        if self.report is not None:
            self._show_report(self.report)
        self._show_estimate()

    def _k(self) -> int:
        """Answers per prompt: the session's, else 4 for RFT and 1 for SFT and DPO."""
        from ftwizard.dryrun.groups import DEFAULT_K_RFT

        chosen = self.session.dryrun.samples_per_prompt
        if chosen is not None:
            return chosen
        method = self.session.task.method
        return DEFAULT_K_RFT if method is not None and method.value == "rft" else 1

    def first_control(self) -> Widget | None:
        # A verdict that waits for an answer is the decision the step opens on.
        section = self.session.dryrun
        if section.verdict in ("WARNING", "NO-GO") and not section.acknowledged and not self.busy:
            return self._decision_control()
        return super().first_control()

    def _decision_control(self) -> Widget:
        """Where the person answers the verdict: the reason a NO-GO override needs, the
        acknowledge button of a WARNING, else Next."""
        section = self.session.dryrun
        if section.acknowledged or section.verdict not in ("WARNING", "NO-GO"):
            return self.query_one("#next")
        if section.verdict == "NO-GO":
            return self.query_one("#dryrun-override-reason")
        return self.query_one("#dryrun-proceed")

    def step_problem(self) -> str | None:
        if self.busy:
            return "The dry run is running..."
        return dryrun_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        section = self.session.dryrun
        decision = self.query_one("#dryrun-decision")
        decision.display = section.verdict is not None and not self.busy
        needs_answer = section.verdict in ("WARNING", "NO-GO") and not section.acknowledged
        proceed = self.query_one("#dryrun-proceed", Button)
        proceed.display = needs_answer
        proceed.label = "Override NO-GO" if section.verdict == "NO-GO" else "Acknowledge and go on"
        self.query_one("#dryrun-override-reason").display = (
            needs_answer and section.verdict == "NO-GO"
        )
        self.query_one("#dryrun-run", Button).disabled = self.busy

    # Settings -------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Enter after the reason is the override itself: the button beside it.
        if event.input.id == "dryrun-override-reason":
            event.stop()
            self._acknowledge()

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        field = {
            "dryrun-samples": "samples",
            "dryrun-concurrency": "concurrency",
            "dryrun-seed": "seed",
            "dryrun-k": "samples_per_prompt",
            "dryrun-max-tokens": "max_tokens",
        }.get(widget_id)
        if field is None:
            return
        event.stop()
        text = event.value.strip()
        if field == "max_tokens" and not text:
            # Empty: the provider's own limit, as the placeholder says.
            if self.session.dryrun.max_tokens is not None:
                self.decide(widget_id, "", lambda s: assign(s.dryrun, "max_tokens", None))
                self._show_estimate()
            return
        # isdigit() lets superscripts such as "²" through, and int() of those raises ValueError.
        lowest = 0 if field == "seed" else 1
        if not (text.isascii() and text.isdigit()) or int(text) < lowest:
            if text:
                self.query_one("#dryrun-estimate", Static).update(
                    Text(
                        f"{_LABELS[field]} must be a whole number of at least {lowest}, "
                        f"not {text!r}",
                        style="red",
                    )
                )
            return
        value = int(text)
        if field == "samples_per_prompt" and value == self._k():
            return  # the default shown on mount: nothing chosen, nothing journaled
        self.decide(widget_id, value, lambda session: assign(session.dryrun, field, value))
        self._show_estimate()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id != "dryrun-batch":
            return
        event.stop()
        value = event.value

        self.decide(
            "dryrun-batch",
            value,
            lambda session: assign(session.dryrun, "batch", value),
        )
        self._show_estimate()

    def _show_estimate(self) -> None:
        """Price the run before it starts (no network)."""
        from ftwizard.dryrun.cost import estimate_dryrun_cost
        from ftwizard.dryrun.session import preflight_session_dryrun

        target = self.query_one("#dryrun-estimate", Static)
        try:
            config, spec = preflight_session_dryrun(self.session, self.wizard.store)
            estimate = estimate_dryrun_cost(config, spec)
        except FtwizardError as exc:
            target.update(Text(str(exc), style="red"))
            return
        self._estimate = estimate
        # K answers per prompt cost K times the calls: the count says so beside the price.
        draws = draws_text(estimate.samples, estimate.samples_per_prompt)
        if not estimate.paid:
            target.update(f"{draws} on {config.model}: free (runs locally).")
            return
        usd = estimate.cost.total_usd
        price = "cost unknown (no price on record)" if usd is None else f"about ${usd:.4f}"
        target.update(
            f"{draws} on {config.model}: {price} "
            f"(~{estimate.input_tokens:,} input / ~{estimate.output_tokens:,} output tokens)."
        )

    # Running --------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button == "dryrun-run":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_run()
        elif button == "dryrun-more":
            event.stop()
            self.query_one("#dryrun-samples", Input).value = str(self.session.dryrun.samples * 2)
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_run()
        elif button == "dryrun-stop":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._stopping = True
            if self._cancel is not None:
                self._cancel()
        elif button == "dryrun-proceed":
            event.stop()
            self._acknowledge()
        elif button == "dryrun-drop-flat":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._drop_flat()
        elif button == "dryrun-adjust-grader":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self.wizard.go_to(StepId.grader)
        else:
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this
