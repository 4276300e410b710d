"""The dataset screen's Problems tab: every problem of the last check, by line."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, Switch

from ftwizard.datasets.validation import ValidationReport
from ftwizard.screens.step import StepScreen

_MAX_PROBLEM_ROWS = 500


class ProblemsTab(StepScreen):
    """The Problems tab's part of :class:`DatasetScreen` (a mixin of it)."""

    def compose_problems(self) -> ComposeResult:
        """The drop-invalid switch and the table of problems."""
        with Horizontal(classes="row"):
            yield Switch(id="drop-invalid")
            yield Label("Drop invalid lines and train on a cleaned copy", classes="switch")
        yield DataTable(id="problems", cursor_type="row", zebra_stripes=True)

    def _mount_problems(self) -> None:
        problems = self.query_one("#problems", DataTable)
        # Fixed widths, as in every table: see welcome.py.
        # The file first: with a validation file, one table lists the problems of both.
        problems.add_column("File", key="file", width=18)
        problems.add_column("Line", key="line", width=7)
        problems.add_column("Kind", key="severity", width=7)
        problems.add_column("Code", key="code", width=33)
        problems.add_column("Message", key="message", width=120)

    def _show_problems(self, report: ValidationReport) -> None:
        problems = self.query_one("#problems", DataTable)
        problems.clear()
        rows = [(Path(report.path).name, p) for p in (*report.errors, *report.warnings)]
        if report.validation is not None:
            name = Path(report.validation.path).name
            rows += [(name, p) for p in (*report.validation.errors, *report.validation.warnings)]
        for index, (file_name, problem) in enumerate(rows[:_MAX_PROBLEM_ROWS]):
            style = "red" if problem.severity.value == "error" else "yellow"
            problems.add_row(
                file_name,
                problem.line if problem.line is not None else "-",
                Text(problem.severity.value, style=style),
                problem.code.value,
                problem.message,
                key=f"p{index}",
            )
        if len(rows) > _MAX_PROBLEM_ROWS:
            problems.add_row("", "", "", "", f"... and {len(rows) - _MAX_PROBLEM_ROWS} more")


def checked_text(report: ValidationReport) -> str:
    """What the check found, per file, counted as the Problems table lists it."""

    def one(r: ValidationReport) -> str:
        errors, warnings = len(r.errors), len(r.warnings)
        return (
            f"{errors} error{'' if errors == 1 else 's'}, "
            f"{warnings} warning{'' if warnings == 1 else 's'} in {Path(r.path).name}"
        )

    parts = [one(report)] + ([one(report.validation)] if report.validation else [])
    return "Checked: " + "; ".join(parts) + "."
