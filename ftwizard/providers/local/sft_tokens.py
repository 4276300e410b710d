"""Tokenizing a multi-turn conversation for SFT with the loss on every assistant turn only.

TRL's own ``assistant_only_loss`` needs ``{% generation %}`` markers, which no family's real
template has. Here the template is rendered once for the whole conversation and once for each
prefix that ends just before / just after an assistant turn; the characters in between are
that turn (its content and the template's end-of-turn text), and the tokens whose characters
fall there carry the loss. When a template rewrites earlier turns (Qwen3 drops past thinking
blocks), the turn is found by its content instead. Works with any fast tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.local.chat_format import END_OF_TURN_TOKENS, normalize_messages


def _render(tokenizer: Any, messages: Sequence[dict[str, Any]], prompt: bool) -> str:
    if not messages:
        return ""
    return str(
        tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=prompt)
    )


def _find_turn(full: str, content: str, cursor: int, k: int) -> tuple[int, int]:
    # The template may have rewritten the turn: try it as is, then without its thinking block.
    for candidate in (content, content.split("</think>")[-1].lstrip("\n"), content.strip()):
        start = full.find(candidate, cursor) if candidate else -1
        if start >= 0:
            end = start + len(candidate)
            for token in END_OF_TURN_TOKENS:
                if full.startswith(token, end):
                    end += len(token)
                    break
            return start, end
    raise InputError(
        f"assistant turn {k + 1} cannot be found in the chat template's output",
        field="messages",
    )


def assistant_spans(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> tuple[str, list[range]]:
    """The rendered conversation and the character ranges of its assistant turns."""
    full = _render(tokenizer, messages, prompt=False)
    spans: list[range] = []
    cursor = 0
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:k], prompt=True)
        through = _render(tokenizer, messages[: k + 1], prompt=False)
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            start, end = len(before), len(through)
        else:
            start, end = _find_turn(full, message["content"], cursor, k)
        # What the template puts after the end-of-turn token is not the model's to learn.
        for token in END_OF_TURN_TOKENS:
            at = full.find(token, start, end)
            if at >= 0:
                end = at + len(token)
                break
        while end > start and full[end - 1].isspace():
            end -= 1
        spans.append(range(start, end))
        cursor = end
    return full, spans


def tokenize_for_sft(
    tokenizer: Any, messages: Sequence[dict[str, Any]], max_length: int | None = None
) -> dict[str, list[int]]:
    """``input_ids`` and ``assistant_masks`` (1 = carries loss) of a conversation."""
    messages = normalize_messages(tokenizer, messages)
    if not any(m["role"] == "assistant" for m in messages):
        raise InputError("the conversation has no assistant turn to train on", field="messages")
    full, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for start, end in enc["offset_mapping"]:
        inside = any(start < s.stop and end > s.start for s in spans)
        mask.append(1 if inside else 0)
    ids = list(enc["input_ids"])
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    return {"input_ids": ids, "assistant_masks": mask}


_CONVERSATIONAL = ("prompt", "completion", "chosen", "rejected")


def rows_for_tokenizer(
    rows: list[dict[str, Any]], tokenizer: Any, max_length: int | None = None
) -> list[dict[str, Any]]:
    """``rows`` made ready for TRL with this tokenizer: SFT conversations tokenized with their
    assistant masks, every conversational field normalized for the template (system role)."""
    conversations = sum("messages" in row for row in rows)
    if conversations and conversations != len(rows):
        raise InputError(
            "mix of chat ('messages') and other SFT rows; use one format per file",
            field="messages",
        )
    out: list[dict[str, Any]] = []
    for row in rows:
        if "messages" in row:
            out.append(tokenize_for_sft(tokenizer, row["messages"], max_length))
            continue
        fixed = dict(row)
        for key in _CONVERSATIONAL:
            value = row.get(key)
            if isinstance(value, list) and value and isinstance(value[0], dict):
                fixed[key] = normalize_messages(tokenizer, value)
        out.append(fixed)
    return out


__all__ = ["assistant_spans", "rows_for_tokenizer", "tokenize_for_sft"]
