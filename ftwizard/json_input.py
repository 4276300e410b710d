"""Decoding JSON a user gave us, with the two failures :mod:`json` does not report as bad JSON.

``json.loads`` raises :class:`RecursionError` (not a ``ValueError``) on deeply nested input
such as 100,000 nested arrays, and accepts a lone UTF-16 surrogate (``"\\ud800"``), which no
UTF-8 file can hold, so it only fails much later when the text is written. Every reader of
user files (data lines, grader files, session files) decodes through here so both become an
ordinary :class:`ValueError` whose message says what to fix.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONInputError(ValueError):
    """JSON text that parses by the grammar but cannot be used; ``field`` is where, if known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


TOO_DEEP = "JSON nested too deeply to read; flatten the structure (Python reads about 1,000 levels)"


def loads(text: str | bytes) -> Any:
    """``json.loads`` that reports too-deep nesting and lone surrogates as :class:`JSONInputError`.

    Other malformed JSON raises :class:`json.JSONDecodeError` as usual.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONInputError(TOO_DEEP) from None
    check_surrogates(text, value)
    return value


def check_surrogates(text: str | bytes, value: Any) -> None:
    """Raise :class:`JSONInputError` naming the field when ``value`` holds a lone surrogate.

    ``text`` is what ``value`` was decoded from; a quick look at it skips the walk in the
    common case (a pair like ``\\ud83d\\ude00`` decodes to one character and is fine).
    """
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if not _SURROGATE_ESCAPE.search(raw):
        return
    where = _surrogate_field(value, "")
    if where is not None:
        raise JSONInputError(
            "holds a lone UTF-16 surrogate (an escape like \\ud800 without its pair), which "
            "UTF-8 cannot store; remove it or write the whole character",
            field=where or None,
        )


def _surrogate_field(value: Any, path: str) -> str | None:
    # Iterative, so a deep structure that json accepted cannot overflow the stack here.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return where
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None
