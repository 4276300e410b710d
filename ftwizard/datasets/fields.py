"""Reading a field of an example by its dotted path (``metadata.topic``, ``messages.0.content``)."""

from __future__ import annotations

from typing import Any


def field_value(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` in an example (``None`` when absent)."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
