"""The lines the deploy and evaluate steps show about what is in use: the weights' digest (or
hosted id), a choice other than the best checkpoint, and any file changed since evaluation."""

from __future__ import annotations

from rich.text import Text

from ftwizard.session import Session


def evidence_text(session: Session) -> Text:
    """Styled lines (empty when there is nothing to say)."""
    from ftwizard.identity import identity_flags
    from ftwizard.training.choice import choice_note

    text = Text()
    identity = session.deployment.identity
    if identity is not None:
        text.append(f"\nWeights {identity.label()}")
        if identity.merged_sha256:
            text.append(f", merged sha256 {identity.merged_sha256[:12]}")
    note = choice_note(session)
    if note:
        text.append(f"\n{note}", style="bold yellow")
    for flag in identity_flags(session):
        text.append(f"\nCHANGED: {flag}", style="bold red")
    return text


__all__ = ["evidence_text"]
