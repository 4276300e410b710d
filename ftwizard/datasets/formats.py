"""Dataset formats: what each looks like, which method it trains, and how to recognise it.

The checks each format's examples must pass live in :mod:`ftwizard.datasets.checks`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from ftwizard.datasets.targets import Method


class ConversionSkip(Exception):
    """This example cannot be written in the target format; the message says why."""


class DatasetFormat(StrEnum):
    """The shapes of training data ftwizard reads and writes."""

    CHAT = "chat"
    """OpenAI chat SFT: ``{"messages": [...], "tools"?: [...]}``."""
    DPO = "dpo"
    """OpenAI preference: ``{"input": {"messages": [...]}, "preferred_output": [...],
    "non_preferred_output": [...]}``."""
    RFT = "rft"
    """OpenAI reinforcement: ``{"messages": [...], <item fields for graders>}``."""
    GEMINI = "gemini"
    """Vertex AI Gemini tuning: ``{"contents": [{"role", "parts"}], "systemInstruction"?}``."""
    GEMINI_PREFERENCE = "gemini_preference"
    """Vertex AI Gemini preference tuning: ``{"contents": [...ending with a user turn],
    "completions": [{"score": 1, "completion": {"role": "model", "parts": [...]}}, {"score": 0,
    ...}], "system_instruction"?}``."""
    PROMPT_COMPLETION = "prompt_completion"
    """``{"prompt", "completion"}``: two strings (standard) or two message lists
    (conversational), as TRL documents it."""
    TRL = "trl"
    """The conversational format TRL's SFTTrainer reads: ``{"messages": [{"role", "content"}]}``;
    tool calls as TRL writes them (``arguments`` an object, no ``tool_call_id``)."""
    TRL_DPO = "trl_dpo"
    """TRL's preference format: ``{"prompt"?, "chosen", "rejected"}``, strings or message lists;
    without ``prompt`` (an implicit prompt) both answers hold the whole conversation."""
    TEXT = "text"
    """TRL's standard language-modelling format: ``{"text": str}``."""
    PROMPT_ONLY = "prompt_only"
    """TRL's prompt-only format (GRPO and other online methods): ``{"prompt"}``, a string or a
    message list."""


FORMAT_METHOD: dict[DatasetFormat, Method] = {
    DatasetFormat.CHAT: Method.sft,
    DatasetFormat.DPO: Method.dpo,
    DatasetFormat.RFT: Method.rft,
    DatasetFormat.GEMINI: Method.sft,
    DatasetFormat.GEMINI_PREFERENCE: Method.dpo,
    DatasetFormat.PROMPT_COMPLETION: Method.sft,
    DatasetFormat.TRL: Method.sft,
    DatasetFormat.TRL_DPO: Method.dpo,
    DatasetFormat.TEXT: Method.sft,
    DatasetFormat.PROMPT_ONLY: Method.rft,
}

CHAT_TOP_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
"""The top-level keys of an OpenAI chat example; any other key makes it an RFT item."""
IMAGE_KEYS = frozenset({"images", "image", "image_path"})
"""Image columns beside ``messages``: TRL's vision format (or a path column to be mapped)."""

SHAPES: dict[DatasetFormat, str] = {
    DatasetFormat.CHAT: '{"messages": [...]}',
    DatasetFormat.TRL: '{"messages": [...]}',
    DatasetFormat.RFT: '{"messages": [...], "your_field": ...}',
    DatasetFormat.DPO: '{"input": {"messages": [...]}, "preferred_output": [...], '
    '"non_preferred_output": [...]}',
    DatasetFormat.GEMINI: '{"contents": [{"role": "user", "parts": [{"text": ...}]}]}',
    DatasetFormat.GEMINI_PREFERENCE: '{"contents": [...], "completions": [{"score": 1, '
    '"completion": {"role": "model", "parts": [...]}}, {"score": 0, ...}]}',
    DatasetFormat.PROMPT_COMPLETION: '{"prompt": ..., "completion": ...}',
    DatasetFormat.TRL_DPO: '{"prompt": ..., "chosen": ..., "rejected": ...}',
    DatasetFormat.TEXT: '{"text": ...}',
    DatasetFormat.PROMPT_ONLY: '{"prompt": ...}',
}
"""What one example of each format looks like, for messages that say how to fix one."""


def detect_format(examples: Iterable[Any]) -> DatasetFormat | None:
    """Vote on the format of a sample of parsed examples; ``None`` when nothing matches."""
    votes: Counter[DatasetFormat] = Counter()
    for data in examples:
        fmt = detect_example_format(data)
        if fmt is not None:
            votes[fmt] += 1
    if not votes:
        return None
    return votes.most_common(1)[0][0]


def detect_example_format(data: Any) -> DatasetFormat | None:
    """The format one example looks like, from its keys."""
    if not isinstance(data, dict):
        return None
    if "messages" in data:
        extra = set(data) - CHAT_TOP_KEYS
        if extra and extra <= IMAGE_KEYS:
            return DatasetFormat.TRL
        if extra:
            return DatasetFormat.RFT
        messages = data["messages"]
        if (
            isinstance(messages, list)
            and messages
            and all(isinstance(m, dict) and m.get("role") != "assistant" for m in messages)
        ):
            return DatasetFormat.RFT
        if isinstance(messages, list) and any(_trl_tool_message(m) for m in messages):
            return DatasetFormat.TRL
        return DatasetFormat.CHAT
    if "preferred_output" in data or "non_preferred_output" in data:
        return DatasetFormat.DPO
    if "contents" in data:
        return DatasetFormat.GEMINI_PREFERENCE if "completions" in data else DatasetFormat.GEMINI
    if "chosen" in data and "rejected" in data:
        return DatasetFormat.TRL_DPO
    if "prompt" in data and "completion" in data:
        return DatasetFormat.PROMPT_COMPLETION
    if "prompt" in data:
        return DatasetFormat.PROMPT_ONLY
    if "text" in data:
        return DatasetFormat.TEXT
    return None


def _trl_tool_message(message: Any) -> bool:
    """A message written the way TRL writes tool use, which OpenAI's chat format rejects: a tool
    call whose ``arguments`` is an object, or a tool result without ``tool_call_id``."""
    if not isinstance(message, dict):
        return False
    if message.get("role") == "tool" and "tool_call_id" not in message:
        return True
    calls = message.get("tool_calls")
    return isinstance(calls, list) and any(
        isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and not isinstance(c["function"].get("arguments"), str)
        for c in calls
    )
