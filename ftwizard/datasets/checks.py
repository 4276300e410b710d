"""Per-example checks for every dataset format.

One function per format checks an example and reports ``(code, message)`` pairs; messages say
how to fix the problem. The checks include every check of OpenAI's cookbook notebook
(Chat_finetuning_data_prep.ipynb) under the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftwizard.datasets.formats import CHAT_TOP_KEYS, SHAPES, DatasetFormat
from ftwizard.datasets.problems import Code
from ftwizard.datasets.tokens import TOKENS_PER_EXAMPLE, TOKENS_PER_MESSAGE

_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"}
)
_CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
_RFT_ROLES = frozenset({"developer", "user", "assistant", "tool"})
_KNOWN_ROLES = _CHAT_ROLES | _RFT_ROLES
_GEMINI_TOP_KEYS = frozenset({"contents", "systemInstruction", "system_instruction"})
_GEMINI_ROLES = frozenset({"user", "model"})
_GEMINI_PART_KEYS = frozenset(
    {
        "text",
        "fileData",
        "file_data",
        "inlineData",
        "inline_data",
        "functionCall",
        "functionResponse",
        "function_call",
        "function_response",
    }
)


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


def check_example(data: Any, fmt: DatasetFormat) -> Checked:
    """Check one parsed example against ``fmt``."""
    out = Checked()
    if not isinstance(data, dict):
        out.errors.append(
            (
                Code.DATA_TYPE,
                f"example is a JSON {_json_type(data)}, not an object; "
                f"write each example as one JSON object ({SHAPES[fmt]})",
            )
        )
        return out
    _CHECKERS[fmt](data, out)
    return out


def _json_type(value: Any) -> str:
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


def _check_messages(
    messages: Any, out: Checked, *, roles: frozenset[str], where: str, fmt_name: str
) -> list[dict[str, Any]]:
    """Cookbook message checks; returns the messages that are objects."""
    if not isinstance(messages, list):
        out.errors.append(
            (
                Code.MISSING_MESSAGES_LIST,
                f'{where} is missing or not a list; add "messages": [{{"role": "user", '
                f'"content": "..."}}, ...]',
            )
        )
        return []
    if not messages:
        out.errors.append((Code.EMPTY_MESSAGES, f"{where} is empty; add at least one message"))
        return []
    good: list[dict[str, Any]] = []
    for i, message in enumerate(messages, start=1):
        # fast path for the common {"role", "content"} message, which passes every check below
        if (
            type(message) is dict
            and len(message) == 2
            and message.get("role") in roles
            and type(message.get("content")) is str
            and message["content"]
        ):
            good.append(message)
            continue
        if not isinstance(message, dict):
            out.errors.append(
                (
                    Code.MESSAGE_DATA_TYPE,
                    f"message {i} is a JSON {_json_type(message)}; write it as an object "
                    '{"role": ..., "content": ...}',
                )
            )
            continue
        good.append(message)
        role = message.get("role")
        has_call = bool(message.get("tool_calls") or message.get("function_call"))
        if "role" not in message or ("content" not in message and not has_call):
            missing = "role" if "role" not in message else "content"
            out.errors.append((Code.MESSAGE_MISSING_KEY, f'message {i} has no "{missing}"; add it'))
        unknown = [k for k in message if k not in _MESSAGE_KEYS]
        if unknown:
            out.errors.append(
                (
                    Code.MESSAGE_UNRECOGNIZED_KEY,
                    f"message {i} has unrecognized key(s) {', '.join(map(repr, sorted(unknown)))}; "
                    f"remove them (allowed: {', '.join(sorted(_MESSAGE_KEYS))})",
                )
            )
        if "role" in message:
            if role not in _KNOWN_ROLES:
                out.errors.append(
                    (
                        Code.UNRECOGNIZED_ROLE,
                        f"message {i} has unrecognized role {role!r}; use one of "
                        f"{', '.join(sorted(roles))}",
                    )
                )
            elif role not in roles:
                hint = {
                    "system": 'use "developer" instead',
                    "developer": 'use "system" instead',
                }.get(str(role), f"use one of {', '.join(sorted(roles))}")
                out.errors.append(
                    (
                        Code.ROLE_NOT_ALLOWED,
                        f"message {i}: {fmt_name} does not accept role {role!r}; {hint}",
                    )
                )
        if "content" in message:
            content = message["content"]
            if isinstance(content, str):
                if not content and not has_call:
                    out.errors.append(
                        (Code.MISSING_CONTENT, f"message {i} has empty content; write the text")
                    )
            elif isinstance(content, list):
                if not content or not all(isinstance(p, dict) and "type" in p for p in content):
                    out.errors.append(
                        (
                            Code.MISSING_CONTENT,
                            f"message {i} content is a list but not of parts like "
                            '{"type": "text", "text": ...}; use a string',
                        )
                    )
            elif not (content is None and has_call):
                out.errors.append(
                    (
                        Code.MISSING_CONTENT,
                        f"message {i} content is a JSON {_json_type(content)}; it must be a string",
                    )
                )
        if "weight" in message:
            weight = message["weight"]
            if role != "assistant" or weight not in (0, 1) or isinstance(weight, bool):
                out.errors.append(
                    (
                        Code.INVALID_WEIGHT,
                        f'message {i}: "weight" must be 0 or 1 and only on assistant messages',
                    )
                )
    return good


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    return None


def _check_unknown_top(data: dict[str, Any], allowed: frozenset[str], out: Checked) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        out.warnings.append(
            (
                Code.UNRECOGNIZED_KEY,
                f"unrecognized key(s) {', '.join(map(repr, sorted(unknown)))} are ignored by "
                f"training; remove them (allowed: {', '.join(sorted(allowed))})",
            )
        )


def _check_tools(data: dict[str, Any], out: Checked) -> None:
    if "tools" in data and not (
        isinstance(data["tools"], list) and all(isinstance(t, dict) for t in data["tools"])
    ):
        out.errors.append(
            (
                Code.INVALID_TOOLS,
                '"tools" must be a list of tool objects {"type": "function", "function": {...}}',
            )
        )


def _chat_warnings(messages: list[dict[str, Any]], out: Checked, *, system: str) -> None:
    _role_warnings({m.get("role") for m in messages}, out, system=system)


def _role_warnings(roles: set[Any], out: Checked, *, system: str) -> None:
    if system not in roles:
        out.warnings.append(
            (
                Code.MISSING_SYSTEM_MESSAGE,
                f"no {system} message; add one if you will use a {system} prompt at inference",
            )
        )
    if "user" not in roles:
        out.warnings.append((Code.MISSING_USER_MESSAGE, "no user message"))


def _check_plain_chat(raw: list[Any], out: Checked) -> bool:
    """One pass for the common case: every message is ``{"role", "content"}`` with text.

    Returns False (having changed nothing) when any message needs the full checks.
    """
    texts: list[str] = []
    roles: set[str] = set()
    answer = None
    for m in raw:
        if type(m) is not dict or len(m) != 2:
            return False
        role, content = m.get("role"), m.get("content")
        if role not in _CHAT_ROLES or type(content) is not str or not content:
            return False
        roles.add(role)
        texts.append(role)
        texts.append(content)
        if role == "assistant":
            answer = content
    if answer is None:
        out.errors.append(_MISSING_ASSISTANT)
    out.answer = answer
    _role_warnings(roles, out, system="system")
    out.messages = raw
    out.texts = texts
    out.overhead = TOKENS_PER_EXAMPLE + TOKENS_PER_MESSAGE * len(raw)
    return True


_MISSING_ASSISTANT = (
    Code.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
    "no assistant message; add the answer the model should learn as "
    '{"role": "assistant", "content": ...}',
)


def _check_chat(data: dict[str, Any], out: Checked) -> None:
    raw = data.get("messages")
    if type(raw) is list and raw and len(data) == 1 and _check_plain_chat(raw, out):
        return
    messages = _check_messages(raw, out, roles=_CHAT_ROLES, where='"messages"', fmt_name="chat SFT")
    if "tools" in data:
        _check_tools(data, out)
    if len(data) > 1:
        _check_unknown_top(data, CHAT_TOP_KEYS, out)
    if isinstance(raw, list) and raw:
        roles = set()
        last_answer = None
        for m in messages:
            role = m.get("role")
            roles.add(role)
            if role == "assistant":
                last_answer = m
        if last_answer is None:
            out.errors.append(_MISSING_ASSISTANT)
        else:
            out.answer = _text_of(last_answer.get("content"))
        _role_warnings(roles, out, system="system")
    out.messages = messages


def _check_trl(data: dict[str, Any], out: Checked) -> None:
    _check_chat(data, out)


def _check_rft(data: dict[str, Any], out: Checked) -> None:
    messages = _check_messages(
        data.get("messages"), out, roles=_RFT_ROLES, where='"messages"', fmt_name="OpenAI RFT"
    )
    _check_tools(data, out)
    if messages and messages[-1].get("role") != "user":
        out.warnings.append(
            (
                Code.LAST_MESSAGE_NOT_USER,
                "the last message is not from the user; RFT samples the model's answer to it",
            )
        )
    out.messages = messages


def _check_output(data: dict[str, Any], key: str, out: Checked) -> list[dict[str, Any]]:
    value = data.get(key)
    if key not in data:
        return []
    ok = (
        isinstance(value, list)
        and len(value) == 1
        and isinstance(value[0], dict)
        and value[0].get("role") == "assistant"
        and isinstance(value[0].get("content"), str)
        and value[0]["content"] != ""
    )
    if not ok:
        out.errors.append(
            (
                Code.INVALID_PREFERENCE_OUTPUT,
                f'"{key}" must be a list of exactly one message '
                '[{"role": "assistant", "content": "..."}] with non-empty text',
            )
        )
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
    return list(value)


def _check_dpo(data: dict[str, Any], out: Checked) -> None:
    for key in ("input", "preferred_output", "non_preferred_output"):
        if key not in data:
            out.errors.append(
                (
                    Code.MISSING_FIELD,
                    f'missing "{key}"; DPO examples need '
                    "input, preferred_output and non_preferred_output",
                )
            )
    messages: list[dict[str, Any]] = []
    inp = data.get("input")
    if "input" in data:
        if not isinstance(inp, dict):
            out.errors.append((Code.INVALID_FIELD, '"input" must be an object {"messages": [...]}'))
        else:
            messages = _check_messages(
                inp.get("messages"),
                out,
                roles=_CHAT_ROLES,
                where='"input.messages"',
                fmt_name="OpenAI DPO",
            )
            _check_tools(inp, out)
            if messages:
                _chat_warnings(messages, out, system="system")
    preferred = _check_output(data, "preferred_output", out)
    rejected = _check_output(data, "non_preferred_output", out)
    if preferred and isinstance(preferred[0].get("content"), str):
        out.answer = preferred[0]["content"]
    _check_unknown_top(data, frozenset({"input", "preferred_output", "non_preferred_output"}), out)
    out.messages = messages + preferred + rejected


def _check_gemini(data: dict[str, Any], out: Checked) -> None:
    contents = data.get("contents")
    messages: list[dict[str, Any]] = []
    if not isinstance(contents, list):
        out.errors.append(
            (
                Code.MISSING_MESSAGES_LIST,
                '"contents" is missing or not a list; add "contents": [{"role": "user", '
                '"parts": [{"text": "..."}]}, ...]',
            )
        )
    elif not contents:
        out.errors.append((Code.EMPTY_MESSAGES, '"contents" is empty; add user and model turns'))
    else:
        answer = None
        for i, turn in enumerate(contents, start=1):
            if not isinstance(turn, dict):
                out.errors.append(
                    (
                        Code.MESSAGE_DATA_TYPE,
                        f'turn {i} is a JSON {_json_type(turn)}; write {{"role": ..., '
                        '"parts": [...]}',
                    )
                )
                continue
            role = turn.get("role")
            if "role" not in turn:
                out.errors.append(
                    (Code.MESSAGE_MISSING_KEY, f'turn {i} has no "role"; add "user" or "model"')
                )
            elif role not in _GEMINI_ROLES:
                hint = {
                    "assistant": 'use "model"',
                    "system": 'move it to "systemInstruction"',
                }.get(str(role), 'use "user" or "model"')
                code = Code.ROLE_NOT_ALLOWED if role in _KNOWN_ROLES else Code.UNRECOGNIZED_ROLE
                out.errors.append((code, f"turn {i}: Gemini does not accept role {role!r}; {hint}"))
            unknown = [k for k in turn if k not in ("role", "parts")]
            if unknown:
                out.errors.append(
                    (
                        Code.MESSAGE_UNRECOGNIZED_KEY,
                        f"turn {i} has unrecognized key(s) {', '.join(map(repr, sorted(unknown)))};"
                        ' a turn holds only "role" and "parts"',
                    )
                )
            text = _check_parts(turn.get("parts"), out, where=f"turn {i}")
            messages.append(
                {"role": "assistant" if role == "model" else str(role), "content": text}
            )
            if role == "model":
                answer = text
        roles = {t.get("role") for t in contents if isinstance(t, dict)}
        # a turn with role "assistant" was already reported; one fix solves both
        if "model" not in roles and "assistant" not in roles:
            out.errors.append(
                (
                    Code.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
                    'no model turn; add the answer as {"role": "model", "parts": [{"text": ...}]}',
                )
            )
        out.answer = answer
    system = data.get("systemInstruction", data.get("system_instruction"))
    if system is not None:
        if not isinstance(system, dict):
            out.errors.append(
                (
                    Code.INVALID_FIELD,
                    '"systemInstruction" must be an object {"parts": [{"text": ...}]}',
                )
            )
        else:
            text = _check_parts(system.get("parts"), out, where="systemInstruction")
            messages.insert(0, {"role": "system", "content": text})
    elif messages:
        out.warnings.append(
            (
                Code.MISSING_SYSTEM_MESSAGE,
                "no systemInstruction; add one if you will use a system prompt at inference",
            )
        )
    _check_unknown_top(data, _GEMINI_TOP_KEYS, out)
    out.messages = messages


def _check_parts(parts: Any, out: Checked, *, where: str) -> str:
    if not isinstance(parts, list) or not parts:
        out.errors.append(
            (Code.MISSING_PARTS, f'{where} has no "parts" list; add "parts": [{{"text": "..."}}]')
        )
        return ""
    texts: list[str] = []
    for j, part in enumerate(parts, start=1):
        if not isinstance(part, dict) or not part or any(k not in _GEMINI_PART_KEYS for k in part):
            out.errors.append(
                (
                    Code.INVALID_PART,
                    f'{where} part {j} must be an object like {{"text": ...}} '
                    'or {"fileData": {"mimeType": ..., "fileUri": ...}}',
                )
            )
            continue
        if "text" in part:
            if not isinstance(part["text"], str) or not part["text"]:
                out.errors.append(
                    (Code.MISSING_CONTENT, f"{where} part {j} has empty or non-string text")
                )
            else:
                texts.append(part["text"])
    return "".join(texts)


def _check_prompt_completion(data: dict[str, Any], out: Checked) -> None:
    for key in ("prompt", "completion"):
        if key not in data:
            out.errors.append((Code.MISSING_FIELD, f'missing "{key}"; add it as a string'))
        elif not isinstance(data[key], str) or not data[key]:
            out.errors.append((Code.INVALID_FIELD, f'"{key}" must be a non-empty string'))
    prompt, completion = data.get("prompt"), data.get("completion")
    out.messages = [
        {"role": "user", "content": prompt if isinstance(prompt, str) else ""},
        {"role": "assistant", "content": completion if isinstance(completion, str) else ""},
    ]
    out.answer = completion if isinstance(completion, str) else None


def _as_turns(value: Any, role: str) -> list[dict[str, Any]] | None:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return list(value)
    return None


def _check_trl_dpo(data: dict[str, Any], out: Checked) -> None:
    messages: list[dict[str, Any]] = []
    for key, role in (("prompt", "user"), ("chosen", "assistant"), ("rejected", "assistant")):
        if key not in data:
            out.errors.append(
                (
                    Code.MISSING_FIELD,
                    f'missing "{key}"; TRL preference data needs prompt, chosen and rejected',
                )
            )
            continue
        turns = _as_turns(data[key], role)
        if not turns:
            out.errors.append(
                (Code.INVALID_FIELD, f'"{key}" must be a non-empty string or a list of messages')
            )
            continue
        messages.extend(turns)
        if key == "chosen":
            out.answer = _text_of(turns[-1].get("content"))
    out.messages = messages


_CHECKERS = {
    DatasetFormat.CHAT: _check_chat,
    DatasetFormat.TRL: _check_trl,
    DatasetFormat.RFT: _check_rft,
    DatasetFormat.DPO: _check_dpo,
    DatasetFormat.GEMINI: _check_gemini,
    DatasetFormat.PROMPT_COMPLETION: _check_prompt_completion,
    DatasetFormat.TRL_DPO: _check_trl_dpo,
}
