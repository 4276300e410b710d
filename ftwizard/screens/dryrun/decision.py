"""The dry-run screen's decision panel: acknowledge or override the verdict, drop flat prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input, Static

from ftwizard.dryrun.report import DryRunReport
from ftwizard.errors import FtwizardError
from ftwizard.session import Session


class DecisionPanel:
    """Records the user's decision (mixed into :class:`DryRunScreen`)."""

    report: DryRunReport | None
    session: Session
    wizard: Any
    screen_name: str
    query_one: Any
    notify: Any
    refresh_frame: Any
    _show_report: Any
    show_outcome: Any
    _decision_control: Any

    def _acknowledge(self) -> None:
        section = self.session.dryrun
        reason = self.query_one("#dryrun-override-reason", Input).value.strip()
        if section.verdict == "NO-GO" and not reason:
            self.notify("Write why you override the NO-GO; the session records it.")
            return

        def apply(session: Session) -> bool:
            if session.dryrun.acknowledged:
                return False
            session.dryrun.acknowledged = True
            session.dryrun.override_reason = reason or None
            return True

        if apply(self.session):
            action: dict[str, Any] = {"press": "dryrun-proceed"}
            if reason:
                self.wizard.journal(
                    {"set": {"dryrun-override-reason": reason}}, screen=self.screen_name
                )
            self.wizard.journal(action, screen=self.screen_name)
        if self.report is not None:
            self._show_report(self.report)
        self.refresh_frame()
        # Answered: the next decision is Next, not the button that just went away.
        self.show_outcome(self.query_one("#dryrun-verdict"), self._decision_control())

    def _drop_flat(self) -> None:
        """Write the training data without the always- and never-solved prompts, as a new file."""
        from ftwizard.dryrun.groups import drop_prompts

        report = self.report
        if report is None or report.groups is None:
            return
        flat = report.groups.always_solved + report.groups.never_solved
        if not flat:
            self.notify("Every sampled prompt's answers score differently: nothing to drop.")
            return
        src = Path(report.data)
        out = self.wizard.store.artifacts_dir(self.session.id) / f"{src.stem}.signal{src.suffix}"
        try:
            if out.exists():
                out.unlink()  # our own earlier output, never the user's file
            kept = drop_prompts(src, flat, out)
        except (FtwizardError, OSError) as exc:
            self.notify(str(exc), title="Cannot write the new dataset", severity="error")
            return
        self.query_one("#dryrun-live", Static).update(
            f"Wrote {out}: {kept} rows, without {len(flat)} always/never-solved prompts; "
            f"{src} is unchanged."
        )
