"""The evaluate screen's results: the grader comparison's flips and the blind A/B's report."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Label, Static
from textual_plotext import PlotextPlot

from ftwizard.evaluate.ab import GraderComparison, PairwiseReport
from ftwizard.evaluate.session import _MAX_FLIP_ROWS
from ftwizard.report.evaluation import (
    disagreement_detail,
    disagreement_label,
    grader_summary,
    pairwise_summary,
    side_name,
)
from ftwizard.screens.step import StepScreen
from ftwizard.widgets.text import one_line


class EvaluateResults(StepScreen):
    """The results part of :class:`EvaluateScreen` (a mixin of it)."""

    # Set by :class:`EvaluateScreen`'s constructor.
    grader_report: GraderComparison | None
    pairwise_report: PairwiseReport | None
    _disagreement_items: dict[str, str]

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
        # Nothing judged: no win rate to plot, only the reason (in the summary).
        plot.display = report is not None and report.counts.n > 0
        table.display = report is not None and bool(report.disagreements)
        self.query_one("#ab-disagreements-label", Label).update(disagreement_label(report))
        if report is None:
            summary.update("")
            return
        style = "yellow" if report.warnings else ""
        summary.update(Text(pairwise_summary(report), style=style))
        if report.counts.n > 0:
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
