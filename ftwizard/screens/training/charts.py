"""The training screen's live view: status line, progress, loss and reward charts, step table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import DataTable, ProgressBar, Static
from textual_plotext import PlotextPlot

from ftwizard.providers.training import JobStatus, MetricPoint
from ftwizard.screens.step import StepScreen
from ftwizard.training import follow as training_follow

STEP_COLUMNS = (
    ("step", "Step"),
    ("train_loss", "Train loss"),
    ("valid_loss", "Valid loss"),
    ("train_accuracy", "Train acc"),
    ("valid_accuracy", "Valid acc"),
    ("train_reward", "Train reward"),
    ("valid_reward", "Valid reward"),
)
MAX_TABLE_ROWS = 300


def fmt_value(value: float | None) -> str:
    """A metric with four decimals, or '-'."""
    return "-" if value is None else f"{value:.4f}"


def duration_text(seconds: float | None) -> str:
    """Seconds as ``1h05m`` or ``4m09s``."""
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def valid_loss_of(point: MetricPoint) -> float | None:
    """The full validation loss where there is one, else the batch's."""
    return point.full_valid_loss if point.full_valid_loss is not None else point.valid_loss


def valid_reward_of(point: MetricPoint) -> float | None:
    """The full validation reward where there is one, else the batch's."""
    return point.full_valid_reward if point.full_valid_reward is not None else point.valid_reward


class ChartsPart(StepScreen):
    """The training screen's live view (a mixin of :class:`TrainingScreen`)."""

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
            eta = duration_text(max(0.0, (status.estimated_finish - now).total_seconds()))
        elif last and total and last.step and elapsed and not self._finished():
            eta = duration_text(elapsed * (total - last.step) / last.step)
        state = section.status or "starting"
        text = Text()
        text.append(f"Job {training_follow.job_id_of(self.session) or '(looking up)'}  ")
        style = {"succeeded": "green", "failed": "red", "cancelled": "red"}.get(state, "cyan")
        text.append(state, style=f"bold {style}")
        if last is not None:
            text.append(f"   step {last.step}" + (f"/{total}" if total else ""))
        text.append(f"   elapsed {duration_text(elapsed)}   ETA {eta}")
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
            "#loss-chart": ("Loss", [("train", lambda p: p.train_loss), ("valid", valid_loss_of)]),
            "#reward-chart": (
                "Reward",
                [("train", lambda p: p.train_reward), ("valid", valid_reward_of)],
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
                fmt_value(point.train_loss),
                fmt_value(valid_loss_of(point)),
                fmt_value(point.train_accuracy),
                fmt_value(
                    point.valid_accuracy
                    if point.valid_accuracy is not None
                    else point.full_valid_accuracy
                ),
                fmt_value(point.train_reward),
                fmt_value(valid_reward_of(point)),
                key=f"step-{point.step}-{table.row_count}",
            )
