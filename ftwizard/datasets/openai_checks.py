"""Checks of OpenAI's chat, reinforcement and preference examples (TRL's conversational format
shares the message checks).

They include every check of OpenAI's cookbook notebook (Chat_finetuning_data_prep.ipynb) under
the same names.
"""

from __future__ import annotations

from typing import Any

from ftwizard.datasets.checked import Checked, json_type
from ftwizard.datasets.formats import CHAT_TOP_KEYS, IMAGE_KEYS
from ftwizard.datasets.problems import Code
from ftwizard.datasets.tokens import TOKENS_PER_EXAMPLE, TOKENS_PER_MESSAGE

_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"}
)
CHAT_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
_RFT_ROLES = frozenset({"developer", "user", "assistant", "tool"})
KNOWN_ROLES = CHAT_ROLES | _RFT_ROLES


def check_messages(
    messages: Any,
    out: Checked,
    *,
    roles: frozenset[str],
    where: str,
    fmt_name: str,
    openai_tools: bool = True,
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
                    f"message {i} is a JSON {json_type(message)}; write it as an object "
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
            if role not in KNOWN_ROLES:
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
                        f"message {i} content is a JSON {json_type(content)}; it must be a string",
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
        if openai_tools:
            _check_tool_use(message, i, out)
    return good


def _check_tool_use(message: dict[str, Any], i: int, out: Checked) -> None:
    """OpenAI's schema for tool use: a tool result names its call; a call has an id, and its
    ``arguments`` are JSON text (a string), not an object as TRL writes them."""
    if message.get("role") == "tool" and not isinstance(message.get("tool_call_id"), str):
        out.errors.append(
            (
                Code.INVALID_TOOL_CALL,
                f'message {i}: a tool message needs "tool_call_id", the id of the call it '
                "answers (TRL-style data without ids trains with --format trl)",
            )
        )
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        out.errors.append((Code.INVALID_TOOL_CALL, f'message {i}: "tool_calls" must be a list'))
        return
    for j, call in enumerate(calls, start=1):
        function = call.get("function") if isinstance(call, dict) else None
        problem = None
        if not isinstance(call, dict) or not isinstance(function, dict):
            problem = 'must be {"id", "type": "function", "function": {"name", "arguments"}}'
        elif not isinstance(call.get("id"), str):
            problem = 'has no "id"; give each call an id that its tool message repeats'
        elif call.get("type") != "function":
            problem = '"type" must be "function"'
        elif not isinstance(function.get("name"), str):
            problem = '"function.name" must be a string'
        elif not isinstance(function.get("arguments"), str):
            problem = (
                '"function.arguments" must be JSON text (a string), not an object; '
                "write json.dumps(arguments)"
            )
        if problem:
            out.errors.append((Code.INVALID_TOOL_CALL, f"message {i} tool call {j} {problem}"))


def text_of(content: Any) -> str | None:
    """The text of a message content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    return None


def check_unknown_top(data: dict[str, Any], allowed: frozenset[str], out: Checked) -> None:
    """Warn about top-level keys training ignores."""
    unknown = [k for k in data if k not in allowed]
    if unknown:
        out.warnings.append(
            (
                Code.UNRECOGNIZED_KEY,
                f"unrecognized key(s) {', '.join(map(repr, sorted(unknown)))} are ignored by "
                f"training; remove them (allowed: {', '.join(sorted(allowed))})",
            )
        )


def check_tools(data: dict[str, Any], out: Checked) -> None:
    """``tools`` must be a list of tool objects."""
    if "tools" in data and not (
        isinstance(data["tools"], list) and all(isinstance(t, dict) for t in data["tools"])
    ):
        out.errors.append(
            (
                Code.INVALID_TOOLS,
                '"tools" must be a list of tool objects {"type": "function", "function": {...}}',
            )
        )


def chat_warnings(messages: list[dict[str, Any]], out: Checked, *, system: str) -> None:
    """The cookbook's warnings on missing system and user messages."""
    role_warnings({m.get("role") for m in messages}, out, system=system)


def role_warnings(roles: set[Any], out: Checked, *, system: str) -> None:
    """Warn when no ``system`` (or developer) or no user message is among ``roles``."""
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
        if role not in CHAT_ROLES or type(content) is not str or not content:
            return False
        roles.add(role)
        texts.append(role)
        texts.append(content)
        if role == "assistant":
            answer = content
    if answer is None:
        out.errors.append(_MISSING_ASSISTANT)
    out.answer = answer
    role_warnings(roles, out, system="system")
    out.messages = raw
    out.texts = texts
    out.overhead = TOKENS_PER_EXAMPLE + TOKENS_PER_MESSAGE * len(raw)
    return True


_MISSING_ASSISTANT = (
    Code.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
    "no assistant message; add the answer the model should learn as "
    '{"role": "assistant", "content": ...}',
)


def check_chat(
    data: dict[str, Any],
    out: Checked,
    *,
    openai_tools: bool = True,
    allowed_top: frozenset[str] = CHAT_TOP_KEYS,
) -> None:
    """OpenAI chat SFT: ``{"messages": [...], "tools"?}``, with OpenAI's tool-call shapes."""
    raw = data.get("messages")
    if type(raw) is list and raw and len(data) == 1 and _check_plain_chat(raw, out):
        return
    messages = check_messages(
        raw,
        out,
        roles=CHAT_ROLES,
        where='"messages"',
        fmt_name="chat SFT",
        openai_tools=openai_tools,
    )
    if "tools" in data:
        check_tools(data, out)
    if len(data) > 1:
        check_unknown_top(data, allowed_top, out)
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
            out.answer = text_of(last_answer.get("content"))
        role_warnings(roles, out, system="system")
    out.messages = messages


def check_trl(data: dict[str, Any], out: Checked) -> None:
    """TRL's conversational format: chat messages, with tool calls as TRL writes them, and an
    ``images`` (or ``image``) column for vision models."""
    check_chat(data, out, openai_tools=False, allowed_top=CHAT_TOP_KEYS | IMAGE_KEYS)


def check_rft(data: dict[str, Any], out: Checked, *, openai: bool = True) -> None:
    """Reinforcement items: the prompt messages plus item fields for the graders.

    OpenAI's RFT takes a ``developer`` message, not ``system``; the other backends that run RFT
    on this format (Fireworks, local GRPO) take ``system`` as in chat data.
    """
    roles = _RFT_ROLES if openai else _RFT_ROLES | {"system"}
    messages = check_messages(
        data.get("messages"),
        out,
        roles=roles,
        where='"messages"',
        fmt_name="OpenAI RFT" if openai else "RFT",
    )
    check_tools(data, out)
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


def check_dpo(data: dict[str, Any], out: Checked) -> None:
    """OpenAI preference examples: input messages and one preferred, one rejected answer."""
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
            messages = check_messages(
                inp.get("messages"),
                out,
                roles=CHAT_ROLES,
                where='"input.messages"',
                fmt_name="OpenAI DPO",
            )
            check_tools(inp, out)
            if messages:
                chat_warnings(messages, out, system="system")
    preferred = _check_output(data, "preferred_output", out)
    rejected = _check_output(data, "non_preferred_output", out)
    if preferred and isinstance(preferred[0].get("content"), str):
        out.answer = preferred[0]["content"]
    check_unknown_top(data, frozenset({"input", "preferred_output", "non_preferred_output"}), out)
    out.messages = messages + preferred + rejected
