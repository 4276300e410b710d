"""What the teacher is asked, and what the new training rows look like.

Rows come from a training dataset (chat ``messages`` ending in the old answer, or a
``prompt``) or from a production trace log (one chat request per line: ``{"messages": [...]}``,
``{"request": {"messages": [...]}, ...}`` or an OpenAI batch line ``{"body": {...}}``).
Optional extra context per row (``context`` by default) is shown to the teacher only: the
student learns to answer without it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.media import anchor_images, content_images

_ROLES = ("system", "developer", "user", "assistant")


class SourceRow(BaseModel):
    """One input row: its line, its data (ground truth included) and the student's prompt."""

    line: int
    data: dict[str, Any]
    prompt: list[ChatMessage]
    context: str | None = None


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        texts = [t for t in parts if isinstance(t, str)]
        return "".join(texts) if texts else None
    return None


def _conversation(turns: list[Any]) -> list[ChatMessage]:
    """A request's turns as chat messages; a trailing assistant turn is the old answer."""
    usable = [t for t in turns if isinstance(t, dict)]
    if usable and usable[-1].get("role") == "assistant":
        usable = usable[:-1]
    out = []
    for turn in usable:
        role, text = turn.get("role"), _text(turn.get("content"))
        images = content_images(turn.get("content"))
        if role in _ROLES and (text is not None or images):
            out.append(ChatMessage(role=role, content=text or "", images=images))
    return out


def prompt_of(data: dict[str, Any]) -> list[ChatMessage]:
    """The student's prompt in a dataset row or a logged request; empty when there is none."""
    for holder in (data, data.get("request"), data.get("body")):
        if isinstance(holder, dict) and isinstance(holder.get("messages"), list):
            return _conversation(holder["messages"])
    contents = data.get("contents")
    if isinstance(contents, list):
        # A Gemini row: what a Vertex session's held-out file holds after conversion.
        from ftwizard.graders.samples import gemini_prompt

        return gemini_prompt(data, contents)
    prompt = data.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return [ChatMessage(role="user", content=prompt)]
    return []


def read_source_rows(
    path: str | Path, *, context_field: str | None = "context"
) -> Iterator[SourceRow]:
    """Stream the rows to relabel; a row without a prompt is an :class:`InputError`."""
    from ftwizard.datasets.loading import iter_records

    for rec in iter_records(path):
        if not isinstance(rec.data, dict):
            raise InputError("each row must be a JSON object", path=path, line=rec.line)
        prompt = prompt_of(anchor_images(rec.data, Path(path).parent))
        if not prompt or prompt[-1].role == "assistant":
            raise InputError(
                "row has no prompt for the teacher: give messages, prompt, or a logged "
                "request (request.messages / body.messages) ending in a user turn",
                path=path,
                line=rec.line,
                field="messages",
            )
        context = rec.data.get(context_field) if context_field else None
        if context is not None and not isinstance(context, str):
            context = json.dumps(context, ensure_ascii=False)
        yield SourceRow(line=rec.line, data=rec.data, prompt=prompt, context=context or None)


def teacher_request(
    row: SourceRow,
    model: str,
    *,
    system_prompt: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> GenerationRequest:
    """The teacher's request: the row's prompt, preceded by the system prompt and context."""
    preamble = [p for p in (system_prompt, row.context and f"Context:\n{row.context}") if p]
    messages = list(row.prompt)
    if preamble:
        messages.insert(0, ChatMessage(role="system", content="\n\n".join(preamble)))
    return GenerationRequest(
        model=model, messages=messages, max_tokens=max_tokens, temperature=temperature
    )


def request_id(request: GenerationRequest) -> str:
    """A stable id for exactly what the teacher is sent (a valid batch ``custom_id``)."""
    from ftwizard.providers.batch_journal import request_digest

    return "r-" + request_digest(request)


def chat_turn(message: ChatMessage) -> dict[str, Any]:
    """``message`` as an OpenAI chat turn; its images become ``image_url`` parts (before the
    text) holding data URIs, so the written file carries the pictures wherever it goes."""
    if not message.images:
        return {"role": message.role, "content": message.content}
    from ftwizard.errors import FtwizardError
    from ftwizard.providers.media import to_data_uri

    parts: list[dict[str, Any]] = []
    for ref in message.images:
        try:
            url = to_data_uri(ref)
        except FtwizardError as exc:
            raise InputError(f"cannot embed image: {exc}", field="messages") from None
        parts.append({"type": "image_url", "image_url": {"url": url}})
    if message.content:
        parts.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": parts}


def training_row(row: SourceRow, answer: str, keep_fields: Sequence[str] = ()) -> dict[str, Any]:
    """An OpenAI chat SFT row: the student's prompt (no context) and the teacher's answer."""
    out: dict[str, Any] = {
        "messages": [chat_turn(m) for m in row.prompt] + [{"role": "assistant", "content": answer}]
    }
    for name in keep_fields:
        if name in row.data:
            out[name] = row.data[name]
    return out


class MergeSummary(BaseModel):
    """How teacher answers were merged into an existing dataset."""

    path: str
    key_columns: list[str]
    rows: int
    replaced: int
    unmatched: int
    dropped: int


def row_key(data: dict[str, Any], key_columns: Sequence[str], *, path: Any, line: int) -> str:
    """The row's key (its key columns' values), or an :class:`InputError` naming what lacks."""
    values = []
    for column in key_columns:
        if column not in data:
            raise InputError("row has no key column", path=path, line=line, field=column)
        values.append(data[column])
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)


def with_answer(data: dict[str, Any], answer: str, response_field: str) -> dict[str, Any]:
    """``data`` with its answer replaced: the last assistant turn, the ``completion``, or a
    new ``response_field`` column for tabular data."""
    out = dict(data)
    turns = out.get("messages")
    if isinstance(turns, list):
        turns = [dict(t) if isinstance(t, dict) else t for t in turns]
        for turn in reversed(turns):
            if isinstance(turn, dict) and turn.get("role") == "assistant":
                turn["content"] = answer
                break
        else:
            turns.append({"role": "assistant", "content": answer})
        out["messages"] = turns
    elif "completion" in out:
        out["completion"] = answer
    else:
        out[response_field] = answer
    return out


def merge_answers(
    path: str | Path,
    answers: dict[str, str],
    key_columns: Sequence[str],
    *,
    response_field: str = "teacher_response",
    drop_unmatched: bool = False,
) -> tuple[list[dict[str, Any]], MergeSummary]:
    """The rows of the dataset at ``path`` with teacher answers merged in by key.

    ``answers`` maps a :func:`row_key` to the kept teacher answer. Rows without one keep their
    own answer, or are dropped with ``drop_unmatched``.
    """
    from ftwizard.datasets.loading import iter_records

    if not key_columns:
        raise InputError("merging needs at least one key column", field="key_columns")
    out: list[dict[str, Any]] = []
    replaced = unmatched = dropped = total = 0
    for rec in iter_records(path):
        if not isinstance(rec.data, dict):
            raise InputError("each row must be a JSON object", path=path, line=rec.line)
        total += 1
        key = row_key(rec.data, key_columns, path=path, line=rec.line)
        if key in answers:
            out.append(with_answer(rec.data, answers[key], response_field))
            replaced += 1
        elif drop_unmatched:
            dropped += 1
        else:
            out.append(rec.data)
            unmatched += 1
    return out, MergeSummary(
        path=str(path),
        key_columns=list(key_columns),
        rows=total,
        replaced=replaced,
        unmatched=unmatched,
        dropped=dropped,
    )
