"""``ftwizard report ID``: a Markdown and an HTML report of a session, with PNG plots.

Written into ``<session>/report/``: ``report.md``, ``report.html`` and one PNG per plot that has
data — the dry run's score histogram, the training loss and reward curves, the grader score by
checkpoint, the grader means and the A/B win rates; and the weights deployed and evaluated, with
a flag for any file changed since it was evaluated. A plot whose data the session does not have
(no dry run yet, a method without rewards, no evaluation) is not drawn, and the report says which
and why; so does a missing matplotlib (an optional dependency).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.credentials import redact
from ftwizard.errors import FtwizardError
from ftwizard.files import atomic_write_text, write_error
from ftwizard.inputs import read_input_text
from ftwizard.ledger.markdown import run_markdown
from ftwizard.ledger.store import entry_for
from ftwizard.report.evaluation import (
    grader_summary,
    load_grader_report,
    load_pairwise_report,
    pairwise_summary,
)
from ftwizard.session import Session
from ftwizard.store import SessionStore

REPORT_DIR = "report"
LOSS_KEYS = ("train_loss", "valid_loss", "full_valid_loss")
REWARD_KEYS = ("train_reward", "valid_reward", "full_valid_reward")


class PlotInfo(BaseModel):
    """One plot of the report: its file when drawn, else why it is absent."""

    name: str
    title: str
    file: str | None = None
    absent_reason: str | None = None


class ReportFiles(BaseModel):
    """What ``ftwizard report`` wrote."""

    session_id: str
    markdown: str
    html: str
    plots: list[PlotInfo]

    def to_cli_json(self) -> dict[str, Any]:
        """The object ``ftwizard report --json`` prints."""
        return {
            "session": self.session_id,
            "markdown": self.markdown,
            "html": self.html,
            "plots": {p.name: p.file for p in self.plots if p.file},
            "absent": {p.name: p.absent_reason for p in self.plots if p.absent_reason},
        }


def metric_series(metrics: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, list]:
    """``{key: [(step, value), ...]}`` for each key the metric points carry a number for."""
    series: dict[str, list[tuple[int, float]]] = {key: [] for key in keys}
    for point in metrics:
        step = point.get("step")
        if not isinstance(step, int):
            continue
        for key in keys:
            value = point.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                series[key].append((step, float(value)))
    return {key: points for key, points in series.items() if points}


def dryrun_histogram(session: Session) -> tuple[list[float], list[int]] | None:
    """The dry run's score histogram from its report file, or None when there is none."""
    path = session.dryrun.report_file
    if not path or not Path(path).is_file():
        return None
    try:
        data = json.loads(read_input_text(path))
        histogram = data["stats"]["histogram"]
        edges = [float(e) for e in histogram["edges"]]
        counts = [int(c) for c in histogram["counts"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError, FtwizardError):
        return None
    if len(edges) != len(counts) + 1 or not any(counts):
        return None
    return edges, counts


class _Plotter:
    """Draws each plot that has data, and records the reason for each that is not drawn."""

    def __init__(self, folder: Path) -> None:
        from ftwizard.report.plots import plotting_unavailable

        self.folder = folder
        self.unavailable = plotting_unavailable()
        self.plots: list[PlotInfo] = []

    def draw(
        self, name: str, title: str, plot: Callable[[Path], Path] | None, missing: str
    ) -> PlotInfo:
        """Draw ``plot`` into ``<name>.png``; ``plot`` is None when the data is ``missing``."""
        path = self.folder / f"{name}.png"
        reason = missing if plot is None else self.unavailable
        if plot is not None and reason is None:
            plot(path)
            info = PlotInfo(name=name, title=title, file=path.name)
        else:
            path.unlink(missing_ok=True)  # a stale plot from an earlier report would mislead
            info = PlotInfo(name=name, title=title, absent_reason=reason)
        self.plots.append(info)
        return info

    @staticmethod
    def markdown(info: PlotInfo) -> str:
        if info.file:
            return f"![{info.title}]({info.file})"
        return f"*{info.title}: not drawn — {info.absent_reason}.*"


def _dryrun_section(session: Session, plotter: _Plotter) -> list[str]:
    from ftwizard.report.plots import histogram_png

    d = session.dryrun
    out = ["## Dry run", ""]
    if d.verdict is None:
        out.append("No dry run recorded.")
    else:
        figures = [
            f"mean {d.mean:.3f}" if d.mean is not None else None,
            f"std {d.std:.3f}" if d.std is not None else None,
            f"{d.pct_gt0:.1f} % above 0" if d.pct_gt0 is not None else None,
            f"{d.pct_eq1:.1f} % at 1" if d.pct_eq1 is not None else None,
            f"cost ${d.cost_usd:.4f}" if d.cost_usd is not None else None,
        ]
        known = ", ".join(f for f in figures if f)
        out.append(
            f"Verdict **{d.verdict}** on {d.n or 0} graded answers"
            + (f": {known}." if known else ".")
        )
        if d.override_reason:
            out.append(f"\nOverridden: {d.override_reason}")
    histogram = dryrun_histogram(session)
    info = plotter.draw(
        "dryrun-histogram",
        "Dry-run score histogram",
        None
        if histogram is None
        else lambda path: histogram_png(*histogram, path, title="Base model's scores (dry run)"),
        "no dry run has been recorded"
        if d.report_file is None
        else "the dry-run report has no scores",
    )
    out += ["", plotter.markdown(info)]
    return out


def _training_section(session: Session, plotter: _Plotter) -> list[str]:
    from ftwizard.report.plots import curves_png

    t = session.training
    out = ["## Training", ""]
    if t.status is None and not t.metrics:
        out.append("No training run recorded.")
    else:
        out.append(
            f"Status **{t.status or 'unknown'}**; model `{t.fine_tuned_model or '-'}`; "
            f"{len(t.metrics)} metric points, {len(t.checkpoints)} checkpoints."
        )
        if t.error:
            out.append(f"\nError: {t.error}")
    for name, keys, label in (
        ("training-loss", LOSS_KEYS, "loss"),
        ("training-reward", REWARD_KEYS, "reward"),
    ):
        series = metric_series(t.metrics, keys)
        info = plotter.draw(
            name,
            f"Training {label}",
            (
                lambda path, series=series, label=label: curves_png(
                    series, path, title=f"Training {label}", ylabel=label
                )
            )
            if series
            else None,
            "no training metrics have been recorded"
            if not t.metrics
            else f"the training metrics have no {label} values",
        )
        out += ["", plotter.markdown(info)]
    from ftwizard.report.checkpoints import checkpoint_section

    out += ["", *checkpoint_section(session, plotter)]
    return out


def _evaluation_section(session: Session, plotter: _Plotter) -> list[str]:
    from ftwizard.report.plots import intervals_png

    out = ["## Evaluation", ""]
    comparison = load_grader_report(session)
    report = load_pairwise_report(session)
    if comparison is None and report is None:
        out.append("No evaluation recorded.")
    if comparison is not None:
        out += ["### Grader comparison", "", "```", grader_summary(comparison), "```"]
        if comparison.flips:
            out += ["", "| item | flip | base | tuned |", "| --- | --- | --- | --- |"]
            out += [
                f"| {f.item_id} | {f.direction.replace('_', ' ')} | {f.base_score:.2f} | "
                f"{f.tuned_score:.2f} |"
                for f in comparison.flips
            ]
    info = plotter.draw(
        "grader-means",
        "Grader means (95 % intervals)",
        None
        if comparison is None
        else lambda path: intervals_png(
            ["base", "tuned"],
            [comparison.base_mean, comparison.tuned_mean],
            [comparison.base_ci95, comparison.tuned_ci95],
            path,
            title="Mean grader score on held-out rows",
            ylabel="mean score",
        ),
        "no grader comparison has been recorded",
    )
    out += ["", plotter.markdown(info)]
    if report is not None:
        out += ["", "### Blind A/B", "", "```", pairwise_summary(report), "```"]
        if report.disagreements:
            out += ["", "| item | tag | kind | verdicts |", "| --- | --- | --- | --- |"]
            for d in report.disagreements:
                verdicts = "; ".join(
                    f"{judge}: {', '.join(str(v) for v in values)}"
                    for judge, values in d.verdicts.items()
                )
                out.append(f"| {d.item_id} | {d.tag or ''} | {d.kind} | {verdicts} |")

    def win_rates(path: Path) -> Path:
        assert report is not None  # only drawn when there is a report
        judges = list(report.per_judge.values())
        return intervals_png(
            [*(j.judge for j in judges), "all judges"],
            [100 * (j.b_win_rate or 0.0) for j in judges]
            + [100 * (report.counts.b_win_rate or 0.0)],
            [(100 * j.ci95[0], 100 * j.ci95[1]) for j in judges]
            + [(100 * report.counts.ci95[0], 100 * report.counts.ci95[1])],
            path,
            title="Tuned model's win rate (ties count half, 95 % Wilson intervals)",
            ylabel="win rate (%)",
            reference=50.0,
            ylim=(0.0, 100.0),
        )

    info = plotter.draw(
        "win-rates",
        "A/B win rates by judge",
        None if report is None else win_rates,
        "no blind A/B has been recorded",
    )
    out += ["", plotter.markdown(info)]
    return out


def report_markdown(session: Session, folder: Path) -> tuple[str, list[PlotInfo]]:
    """The report's Markdown (plots drawn into ``folder``) and the plots' outcomes."""
    plotter = _Plotter(folder)
    task = session.task
    out = [
        f"# {session.name}",
        "",
        f"Session `{session.id}`, created {session.created:%Y-%m-%d %H:%M} UTC, updated "
        f"{session.updated:%Y-%m-%d %H:%M} UTC; current step: {session.step.value}.",
        "",
        f"**Task**: {task.method.value if task.method else '?'} on "
        f"{task.backend.value if task.backend else '?'} from `{task.base_model or '?'}`.",
        "",
        "## Run summary",
        "",
        run_markdown(entry_for(session)).split("\n", 2)[2],
        "",
    ]
    if session.grader.spec_text:
        out += ["## Grader", "", "```yaml", session.grader.spec_text.rstrip(), "```", ""]
    out += [*_dryrun_section(session, plotter), ""]
    out += [*_training_section(session, plotter), ""]
    deployment = session.deployment
    if deployment.model:
        out += [
            "## Deployment",
            "",
            f"Model `{deployment.model}`"
            + (f" at {deployment.base_url}" if deployment.base_url else "")
            + (f", endpoint {deployment.endpoint}" if deployment.endpoint else "")
            + ".",
            "",
        ]
    from ftwizard.report.checkpoints import identity_lines

    weights = identity_lines(session)
    if weights:
        out += [*weights, ""]
    out += [*_evaluation_section(session, plotter), ""]
    absent = [p for p in plotter.plots if p.absent_reason]
    if absent:
        out += ["## Plots not drawn", ""]
        out += [f"- {p.title}: {p.absent_reason}." for p in absent]
        out.append("")
    return redact("\n".join(out)), plotter.plots


def markdown_to_html(markdown: str, *, title: str) -> str:
    """A standalone HTML page of ``markdown`` (CommonMark with tables)."""
    import html

    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n"
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
        "img{max-width:100%}pre{background:#f5f5f5;padding:.5rem;overflow:auto}\n"
        f"</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def write_report(store: SessionStore, session_id: str) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and the plots into the session's report folder."""
    session = store.load(store.resolve(session_id))
    folder = store.session_dir(session.id) / REPORT_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, folder) from None
    markdown, plots = report_markdown(session, folder)
    md_path = folder / "report.md"
    html_path = folder / "report.html"
    atomic_write_text(md_path, markdown)
    atomic_write_text(html_path, markdown_to_html(markdown, title=session.name))
    return ReportFiles(
        session_id=session.id,
        markdown=str(md_path),
        html=str(html_path),
        plots=[p.model_copy(update={"file": str(folder / p.file)}) if p.file else p for p in plots],
    )
