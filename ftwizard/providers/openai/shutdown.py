"""When OpenAI stops serving a fine-tuning base model (and the fine-tunes built on it).

Dated table, as published (sources in ../shared/research/world-2026-12.md): OpenAI accepts no
new fine-tuning jobs from 2027-01-06 (``catalog.OPENAI_FINE_TUNING_CUTOFF``); the bases that
could still be tuned, gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini, shut down on 2027-01-14
with every fine-tune built on them; o4-mini (the only RFT base), gpt-4.1-nano, gpt-4 and
gpt-3.5-turbo shut down on 2026-10-23.
``GET /v1/models`` carries ``shutdown_date`` in OpenAI's 2026-08 spec; where it does, that
date wins over the table.
"""

from __future__ import annotations

import re
from datetime import date

from ftwizard.catalog import OPENAI_FINE_TUNING_CUTOFF

TABLE_AS_OF = "2026-12"
BASE_SHUTDOWN: dict[str, date] = {
    "gpt-4o": date(2027, 1, 14),
    "gpt-4o-mini": date(2027, 1, 14),
    "gpt-4.1": date(2027, 1, 14),
    "gpt-4.1-mini": date(2027, 1, 14),
    # Already gone: listed so an import or a listing says so instead of "unknown".
    "o4-mini": date(2026, 10, 23),
    "gpt-4.1-nano": date(2026, 10, 23),
    "gpt-4": date(2026, 10, 23),
    "gpt-3.5-turbo": date(2026, 10, 23),
}
NO_NEW_JOBS_FROM = OPENAI_FINE_TUNING_CUTOFF
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def base_of(model: str) -> str:
    """The base family of a model id: ``ft:gpt-4.1-mini-2025-04-14:org::id`` -> ``gpt-4.1-mini``."""
    name = model.split(":")[1] if model.startswith("ft:") and ":" in model[3:] else model
    return _SNAPSHOT.sub("", name)


def table_shutdown(model: str) -> date | None:
    """The dated table's shutdown of ``model`` (a base, a snapshot or a fine-tune), or None."""
    return BASE_SHUTDOWN.get(base_of(model))


def shutdown_date(model: str, served: dict[str, date | None] | None = None) -> date | None:
    """The shutdown of ``model``: ``GET /v1/models``' date for it or its base when it has one,
    else the dated table."""
    served = served or {}
    for name in (model, model.split(":")[1] if model.startswith("ft:") else model):
        if served.get(name) is not None:
            return served[name]
    return table_shutdown(model)


def parse_models(data: list[dict[str, object]]) -> dict[str, date | None]:
    """``{id: shutdown_date}`` from the ``data`` of ``GET /v1/models`` (None: not announced)."""
    out: dict[str, date | None] = {}
    for model in data:
        value = model.get("shutdown_date")
        try:
            out[str(model.get("id"))] = date.fromisoformat(str(value)) if value else None
        except ValueError:
            out[str(model.get("id"))] = None
    return out


__all__ = [
    "BASE_SHUTDOWN",
    "NO_NEW_JOBS_FROM",
    "TABLE_AS_OF",
    "base_of",
    "parse_models",
    "shutdown_date",
    "table_shutdown",
]
