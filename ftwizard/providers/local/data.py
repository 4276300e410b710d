"""Turning ftwizard's dataset files into the rows TRL's trainers take.

- SFT: an OpenAI chat example stays a ``messages`` conversation that the worker tokenizes with
  the loss on every assistant turn (:mod:`ftwizard.providers.local.sft_tokens`), whatever the
  model's chat template. ``prompt``/``completion`` and ``text`` rows pass through.
- DPO: OpenAI preference rows (``input.messages``, ``preferred_output``,
  ``non_preferred_output``) become ``prompt``/``chosen``/``rejected``; TRL rows pass through.
- RFT: ``messages`` (a trailing assistant turn dropped) become ``prompt``; every other field of
  the item stays, because the reward function receives the item's fields as columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.inputs import read_text_lines
from ftwizard.json_input import JSONInputError, loads

Row = dict[str, Any]


def read_jsonl(path: Path) -> list[Row]:
    """The objects of a JSON-lines file; a bad line is an :class:`InputError` with its number."""
    rows: list[Row] = []
    for number, line in read_text_lines(path):
        if not line.strip():
            continue
        try:
            row = loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg}", path=path, line=number) from None
        except JSONInputError as exc:
            raise InputError(exc.message, path=path, line=number, field=exc.field) from None
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", path=path, line=number)
        rows.append(row)
    if not rows:
        raise InputError("the dataset file has no examples", path=path)
    return rows


def _messages(row: Row, path: Path, number: int) -> list[dict[str, Any]]:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("expected a non-empty 'messages' list", path=path, line=number)
    return [{"role": m.get("role"), "content": m.get("content")} for m in messages]


def sft_rows(rows: list[Row], path: Path) -> list[Row]:
    """SFT rows for TRL's SFTTrainer (see the module docstring)."""
    out: list[Row] = []
    for number, row in enumerate(rows, start=1):
        if "prompt" in row and "completion" in row:
            out.append({"prompt": row["prompt"], "completion": row["completion"]})
        elif "text" in row and "messages" not in row:
            out.append({"text": row["text"]})
        else:
            messages = _messages(row, path, number)
            if messages[-1]["role"] != "assistant":
                raise InputError(
                    "the last message must be the assistant's answer to train on",
                    path=path,
                    line=number,
                    field="messages",
                )
            out.append({"messages": messages})
    return out


def dpo_rows(rows: list[Row], path: Path) -> list[Row]:
    """DPO rows for TRL's DPOTrainer (see the module docstring)."""
    out: list[Row] = []
    for number, row in enumerate(rows, start=1):
        if {"prompt", "chosen", "rejected"} <= row.keys():
            out.append({k: row[k] for k in ("prompt", "chosen", "rejected")})
            continue
        source = row.get("input")
        if not isinstance(source, dict) or "preferred_output" not in row:
            raise InputError(
                "expected OpenAI preference data (input.messages, preferred_output, "
                "non_preferred_output) or prompt/chosen/rejected",
                path=path,
                line=number,
            )
        out.append(
            {
                "prompt": _messages(source, path, number),
                "chosen": row["preferred_output"],
                "rejected": row.get("non_preferred_output"),
            }
        )
    return out


def rft_rows(rows: list[Row], path: Path) -> list[Row]:
    """GRPO rows: a conversational ``prompt`` plus the item's other fields (see above)."""
    out: list[Row] = []
    for number, row in enumerate(rows, start=1):
        if "prompt" in row:
            out.append(dict(row))
            continue
        messages = _messages(row, path, number)
        if messages[-1]["role"] == "assistant":
            messages = messages[:-1]
        if not messages:
            raise InputError("no prompt left to generate from", path=path, line=number)
        item = {k: v for k, v in row.items() if k != "messages"}
        out.append({"prompt": messages, **item})
    return out


def training_rows(method: str, path: Path) -> list[Row]:
    """The rows of ``path`` prepared for ``method`` (sft, dpo or rft)."""
    rows = read_jsonl(path)
    convert = {"sft": sft_rows, "dpo": dpo_rows, "rft": rft_rows}[method]
    return convert(rows, path)


__all__ = ["dpo_rows", "read_jsonl", "rft_rows", "sft_rows", "training_rows"]
