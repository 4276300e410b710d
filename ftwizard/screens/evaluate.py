"""The evaluate step: is the tuned model better than the base, and how sure can we be?

Two pieces of evidence on the same held-out rows: the session's grader scoring both models
(means with intervals, the rows that flipped), and a blind A/B by one or more judge models
(win / tie / loss, a Wilson interval, position bias, agreement, the disagreements to read).
The statistics live in the core (``ftwizard/evaluate*.py``); this screen plans, asks before
spending, runs in a worker, records the summaries in the session and shows the reports.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static, Switch
from textual_plotext import PlotextPlot

from ftwizard.errors import FtwizardError
from ftwizard.evaluate.ab import EvalProgress, GraderComparison, PairwiseReport
from ftwizard.evaluate.session import (
    _MAX_FLIP_ROWS,
    MAX_RUNS,
    PASS_THRESHOLD,
    EvalPlan,
    clear_grader,
    clear_pairwise,
    compared_models,
    default_judges,
    estimate_spend,
    grader_spec,
    grading_items,
    held_out_path,
    make_plan,
    record_grader_comparison,
    record_pairwise,
    split_judges,
)
from ftwizard.flow import evaluate_problem
from ftwizard.report.evaluation import (
    disagreement_detail,
    grader_summary,
    load_grader_report,
    load_pairwise_report,
    pairwise_summary,
    side_name,
)
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.step import StepScreen
from ftwizard.session import Session, StepId
from ftwizard.widgets.text import one_line

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


class EvaluateScreen(StepScreen):
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
                placeholder="base URL of an OpenAI-compatible judge (optional)",
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
        self.query_one("#eval-models", Static).update(
            f"Base model: {base.spec}    Tuned model: {tuned.spec}"
            + (f" at {tuned.base_url}" if tuned.base_url else "")
        )

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
            self._stop = True
            self.query_one("#eval-status", Static).update("Stopping...")
        else:
            super().on_button_pressed(event)

    def _ask_and_run(self, *, judges: bool) -> None:
        if self.busy:
            return
        from ftwizard.graders.judges import judge_ref

        try:
            plan = make_plan(self.session, with_judges=judges)
            spec = None if judges else grader_spec(self.session)
            grader_judge = (
                None
                if spec is None
                else judge_ref(spec, base_url=self.session.grader.judge_base_url)
            )
        except FtwizardError as exc:
            self._failed(str(exc))
            return
        ev = self.session.evaluation
        estimate = estimate_spend(
            plan, both_orders=ev.both_orders, runs=ev.runs, grader_judge=grader_judge
        )
        if not estimate.paid:
            self._start(plan, spec, judges=judges)
            return
        if not self.wizard.allow_spend:
            self._failed(
                f"This evaluation calls paid models ({', '.join(estimate.paid)}); a replay "
                "runs it only with --allow-spend."
            )
            return

        def confirmed(answer: bool | None) -> None:
            if answer:
                self._start(plan, spec, judges=judges)

        what = "the blind A/B" if judges else "the grader comparison"
        self.app.push_screen(
            ConfirmScreen(
                f"{what.capitalize()} on {len(plan.rows)} held-out rows makes about "
                f"{estimate.calls} calls to {', '.join(estimate.paid)} and costs "
                f"{estimate.describe()}. Run it?",
                yes_label="Run it",
            ),
            confirmed,
        )

    def _start(self, plan: EvalPlan, spec: Any, *, judges: bool) -> None:
        self.busy = True
        self._stop = False
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.query_one("#eval-stop", Button).display = judges
        self.query_one("#eval-status", Static).update(
            "Judging..." if judges else "Answering and grading..."
        )
        self.refresh_frame()
        snapshot = self.session.model_copy(deep=True)
        if judges:
            self._run_ab(plan, snapshot)
        else:
            self._run_grader(plan, spec, snapshot)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _run_grader(self, plan: EvalPlan, spec: Any, snapshot: Session) -> None:
        from ftwizard.evaluate.ab import run_grader_comparison
        from ftwizard.graders.judges import judge_for
        from ftwizard.providers.models import build_generation_provider, close_provider

        async def run() -> GraderComparison:
            ids, items = grading_items(plan.held_out)
            judge = judge_for(spec, base_url=snapshot.grader.judge_base_url)
            base = build_generation_provider(plan.base)
            tuned = build_generation_provider(plan.tuned)
            try:
                return await run_grader_comparison(
                    items,
                    spec,
                    base=(base, plan.base.name),
                    tuned=(tuned, plan.tuned.name),
                    item_ids=ids,
                    threshold=PASS_THRESHOLD,
                    judge=judge,
                )
            finally:
                for provider in (base, tuned, judge):
                    if provider is not None:
                        await close_provider(provider)

        self._finish_in_app(run, plan)

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False)
    def _run_ab(self, plan: EvalPlan, snapshot: Session) -> None:
        from ftwizard.evaluate.ab import Judge, JudgeOptions, evaluate_ab
        from ftwizard.providers.models import build_generation_provider, close_provider

        ev = snapshot.evaluation

        def progress(update: EvalProgress) -> None:
            try:
                self.app.call_from_thread(self._progress, update)
            except RuntimeError:  # the app is shutting down; the run stops at the next check
                self._stop = True

        async def run() -> PairwiseReport:
            base = build_generation_provider(plan.base)
            tuned = build_generation_provider(plan.tuned)
            judges = [
                Judge(name=ref.spec, provider=build_generation_provider(ref), model=ref.name)
                for ref in plan.judges
            ]
            try:
                return await evaluate_ab(
                    list(plan.rows),
                    model_a=(base, plan.base.name),
                    model_b=(tuned, plan.tuned.name),
                    judges=judges,
                    options=JudgeOptions(seed=ev.seed, both_orders=ev.both_orders, runs=ev.runs),
                    on_progress=progress,
                    should_stop=lambda: self._stop,
                )
            finally:
                for provider in (base, tuned, *(j.provider for j in judges)):
                    await close_provider(provider)

        self._finish_in_app(run, plan)

    def _finish_in_app(self, run: Any, plan: EvalPlan) -> None:
        """Run the coroutine factory ``run`` here (a worker thread); report back to the app."""
        from ftwizard.evaluate.ab import EvaluationCancelled

        try:
            result = asyncio.run(run())
        except EvaluationCancelled:
            self.app.call_from_thread(self._failed, "Stopped; nothing was recorded.")
            return
        except FtwizardError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        except Exception as exc:  # a fault must reach the screen, not end the worker silently
            self.app.call_from_thread(self._failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._finished, plan, result)

    def _progress(self, update: EvalProgress) -> None:
        self.query_one("#eval-progress", ProgressBar).update(
            total=max(1, update.total), progress=update.done
        )
        stage = "answers" if update.stage == "answers" else "judgments"
        self.query_one("#eval-status", Static).update(f"{update.done}/{update.total} {stage}")

    def _idle(self) -> None:
        self.busy = False
        self.query_one("#eval-progress", ProgressBar).display = False
        self.query_one("#eval-stop", Button).display = False

    def _failed(self, message: str) -> None:
        from ftwizard.credentials import redact

        self._idle()
        message = redact(message)
        self.query_one("#eval-status", Static).update(Text(message, style="red"))
        self.notify(message, title="Evaluation did not run", severity="error")
        self.refresh_frame()

    def _finished(self, plan: EvalPlan, result: GraderComparison | PairwiseReport) -> None:
        from ftwizard.ledger.store import record_session

        self._idle()
        store = self.wizard.store
        if isinstance(result, PairwiseReport):
            record_pairwise(store, self.session, plan.held_out, result)
            self.pairwise_report = result
            self._show_pairwise()
            status = f"Blind A/B done: {result.counts.n} items judged."
        else:
            record_grader_comparison(store, self.session, plan.held_out, result)
            self.grader_report = result
            self._show_grader()
            status = f"Grader comparison done: {result.n} rows."
        self.wizard.save_session()
        try:
            record_session(store, self.session)
        except (OSError, FtwizardError) as exc:
            status += f" (the run ledger was not updated: {exc})"
        self.query_one("#eval-status", Static).update(status)
        self.refresh_frame()

    # Results --------------------------------------------------------------------------------

    def _show_grader(self) -> None:
        comparison = self.grader_report
        table = self.query_one("#eval-flips", DataTable)
        table.clear()
        summary = self.query_one("#grader-eval-summary", Static)
        table.display = comparison is not None and bool(comparison.flips)
        self.query_one("#eval-flip-detail", Static).update("")
        if comparison is None:
            summary.update("")
            return
        summary.update(grader_summary(comparison))
        for flip in comparison.flips[:_MAX_FLIP_ROWS]:
            gained = flip.direction == "fail_to_pass"
            table.add_row(
                flip.item_id,
                Text(
                    "fail -> pass" if gained else "pass -> fail",
                    style="green" if gained else "red",
                ),
                f"{flip.base_score:.2f}",
                f"{flip.tuned_score:.2f}",
                one_line(flip.tuned_output, 50),
                key=flip.item_id,
            )

    def _show_pairwise(self) -> None:
        report = self.pairwise_report
        table = self.query_one("#ab-disagreements", DataTable)
        table.clear()
        plot = self.query_one("#ab-win-rates", PlotextPlot)
        self.query_one("#ab-disagreement-detail", Static).update("")
        summary = self.query_one("#ab-summary", Static)
        plot.display = report is not None
        table.display = report is not None and bool(report.disagreements)
        self.query_one("#ab-disagreements-label", Label).update(
            "Judge disagreements"
            if report is None or report.disagreements
            else "Judge disagreements: none (every judge agreed, in every order)"
        )
        if report is None:
            summary.update("")
            return
        style = "yellow" if report.warnings else ""
        summary.update(Text(pairwise_summary(report), style=style))
        self._plot(report)
        self._disagreement_items = {}
        for d in report.disagreements:
            repeat = sum(1 for item in self._disagreement_items.values() if item == d.item_id)
            key = d.item_id if not repeat else f"{d.item_id}#{repeat + 1}"
            self._disagreement_items[key] = d.item_id
            verdicts = "; ".join(
                f"{judge}: {', '.join(side_name(v) for v in values)}"
                for judge, values in d.verdicts.items()
            )
            table.add_row(d.item_id, d.tag or "", d.kind, one_line(verdicts, 70), key=key)

    def _plot(self, report: PairwiseReport) -> None:
        plot = self.query_one("#ab-win-rates", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        names = [*report.per_judge, "all judges"]
        rates = [s.b_win_rate for s in report.per_judge.values()] + [report.counts.b_win_rate]
        plt.bar(
            [one_line(n, 24) for n in names],
            [100 * (r or 0.0) for r in rates],
        )
        plt.ylim(0, 100)
        plt.title("Tuned model's win rate by judge (%, ties count half)")
        plot.refresh()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table_id = event.data_table.id
        key = event.row_key.value if event.row_key is not None else None
        if key is None:
            return
        if table_id == "eval-flips" and self.grader_report is not None:
            event.stop()
            flip = next((f for f in self.grader_report.flips if f.item_id == key), None)
            if flip is not None:
                self.query_one("#eval-flip-detail", Static).update(
                    f"Item {flip.item_id}\nBase ({flip.base_score:.2f}): "
                    f"{one_line(flip.base_output, 400)}\nTuned ({flip.tuned_score:.2f}): "
                    f"{one_line(flip.tuned_output, 400)}"
                )
        elif table_id == "ab-disagreements" and self.pairwise_report is not None:
            event.stop()
            item_id = self._disagreement_items.get(str(key), str(key))
            self.query_one("#ab-disagreement-detail", Static).update(
                disagreement_detail(self.pairwise_report, item_id)
            )
