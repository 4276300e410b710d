"""Model output made safe to show in one table cell."""

from __future__ import annotations

import unicodedata


def one_line(text: str | None, width: int) -> str:
    """``text`` on one line, control characters replaced, cut to ``width`` with an ellipsis.

    Model answers can hold anything (an untrained model emits raw control bytes); a table cell
    and a screenshot must not.
    """
    cleaned = "".join(
        "�" if unicodedata.category(ch) in ("Cc", "Cs") and not ch.isspace() else ch
        for ch in text or ""
    )
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
