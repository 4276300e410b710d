"""Where the samples to grade come from: a model, an outputs file, or the dataset's answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.credentials import redact
from ftwizard.errors import InputError
from ftwizard.graders.results import Sample
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest
from ftwizard.providers.media import content_images, gemini_part_image


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        texts = [t for t in texts if isinstance(t, str)]
        return "".join(texts) if texts else None
    return None


def answer_of(item: dict[str, Any]) -> str | None:
    """The row's own answer: its last assistant message (OpenAI chat, Gemini ``contents``,
    DPO ``preferred_output``) or its ``completion``; ``None`` when it has none."""
    for key, role_field, roles in (
        ("messages", "role", ("assistant",)),
        ("preferred_output", "role", ("assistant",)),
        ("contents", "role", ("model",)),
    ):
        turns = item.get(key)
        if isinstance(turns, list):
            for turn in reversed(turns):
                if isinstance(turn, dict) and turn.get(role_field) in roles:
                    text = _text_of(turn.get("content", turn.get("parts")))
                    if text is not None:
                        return text
    completion = item.get("completion")
    if isinstance(completion, str):
        return completion
    return _text_of(completion) if isinstance(completion, list) else None


def grading_item(data: dict[str, Any]) -> dict[str, Any]:
    """A dataset row as graders see it: ``reference_answer`` is the row's own answer when the
    row does not name one (chat SFT data keeps it in the last assistant message), and a row with
    images gets ``image_url`` (the first) and ``image_urls`` (all) for judges' templates."""
    out = data
    if "reference_answer" not in data:
        answer = answer_of(data)
        if answer is not None:
            out = {**data, "reference_answer": answer}
    if IMAGE_FIELD not in data:
        urls = image_urls(data)
        if urls:
            # what a grader template names as {{ item.image_url }} (OpenAI's input_image)
            out = {**out, IMAGE_FIELD: urls[0], IMAGES_FIELD: urls}
    return out


IMAGE_FIELD = "image_url"
IMAGES_FIELD = "image_urls"


def image_urls(data: dict[str, Any]) -> list[str]:
    """The row's images as references a judge can be sent: URLs, data URIs (for inline bytes)
    and file paths (made data URIs when the judge is called)."""
    from ftwizard.datasets.images import find_images, may_hold_images

    if not may_hold_images(None, data):
        return []
    out = []
    for slot in find_images(data):
        if slot.placeholder:
            continue
        if slot.data is not None:
            from ftwizard.providers.media import data_uri

            out.append(data_uri(slot.data))
        elif slot.ref:
            out.append(slot.ref)
    return out


def samples_from_answers(
    items: Sequence[dict[str, Any]], lines: Sequence[int], *, path: str | Path | None = None
) -> list[Sample]:
    """One sample per row from the row's own answer; ``InputError`` names a row without one."""
    out = []
    for item, line in zip(items, lines, strict=True):
        text = answer_of(item)
        if text is None:
            raise InputError(
                "row has no assistant answer to grade; give model outputs with --outputs",
                path=path,
                line=line,
            )
        out.append(Sample.from_output(text))
    return out


def read_outputs(path: str | Path, *, expected: int) -> list[Sample]:
    """Samples from a JSONL of ``{"output_text": ..., "output_json"?: ...}``, one per data row."""
    from ftwizard.datasets.loading import iter_records

    out = []
    for rec in iter_records(path):
        data = rec.data
        if not isinstance(data, dict) or not isinstance(data.get("output_text"), str):
            raise InputError(
                'each line must be {"output_text": "..."} (output_json optional)',
                path=path,
                line=rec.line,
                field="output_text",
            )
        out.append(Sample.from_output(data["output_text"], data.get("output_json")))
    if len(out) != expected:
        raise InputError(
            f"{len(out)} outputs for {expected} data rows; give exactly one output per row, "
            "in the same order",
            path=path,
        )
    return out


class GeneratedSample(BaseModel):
    """A sample produced by a model for one row, or the reason there is none."""

    sample: Sample
    error: str | None = None


def _before_last_answer(turns: list[Any], answer_role: str) -> list[Any]:
    last = max(
        (i for i, t in enumerate(turns) if isinstance(t, dict) and t.get("role") == answer_role),
        default=len(turns),
    )
    return turns[:last]


def gemini_prompt(item: dict[str, Any], turns: list[Any]) -> list[ChatMessage]:
    """A Gemini row's turns before its last ``model`` turn (the answer, as answer_of has
    it), with its ``systemInstruction`` as the system turn."""
    # Vertex sessions hold their held-out rows converted to Gemini's format, so scoring and
    # evaluating a Vertex model read these.
    out: list[ChatMessage] = []
    system = item.get("systemInstruction")
    system_text = _text_of(system.get("parts")) if isinstance(system, dict) else None
    if system_text is not None:
        out.append(ChatMessage(role="system", content=system_text))
    for t in _before_last_answer(turns, "model"):
        role = t.get("role", "user") if isinstance(t, dict) else None
        parts = t.get("parts") if isinstance(t, dict) else None
        text = _text_of(parts)
        # Only user turns carry pictures: chat APIs refuse images in assistant turns, and a
        # Gemini row's images are what the user showed.
        images = gemini_images(parts) if role == "user" else []
        if role in ("user", "model") and (text is not None or images):
            out.append(
                ChatMessage(
                    role="assistant" if role == "model" else "user",
                    content=text or "",
                    images=images,
                )
            )
    return out


def gemini_images(parts: Any) -> list[str]:
    """The images in a Gemini turn's ``parts``, in order: ``inlineData`` as data URIs,
    ``fileData`` as their URIs (a ``gs://`` URI stays one: Vertex fetches it itself)."""
    if not isinstance(parts, list):
        return []
    return [ref for ref in map(gemini_part_image, parts) if ref is not None]


def prompt_messages(item: dict[str, Any]) -> list[ChatMessage]:
    """The conversation a model should answer for this row: its messages (or Gemini
    ``contents``, with ``systemInstruction``) up to (not including) the last assistant turn,
    or its ``prompt``. Empty when the row has none of them."""
    turns = item.get("messages")
    if isinstance(turns, list):
        out = []
        for t in _before_last_answer(turns, "assistant"):
            role = t.get("role") if isinstance(t, dict) else None
            content = t.get("content") if isinstance(t, dict) else None
            text = _text_of(content)
            images = content_images(content)
            if role in ("system", "developer", "user", "assistant") and (
                text is not None or images
            ):
                out.append(ChatMessage(role=role, content=text or "", images=images))
        return out
    contents = item.get("contents")
    if isinstance(contents, list):
        return gemini_prompt(item, contents)
    prompt = item.get("prompt")
    if isinstance(prompt, str):
        return [ChatMessage(role="user", content=prompt)]
    return []


async def samples_from_model(
    provider: ChatProvider,
    model: str,
    items: Sequence[dict[str, Any]],
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> list[GeneratedSample]:
    """Ask ``model`` to answer each row's prompt; a failed call is that row's error."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: dict[str, Any]) -> GeneratedSample:
        messages = prompt_messages(item)
        if not messages:
            return GeneratedSample(sample=Sample(), error="row has no prompt to answer")
        request = GenerationRequest(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature
        )
        async with gate:
            try:
                generation = await provider.generate(request)
            except Exception as exc:  # one failed call must not stop the other rows
                return GeneratedSample(sample=Sample(), error=redact(str(exc)))
        return GeneratedSample(sample=Sample.from_output(generation.text))

    return list(await asyncio.gather(*(one(item) for item in items)))
