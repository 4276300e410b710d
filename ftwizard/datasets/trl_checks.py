"""Checks of the standard and conversational formats TRL's trainers read.

TRL documents each type in two formats: standard (plain strings) and conversational (lists of
``{"role", "content"}`` messages). The conversational language-modelling format,
``{"messages": [...]}``, is checked with the chat checks.
"""

from __future__ import annotations

from typing import Any

from ftwizard.datasets.checked import Checked
from ftwizard.datasets.openai_checks import text_of
from ftwizard.datasets.problems import Code

_STRING_OR_MESSAGES = "a non-empty string or a non-empty list of messages"


def _as_turns(value: Any, role: str) -> list[dict[str, Any]] | None:
    """A field as messages: a string is one turn of ``role``; ``None`` when it is neither."""
    if isinstance(value, str):
        return [{"role": role, "content": value}] if value else None
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        return list(value)
    return None


def _field_turns(data: dict[str, Any], key: str, role: str, out: Checked) -> list[dict[str, Any]]:
    if key not in data:
        out.errors.append((Code.MISSING_FIELD, f'missing "{key}"; add it ({_STRING_OR_MESSAGES})'))
        return []
    turns = _as_turns(data[key], role)
    if turns is None:
        out.errors.append((Code.INVALID_FIELD, f'"{key}" must be {_STRING_OR_MESSAGES}'))
        return []
    for i, m in enumerate(turns, start=1):
        if not isinstance(m.get("role"), str) or "content" not in m:
            out.errors.append(
                (Code.MESSAGE_MISSING_KEY, f'"{key}" message {i} needs "role" and "content"')
            )
    return turns


def _same_style(data: dict[str, Any], keys: tuple[str, ...], out: Checked) -> None:
    kinds = {isinstance(data[k], str) for k in keys if k in data}
    if len(kinds) > 1:
        out.errors.append(
            (
                Code.INVALID_FIELD,
                f"{', '.join(keys)} mix strings and message lists; TRL reads one format per "
                "example: all strings (standard) or all message lists (conversational)",
            )
        )


def check_prompt_completion(data: dict[str, Any], out: Checked) -> None:
    """``{"prompt", "completion"}``, standard or conversational."""
    prompt = _field_turns(data, "prompt", "user", out)
    completion = _field_turns(data, "completion", "assistant", out)
    _same_style(data, ("prompt", "completion"), out)
    out.messages = prompt + completion
    if completion:
        out.answer = text_of(completion[-1].get("content"))


def check_prompt_only(data: dict[str, Any], out: Checked) -> None:
    """``{"prompt"}``, standard or conversational: online methods (GRPO) sample the answer."""
    prompt = _field_turns(data, "prompt", "user", out)
    if prompt and prompt[-1].get("role") == "assistant":
        out.warnings.append(
            (
                Code.LAST_MESSAGE_NOT_USER,
                "the prompt ends with an assistant message; the model answers after it",
            )
        )
    out.messages = prompt


def check_text(data: dict[str, Any], out: Checked) -> None:
    """``{"text"}``: TRL's standard language-modelling format, trained on the whole text."""
    text = data.get("text")
    if not isinstance(text, str) or not text:
        out.errors.append((Code.INVALID_FIELD, '"text" must be a non-empty string'))
        return
    out.messages = [{"role": "assistant", "content": text}]
    out.answer = text


def implicit_prompt(chosen: list[Any] | str, rejected: list[Any] | str) -> tuple[Any, Any, Any]:
    """Split an implicit-prompt pair into (prompt, chosen, rejected) at their common start.

    This is how TRL's ``extract_prompt`` does it: the longest shared prefix (of messages, or
    of characters for strings, less a space before the split) is the prompt.
    """
    end = 0
    for end in range(min(len(chosen), len(rejected))):
        if chosen[end] != rejected[end]:
            if isinstance(chosen, str) and end and chosen[end - 1] == " ":
                end -= 1
            break
    else:
        end = min(len(chosen), len(rejected))
    return chosen[:end], chosen[end:], rejected[end:]


def check_trl_dpo(data: dict[str, Any], out: Checked) -> None:
    """``{"prompt"?, "chosen", "rejected"}``, standard or conversational, prompt implicit or not."""
    explicit = "prompt" in data
    prompt = _field_turns(data, "prompt", "user", out) if explicit else []
    chosen = _field_turns(data, "chosen", "assistant", out)
    rejected = _field_turns(data, "rejected", "assistant", out)
    _same_style(data, ("prompt", "chosen", "rejected"), out)
    if not explicit and chosen and rejected:
        shared, chosen_tail, rejected_tail = implicit_prompt(data["chosen"], data["rejected"])
        if not shared:
            out.errors.append(
                (
                    Code.MISSING_FIELD,
                    'no "prompt", and "chosen" and "rejected" share no beginning to take it '
                    'from; add "prompt" or start both with the same conversation',
                )
            )
        elif not chosen_tail or not rejected_tail:
            out.errors.append(
                (Code.INVALID_FIELD, '"chosen" and "rejected" must differ after the prompt')
            )
        prompt = _as_turns(shared, "user") or []
        chosen = _as_turns(chosen_tail, "assistant") or []
        rejected = _as_turns(rejected_tail, "assistant") or []
    if chosen:
        out.answer = text_of(chosen[-1].get("content"))
    out.messages = prompt + chosen + rejected
