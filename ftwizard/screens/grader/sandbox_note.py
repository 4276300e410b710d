"""The grader step's sandbox note: what a python grader's process is kept from on this machine."""

from __future__ import annotations

from textual import work
from textual.widgets import Static

from ftwizard.graders.sandbox import SandboxReport
from ftwizard.screens.step import StepScreen


class SandboxNoteMixin(StepScreen):
    """Fills ``#grader-sandbox`` once, the first time the script style is shown."""

    _sandbox_noted = False

    def show_sandbox_note(self) -> None:
        """Say what this platform enforces; probing starts one worker, so it runs in a thread."""
        if self._sandbox_noted:
            return
        self._sandbox_noted = True
        self.query_one("#grader-sandbox", Static).update("Checking what the sandbox enforces...")
        self._probe_sandbox()

    @work(thread=True, exclusive=True, group="grader-sandbox", exit_on_error=False)
    def _probe_sandbox(self) -> None:
        from ftwizard.graders.sandbox import probe

        try:
            report = probe()
        except OSError as exc:  # no worker could start: say so rather than claim protections
            self.app.call_from_thread(self._sandbox_failed, str(exc))
            return
        self.app.call_from_thread(self._sandbox_known, report)

    def _sandbox_known(self, report: SandboxReport) -> None:
        self.query_one("#grader-sandbox", Static).update("\n".join(report.lines()))

    def _sandbox_failed(self, reason: str) -> None:
        self.query_one("#grader-sandbox", Static).update(
            f"Python graders cannot start on this machine: {reason}"
        )
