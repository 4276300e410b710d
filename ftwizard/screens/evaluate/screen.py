"""The evaluate step: is the tuned model better than the base, and how sure can we be?

Two pieces of evidence on the same held-out rows: the session's grader scoring both models
(means with intervals, the rows that flipped), and a blind A/B by one or more judge models
(win / tie / loss, a Wilson interval, position bias, agreement, the disagreements to read).
The statistics live in the core (``ftwizard/evaluate/``); this screen holds the settings,
``running`` plans, asks before spending, runs in a worker and records the summaries in the
session, and ``results`` shows the reports.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static, Switch
from textual_plotext import PlotextPlot

from ftwizard.errors import FtwizardError
from ftwizard.evaluate.ab import GraderComparison, PairwiseReport
from ftwizard.evaluate.session import (
    MAX_RUNS,
    clear_grader,
    clear_pairwise,
    compared_models,
    default_judges,
    held_out_path,
    split_judges,
)
from ftwizard.flow import evaluate_problem
from ftwizard.report.evaluation import load_grader_report, load_pairwise_report
from ftwizard.screens.evaluate.results import EvaluateResults
from ftwizard.screens.evaluate.running import EvaluateRunning
from ftwizard.screens.step import job_conditions
from ftwizard.session import Session, StepId

HELP = """\
# Evaluate

