"""The dry-run screen's results panel: histogram, verdict, metrics and the lowest samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from ftwizard.dryrun.metrics import Histogram
from ftwizard.dryrun.report import DryRunReport, graded_text
from ftwizard.session import Session
from ftwizard.widgets.text import one_line

if TYPE_CHECKING:
    from ftwizard.session import Session

_VERDICT_STYLE = {"GO": "bold green", "WARNING": "bold yellow", "NO-GO": "bold red"}
_MARKS = {"note": ("✓", "green"), "warning": ("!", "yellow"), "no-go": ("✗", "red")}


def _mark(level: str | None) -> Text:
    """The status mark of one metric: within range, outside it, or far outside."""
    if level is None:
        return Text("")
    symbol, style = _MARKS[level]
    return Text(symbol, style=f"bold {style}")


_LOWEST = 20


class ResultsPanel:
    """Shows a finished report (mixed into :class:`DryRunScreen`, which owns the widgets)."""

    report: DryRunReport | None
    session: Session
    query_one: Any

    # Display --------------------------------------------------------------------------------

    def _plot(self, histogram: Histogram) -> None:
        plot = self.query_one("#dryrun-histogram", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        labels = [f"{low:.1f}" for low in histogram.edges[:-1]]
        plt.bar(labels, histogram.counts)
        plt.title("scores")
        plot.refresh()

    def _show_report(self, report: DryRunReport) -> None:
        stats = report.stats
        self._plot(stats.histogram)
        verdict = report.verdict
        text = Text()
        text.append(f"{verdict.verdict}", style=_VERDICT_STYLE.get(verdict.verdict, "bold"))
        if not verdict.is_gate:
            text.append("  (SFT: a baseline to beat, not a gate)", style="dim")
        text.append(
            f"   {report.draws} on {report.model}, {graded_text(stats.n, report.sampled)}"
            + (" - stopped early" if report.cancelled else "")
            + "\n"
        )
        for reason in verdict.reason_texts():
            text.append(f"• {reason}\n")
        if verdict.diagnosis:
            text.append("Diagnosis: " + ", ".join(d.replace("_", " ") for d in verdict.diagnosis))
            text.append("\n")
        if self.session.dryrun.override_reason:
            text.append(f"Overridden: {self.session.dryrun.override_reason}\n", style="yellow")
        self.query_one("#dryrun-verdict", Static).update(text)
        from ftwizard.dryrun.verdict_types import MOVE_TEXT

        # Under the decision buttons: what else to do, naming those buttons.
        moves = Text()
        for move in verdict.next_moves:
            moves.append(f"→ {MOVE_TEXT[move]}\n", style="italic")
        self.query_one("#dryrun-moves", Static).update(moves)

        metrics = self.query_one("#dryrun-metrics", DataTable)
        metrics.clear()
        from ftwizard.dryrun.verdict import metric_levels

        levels: dict[str, str | None] = dict(metric_levels(stats))
        std_range = "follows the mean" if stats.binary else "0.10 - 0.25"
        ranges = {
            "mean": "0.25 - 0.65",
            "std": std_range,
            "gt0": "more than 10-20%",
            "eq1": "fewer than 30-50%",
        }
        if not verdict.is_gate:
            # SFT: the scores are a baseline for the tuned model to beat. RFT's health
            # ranges (room to learn from rewards) do not apply, so nothing is marked against them.
            ranges = dict.fromkeys(ranges, "baseline (SFT)")
            levels = dict.fromkeys(levels, None)
        rows: list[tuple[str, str, str, str | None]] = [
            ("mean score", f"{stats.mean:.3f}", ranges["mean"], levels["mean"]),
            ("std", f"{stats.std:.3f}", ranges["std"], levels["std"]),
            ("> 0", f"{stats.pct_gt0:.1f}%", ranges["gt0"], levels["gt0"]),
            ("= 1.0", f"{stats.pct_eq1:.1f}%", ranges["eq1"], levels["eq1"]),
            (
                "grader errors",
                str(len(report.errors)),
                "0",
                "note" if not report.errors else "warning",
            ),
            (
                "unparsable answers",
                str(report.parse_failures),
                "0",
                "note" if not report.parse_failures else "warning",
            ),
        ]
        if report.grader_noise is not None:
            rows.append(
                (
                    "judge noise (mean |diff|)",
                    f"{report.grader_noise.mean_abs_diff:.3f}",
                    "small",
                    None,
                )
            )
        usd = report.cost.total_usd
        rows.append(("cost", "unknown" if usd is None else f"${usd:.4f}", "", None))
        for topic, figures in report.per_topic.items():
            rows.append((f"topic {topic}", f"n {figures.n}, mean {figures.mean:.3f}", "", None))
        rows += self._group_rows(report)
        for name, value, healthy, level in rows:
            metrics.add_row(_mark(level), name, value, healthy)

        lowest = self.query_one("#dryrun-lowest", DataTable)
        lowest.clear()
        for sample in report.lowest(_LOWEST):
            lowest.add_row(
                sample.line,
                f"{sample.score:.2f}" if sample.score is not None else "-",
                one_line(sample.output, 50),
                one_line(sample.error or sample.notes, 60),
                key=str(sample.index),
            )

    def _group_rows(self, report: DryRunReport) -> list[tuple[str, str, str, str | None]]:
        """The group figures of a K > 1 run, and whether there are flat prompts to drop."""
        g = report.groups
        flat = [] if g is None else g.always_solved + g.never_solved
        self.query_one("#dryrun-drop-flat").display = bool(flat)
        if g is None:
            return []
        share = g.zero_variance_pct / 100
        level = "no-go" if share >= 0.8 else "warning" if share >= 0.5 else "note"
        rows: list[tuple[str, str, str, str | None]] = [
            (f"all {g.k} answers equal", f"{g.zero_variance_pct:.1f}%", "under 50%", level),
            # Its own row: beside the share it would not fit the Value column.
            ("  all fail / all pass", f"{g.all_fail_pct:.1f}% / {g.all_pass_pct:.1f}%", "", None),
            ("within-prompt std", f"{g.mean_within_std:.3f}", "higher is better", None),
        ]
        if g.pass_at_k_pct is not None:
            both = f"{g.pass_at_1_pct:.1f}% / {g.pass_at_k_pct:.1f}%"
            rows.append((f"pass@1 / pass@{g.k}", both, "", None))
        for topic, t in report.groups_per_topic.items():
            rows.append((f"topic {topic} equal", f"{t.zero_variance_pct:.1f}%", "", None))
        return rows

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "dryrun-lowest" or self.report is None:
            return
        event.stop()
        # Enter on a row acts here: no row-details dialog from the step frame.
        event.prevent_default()
        index = int(event.row_key.value or 0)
        sample = next((s for s in self.report.samples if s.index == index), None)
        if sample is None:
            return
        text = Text()
        text.append(f"Line {sample.line}", style="bold")
        text.append(f"  score {sample.score}\n")
        text.append("Prompt: ", style="bold")
        text.append(f"{sample.prompt}\n")
        text.append("Answer: ", style="bold")
        text.append(f"{sample.output}\n")
        if sample.error or sample.notes:
            text.append("Grader: ", style="bold")
            text.append(f"{sample.error or sample.notes}\n")
        self.query_one("#dryrun-sample", Static).update(text)
