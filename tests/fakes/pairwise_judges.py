"""Scripted pairwise judges with known behaviour, as ``reply_fn`` for either fake.

Each reads the judge prompt ftwizard sends (``[Response A]`` / ``[Response B]`` sections and an
optional ``[Reference answer]``) from the request body and answers with the JSON verdict.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\n", re.MULTILINE)


def judge_prompt(body: dict[str, Any]) -> str:
    """The last user message of an Anthropic ``params`` or an OpenAI chat body."""
    for message in reversed(body["messages"]):
        if message.get("role") == "user":
            content = message["content"]
            return content if isinstance(content, str) else json.dumps(content)
    raise AssertionError("no user message in the judge request")


def sections(prompt: str) -> dict[str, str]:
    """``{"Response A": text, "Response B": text, "Reference answer": text, ...}``."""
    marks = list(_SECTION.finditer(prompt))
    out = {}
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        end = nxt.start() if nxt is not None else len(prompt)
        out[mark.group("name")] = prompt[mark.end() : end].strip()
    # The question after Response B is not part of its text.
    if "Response B" in out:
        out["Response B"] = out["Response B"].split("\n\nWhich response is better?")[0].strip()
    return out


def verdict(winner: str, reason: str = "scripted") -> str:
    """The JSON a judge answers with."""
    return json.dumps({"winner": winner, "reason": reason})


def first_position_judge(body: dict[str, Any]) -> str:
    """Always prefers whatever is shown first."""
    return verdict("A", "the first one")


def fair_judge(body: dict[str, Any]) -> str:
    """Prefers the response containing the reference answer; a tie when both or neither do."""
    parts = sections(judge_prompt(body))
    label = parts["Reference answer"]
    a_ok = label in parts["Response A"]
    b_ok = label in parts["Response B"]
    if a_ok == b_ok:
        return verdict("tie")
    return verdict("A" if a_ok else "B", "contains the reference")