Is the tuned model better than the base model? Two kinds of evidence, on held-out examples the
model never trained on (by default the dataset step's validation file).

- **Grader comparison**: the base and the tuned model answer every held-out row and the
  session's grader scores both. You get each model's mean score with a 95 % interval and the
  rows that flipped (failed before, pass now, and the other way round). Select a flip to read
  both answers.
- **Blind A/B**: one or more judge models (comma-separated model strings such as
  `anthropic:claude-sonnet-4-6, openai:gpt-4.1-2025-04-14`) see both answers as "Response A"
  and "Response B" in a random order recorded per item, and say which is better. You get wins,
  ties and losses, the tuned model's win rate with a Wilson interval, Cohen's kappa between
  judges, and how often a judge simply picked whatever was shown first. A position-biased
  judge cannot decide the result. *Both orders* judges every pair twice, swapped.

Fewer than 30 examples give wide intervals: the screen says so. Paid models show an estimate
and ask first; a replay never spends money without `--allow-spend`. Full reports are saved in
the session's `artifacts/evaluation/` folder.
"""


# The screen -------------------------------------------------------------------------------


class EvaluateScreen(EvaluateRunning, EvaluateResults):
    """Held-out data, the grader comparison, the blind A/B, and their results."""

    STEP: ClassVar[StepId] = StepId.evaluate
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "evaluation-graded": lambda screen: (
            not screen.busy and screen.session.evaluation.grader_report_file is not None
        ),
        "evaluation-judged": lambda screen: (
            not screen.busy and screen.session.evaluation.ab_report_file is not None
        ),
        **job_conditions("grader-eval"),
        **job_conditions("ab-eval"),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False
        self._stop = False
        self.grader_report: GraderComparison | None = None
        self.pairwise_report: PairwiseReport | None = None
        # Disagreement table row key -> item id (an item can have a row per judge).
        self._disagreement_items: dict[str, str] = {}

    def compose_body(self) -> ComposeResult:
        yield Static("", id="eval-models")
        yield Label("Held-out examples", classes="field-label")
        yield Input(placeholder="held-out file (default: the validation split)", id="eval-data")
        yield Label(
            "Grader comparison: base vs tuned under the session's grader", classes="field-label"
        )
        with Horizontal(classes="row"):
            yield Button("Compare with the grader", id="run-grader-eval", variant="primary")
        yield Static("", id="grader-eval-summary")
        yield DataTable(id="eval-flips", cursor_type="row", zebra_stripes=True)
        yield Static("", id="eval-flip-detail")
        yield Label("Blind A/B: judges compare the two answers unlabelled", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(placeholder="judge models, comma-separated", id="eval-judges")
            yield Input(
                placeholder="judge base URL (optional)",
                id="eval-judge-base-url",
            )
        with Horizontal(classes="row"):
            yield Switch(id="eval-both-orders")
            yield Label("Judge every pair in both orders", classes="switch")
            yield Label("Seed", classes="switch")
            yield Input(placeholder="seed", id="eval-seed", type="integer")
            yield Label("Runs", classes="switch")
            yield Input(placeholder="runs", id="eval-runs", type="integer")
        with Horizontal(classes="row"):
            yield Button("Run blind A/B", id="run-ab", variant="primary")
            yield ProgressBar(id="eval-progress", show_eta=False)
            yield Button("Stop", id="eval-stop", variant="warning")
        yield Static("", id="eval-status")
        yield Static("", id="ab-summary")
        yield PlotextPlot(id="ab-win-rates")
        yield Label("Judge disagreements", classes="field-label", id="ab-disagreements-label")
        yield DataTable(id="ab-disagreements", cursor_type="row", zebra_stripes=True)
        yield Static("", id="ab-disagreement-detail")

    def on_mount(self) -> None:
        flips = self.query_one("#eval-flips", DataTable)
        for label, key, width in (
            ("Item", "item", 10),
            ("Flip", "direction", 12),
            ("Base", "base", 5),
            ("Tuned", "tuned", 5),
            ("Tuned answer", "answer", 50),
        ):
            # Fixed widths, as in every table: see welcome.py.
            flips.add_column(label, key=key, width=width)
        table = self.query_one("#ab-disagreements", DataTable)
        for label, key, width in (
            ("Item", "item", 12),
            ("Tag", "tag", 10),
            ("Kind", "kind", 14),
            ("Verdicts", "v", 70),
        ):
            table.add_column(label, key=key, width=width)
        ev = self.session.evaluation
        if not ev.judges and ev.ab_report_file is None:
            # A default, not a decision: saved only so the run below uses what is shown.
            ev.judges = default_judges(self.session)
        # Restoring fires Changed events too; their apply() finds nothing to change, so they
        # are not journaled.
        self.query_one("#eval-data", Input).value = held_out_path(self.session) or ""
        self.query_one("#eval-judges", Input).value = ", ".join(ev.judges)
        self.query_one("#eval-judge-base-url", Input).value = ev.judge_base_url or ""
        self.query_one("#eval-both-orders", Switch).value = ev.both_orders
        self.query_one("#eval-seed", Input).value = str(ev.seed)
        self.query_one("#eval-runs", Input).value = str(ev.runs)
        self.query_one("#eval-progress", ProgressBar).display = False
        self.query_one("#eval-stop", Button).display = False
        self._show_models()
        self.grader_report = load_grader_report(self.session)
        self.pairwise_report = load_pairwise_report(self.session)
        self._show_grader()
        self._show_pairwise()
        super().on_mount()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Evaluating..."
        return evaluate_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        # A running comparison records its results against the settings it started with, so
        # they cannot change under it.
        for selector in (
            "#run-grader-eval",
            "#run-ab",
            "#eval-data",
            "#eval-judges",
            "#eval-judge-base-url",
            "#eval-both-orders",
            "#eval-seed",
            "#eval-runs",
        ):
            self.query_one(selector).disabled = self.busy

    def _show_models(self) -> None:
        try:
            base, tuned = compared_models(self.session)
        except FtwizardError as exc:
            self.query_one("#eval-models", Static).update(Text(str(exc), style="yellow"))
            return
        from ftwizard.widgets.evidence import evidence_text

        text = Text(
            f"Base model: {base.spec}    Tuned model: {tuned.spec}"
            + (f" at {tuned.base_url}" if tuned.base_url else "")
        )
        text.append_text(evidence_text(self.session))
        self.query_one("#eval-models", Static).update(text)

    # Settings -------------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        widget_id = event.input.id or ""
        if widget_id not in (
            "eval-data",
            "eval-judges",
            "eval-judge-base-url",
            "eval-seed",
            "eval-runs",
        ):
            return
        event.stop()
        value = event.value

        def apply(session: Session) -> bool:
            ev = session.evaluation
            if widget_id == "eval-data":
                path = value.strip() or None
                unchanged = path == ev.held_out_file or (
                    ev.held_out_file is None and path == held_out_path(session)
                )
                if unchanged:
                    return False
                ev.held_out_file = path
                clear_grader(session)
                clear_pairwise(session)
                return True
            if widget_id == "eval-judges":
                judges = split_judges(value)
                if judges == ev.judges:
                    return False
                ev.judges = judges
            elif widget_id == "eval-judge-base-url":
                url = value.strip() or None
                if url == ev.judge_base_url:
                    return False
                ev.judge_base_url = url
            elif widget_id == "eval-seed":
                try:
                    seed = int(value)
                except ValueError:
                    return False
                if seed == ev.seed:
                    return False
                ev.seed = seed
            else:
                try:
                    runs = int(value)
                except ValueError:
                    return False
                if runs == ev.runs or not 1 <= runs <= MAX_RUNS:
                    return False
                ev.runs = runs
            clear_pairwise(session)
            return True

        self.decide(widget_id, value, apply)
        self._after_settings_change()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id != "eval-both-orders":
            return
        event.stop()
        value = event.value

        def apply(session: Session) -> bool:
            if session.evaluation.both_orders == value:
                return False
            session.evaluation.both_orders = value
            clear_pairwise(session)
            return True

        self.decide("eval-both-orders", value, apply)
        self._after_settings_change()

    def _after_settings_change(self) -> None:
        ev = self.session.evaluation
        if self.pairwise_report is not None and ev.ab_report_file is None:
            self.pairwise_report = None
            self._show_pairwise()
        if self.grader_report is not None and ev.grader_report_file is None:
            self.grader_report = None
            self._show_grader()

    # Running --------------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button in ("run-grader-eval", "run-ab"):
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._ask_and_run(judges=button == "run-ab")
        elif button == "eval-stop":
            event.stop()
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._stop = True
            self.query_one("#eval-status", Static).update("Stopping...")
        else:
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this
