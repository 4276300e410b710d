"""Ledger lines for scored checkpoints: one per checkpoint and score, beside the run's entry."""

from __future__ import annotations

from ftwizard.ledger.checkpoint_entry import CheckpointEntry, checkpoint_entries
from ftwizard.ledger.store import _append, read_lines, record_session
from ftwizard.session import Session
from ftwizard.store import SessionStore


def record_checkpoints(store: SessionStore, session: Session) -> list[CheckpointEntry]:
    """Append a line per scored checkpoint whose score is not in the ledger yet, and the
    run's own entry (which names the chosen checkpoint); return the lines appended."""
    record_session(store, session)
    known = [line for line in read_lines(store) if isinstance(line, CheckpointEntry)]
    added: list[CheckpointEntry] = []
    for entry in checkpoint_entries(session):
        if not any(entry.same_facts(line) for line in known):
            _append(store, entry)
            added.append(entry)
    return added


def checkpoint_lines(store: SessionStore, key: str) -> list[CheckpointEntry]:
    """The ledger's checkpoint lines of run ``key``, the latest per checkpoint, in step order."""
    latest: dict[str, CheckpointEntry] = {}
    for line in read_lines(store):
        if isinstance(line, CheckpointEntry) and line.key == key:
            latest[line.checkpoint] = line
    return sorted(latest.values(), key=lambda e: (e.step or 0, e.checkpoint))


__all__ = ["checkpoint_entries", "checkpoint_lines", "record_checkpoints"]
