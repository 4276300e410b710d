"""How the dataset screen's widgets change the session (Textual-free)."""

from __future__ import annotations

from typing import Any

from ftwizard.session import Session

# Transforms run in this order whatever order they were switched on in, so the same choices
# always give the same file.
_TRANSFORM_ORDER = (
    "fold_assistant_turns",
    "drop_system_prompt",
    "replace_system_prompt",
    "append_stop_marker",
    "top_k",
    "drop_duplicates",
)


def set_choice(session: Session, **changes: Any) -> bool:
    """Change dataset choices; the last result no longer applies, so it is dropped."""
    choice = session.dataset.choice
    if all(getattr(choice, key) == value for key, value in changes.items()):
        return False
    session.dataset.choice = choice.model_copy(update=changes)
    session.dataset.result = None
    return True


def set_transform(session: Session, kind: str, spec: dict[str, Any] | None) -> bool:
    """Add, replace or (``spec`` None) remove the transform of ``kind``."""
    current = session.dataset.choice.transforms
    kept = [t for t in current if t["kind"] != kind]
    updated = [*kept, spec] if spec is not None else kept
    updated.sort(key=lambda t: _TRANSFORM_ORDER.index(t["kind"]))
    if updated == current:
        return False
    return set_choice(session, transforms=updated)


def set_distill(session: Session, **changes: Any) -> bool:
    """Change distill settings; the dataset's last check still applies (nothing ran yet)."""
    choice = session.dataset.distill
    if all(getattr(choice, key) == value for key, value in changes.items()):
        return False
    session.dataset.distill = choice.model_copy(update=changes)
    return True
