"""The dataset screen's Tokens & cost tab: tokens per example and what training costs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from ftwizard.datasets.validation import ValidationReport
from ftwizard.screens.step import StepScreen


class TokensTab(StepScreen):
    """The Tokens & cost tab's part of :class:`DatasetScreen` (a mixin of it)."""

    def compose_tokens(self) -> ComposeResult:
        """The token histogram, the cost per backend and the cost of one call."""
        yield PlotextPlot(id="token-histogram")
        yield DataTable(id="cost", cursor_type="row")
        yield Static("", id="inference-cost")

    def _mount_tokens(self) -> None:
        cost = self.query_one("#cost", DataTable)
        for label, width in (
            ("Backend", 8),
            ("Model", 30),
            ("Epochs", 6),
            ("Billed tokens", 14),
            ("Estimate", 12),
        ):
            cost.add_column(label, key=label.lower(), width=width)

    def _show_tokens(self, report: ValidationReport) -> None:
        plot = self.query_one("#token-histogram", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        if report.histogram:
            labels = [f"{low}-{high}" for low, high, _ in report.histogram]
            plt.bar(labels, [count for _, _, count in report.histogram])
            stats = report.tokens
            plt.title(
                f"tokens per example: min {stats.min}, p50 {stats.p50}, p95 {stats.p95}, "
                f"max {stats.max}, over limit {stats.over_limit}"
            )
        plot.refresh()
        cost = self.query_one("#cost", DataTable)
        cost.clear()
        for estimate in report.cost:
            data = estimate.to_json()
            usd = data.get("usd")
            cost.add_row(
                data.get("backend", "-"),
                data.get("model", "-"),
                data.get("epochs", "-"),
                f"{data.get('billed_tokens', '-'):,}"
                if isinstance(data.get("billed_tokens"), int)
                else "-",
                f"${usd:,.2f}" if isinstance(usd, int | float) else str(usd or "-"),
            )
        lines = [report.image_summary() or "", _inference_text(report)]
        self.query_one("#inference-cost", Static).update("\n".join(x for x in lines if x))


def _inference_text(report: ValidationReport) -> str:
    """One call's cost with the base model and with the tuned one, on this data's averages."""
    cost = report.inference
    if cost is None:
        return ""

    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"${value:.6f}"

    source = f" (prices as of {cost.as_of}, {cost.source})" if cost.as_of else ""
    return (
        f"Per call on {cost.model} (~{cost.input_tokens} input / ~{cost.output_tokens} output "
        f"tokens): base {usd(cost.base_usd)}, tuned {usd(cost.tuned_usd)}{source}"
    )
