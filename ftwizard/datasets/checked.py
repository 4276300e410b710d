"""What checking one example found: the problems and what later steps need from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftwizard.datasets.problems import Code


@dataclass(slots=True)
class Checked:
    """What checking one example found, and what later steps need from it."""

    errors: list[tuple[Code, str]] = field(default_factory=list)
    warnings: list[tuple[Code, str]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    """Chat-style messages to count tokens on (for DPO: input plus both outputs)."""
    answer: str | None = None
    """The final assistant/model answer, for short-answer and imbalance warnings."""
    texts: list[str] | None = None
    """When the check already collected them: the strings the cookbook counts tokens of."""
    overhead: int = 0
    """With ``texts``: the cookbook's fixed tokens (3 per message, 3 per example)."""


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "object"
