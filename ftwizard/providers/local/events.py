"""The JSON-lines log a local training worker writes and the app follows.

One event per line, appended and flushed as it happens, so a reader can tail the file from a
byte offset at any time (even while the worker writes, even after the app restarted):

- ``start``: the worker is up (pid, device, model, dataset sizes, trainable parameters);
- ``metrics``: one logging dict from the trainer (loss, learning_rate, eval_loss, reward, ...);
- ``checkpoint``: a checkpoint was saved, with the latest metrics at its step;
- ``error``: training failed, with the message and the tail of the traceback;
- ``cancelled``: the run stopped early because it was asked to;
- ``done``: training finished, with the final metrics and the adapter folder.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EventKind = Literal["start", "metrics", "checkpoint", "error", "cancelled", "done"]
TERMINAL_EVENTS: frozenset[str] = frozenset({"error", "cancelled", "done"})


class TrainingEvent(BaseModel):
    """One line of the worker's log."""

    model_config = ConfigDict(extra="allow")

    event: EventKind
    time: float = Field(default_factory=time.time)
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    path: str | None = None
    message: str | None = None
    traceback: str | None = None


def clean_metrics(logs: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite entries of a trainer logging dict (JSON has no NaN)."""
    out: dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class EventLog:
    """Appends events to a JSON-lines file; each line is flushed before ``write`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Line-buffered text mode: every event reaches the file as one whole line.
        self._file = path.open("a", encoding="utf-8", buffering=1)

    def write(self, event: TrainingEvent) -> None:
        """Append ``event`` as one line."""
        self._file.write(event.model_dump_json(exclude_none=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read_events(path: Path, offset: int = 0) -> tuple[list[TrainingEvent], int]:
    """Events from byte ``offset`` on, and the offset to read from next time.

    A last line without its newline is being written right now: it is left for the next call.
    A line that is not a valid event (a torn write after a crash) is skipped.
    """
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events: list[TrainingEvent] = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            events.append(TrainingEvent.model_validate(json.loads(raw)))
        except (ValueError, ValidationError):
            continue
    return events, offset + end + 1


__all__ = [
    "TERMINAL_EVENTS",
    "EventKind",
    "EventLog",
    "TrainingEvent",
    "clean_metrics",
    "read_events",
]
