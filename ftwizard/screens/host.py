"""What a screen needs from the app that hosts it.

Screens talk to the wizard through this protocol rather than importing ``ftwizard.app``, so
imports point one way: the app imports its screens, never the reverse.
"""

from __future__ import annotations

from typing import Any, Protocol

from ftwizard.session import Session, StepId
from ftwizard.store import SessionStore


class WizardHost(Protocol):
    """The app as its screens see it: the store, the open session and how to move between steps."""

    store: SessionStore
    session: Session | None
    allow_spend: bool

    @property
    def available_steps(self) -> frozenset[StepId]:
        """The steps this version of ftwizard has screens for."""
        ...

    def create_session(self, name: str | None) -> None:
        """Create a session and open its first step."""
        ...

    def open_session(self, session_id: str, *, exit_on_error: bool = False) -> None:
        """Open a saved session at its current step."""
        ...

    def save_session(self) -> None:
        """Save the open session."""
        ...

    def journal(self, action: dict[str, Any], *, screen: str) -> None:
        """Record a user's decision in the session's journal and save."""
        ...

    def go_to(self, step: StepId) -> None:
        """Show the screen of ``step``."""
        ...

    def go_back(self, step: StepId) -> None:
        """Return to an earlier step's screen."""
        ...
