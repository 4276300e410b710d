"""score_model and label_model graders, run on any judge that implements ``ChatProvider``.

The judge is asked for structured output ``{"steps": [...], "result": ...}`` (OpenAI's own
format). A score_model answer that is not a number scores 0 with a parse error, and a number
outside ``range`` is clipped to it, as OpenAI does. Calls run concurrently up to a bound, and a
failed call is retried a few times before the row is recorded as an error.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from typing import Any

from ftwizard.credentials import redact
from ftwizard.graders.portable import render
from ftwizard.graders.results import GradeResult
from ftwizard.graders.spec import EvalMessage, LabelModelGrader, ScoreModelGrader
from ftwizard.providers.base import (
    ChatMessage,
    ChatProvider,
    GenerationRequest,
    ProviderError,
)

_STEPS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"description": {"type": "string"}, "conclusion": {"type": "string"}},
        "required": ["description", "conclusion"],
        "additionalProperties": False,
    },
}


def score_schema() -> dict[str, Any]:
    """The structured-output schema a score_model judge answers with."""
    return {
        "type": "object",
        "properties": {"steps": _STEPS, "result": {"type": "number"}},
        "required": ["steps", "result"],
        "additionalProperties": False,
    }


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The structured-output schema a label_model judge answers with."""
    return {
        "type": "object",
        "properties": {"steps": _STEPS, "result": {"type": "string", "enum": list(labels)}},
        "required": ["steps", "result"],
        "additionalProperties": False,
    }


def render_messages(messages: Sequence[EvalMessage], context: dict[str, Any]) -> list[ChatMessage]:
    """The judge's messages with templates filled in, ``input_image`` parts as images.

    A row with images whose grader names none still shows them to the judge, with its last
    user message: a judge asked about an answer to an image sees the image. Audio is refused.
    """
    out = []
    for m in messages:
        parts = m.content if isinstance(m.content, list) else [m.content]
        texts = []
        images = []
        for p in parts:
            if isinstance(p, str):
                texts.append(render(p, context))
            elif p.type in ("input_text", "output_text") and p.text is not None:
                texts.append(render(p.text, context))
            elif p.type == "input_image" and p.image_url:
                images.append(judge_image(render(p.image_url, context).strip()))
            else:
                raise ValueError(f"{p.type} parts are not supported by local judges; use text")
        out.append(ChatMessage(role=m.role, content="\n".join(texts), images=images))
    item = context.get("item")
    urls = item.get("image_urls") if isinstance(item, dict) else None
    if urls and not any(msg.images for msg in out):
        users = [i for i, msg in enumerate(out) if msg.role == "user"]
        if users:
            last = out[users[-1]]
            out[users[-1]] = last.model_copy(update={"images": [judge_image(u) for u in urls]})
    return out


def judge_image(ref: str) -> str:
    """An image reference a judge API accepts: URLs and data URIs as they are, a local file as
    a data URI; ``ValueError`` for one that cannot be read."""
    from ftwizard.providers import media

    kind = media.reference_kind(ref)
    if kind in ("https", "http", "data"):
        return ref
    try:
        return media.to_data_uri(ref)
    except (media.MediaUnavailable, media.NotAnImage) as exc:
        raise ValueError(f"image {media.describe_reference(ref)!r}: {exc}") from exc


def _format_instruction(g: ScoreModelGrader | LabelModelGrader) -> ChatMessage:
    if isinstance(g, ScoreModelGrader):
        low, high = g.range
        answer = f"a number from {low:g} to {high:g}"
    else:
        answer = "exactly one of these labels: " + ", ".join(json.dumps(x) for x in g.labels)
    return ChatMessage(
        role="system",
        content='Reply with JSON only: {"steps": [{"description": "...", "conclusion": "..."}], '
        f'"result": {answer}}}.',
    )


def _result_field(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    data = json.loads(stripped)
    return data.get("result") if isinstance(data, dict) else data


def parse_score(text: str, low: float, high: float) -> tuple[float, str | None]:
    """A judge's score clipped to [low, high], or ``(0.0, parse error)`` when it is no number."""
    try:
        value = _result_field(text)
    except ValueError:
        value = None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0, f"model_grader_parse_error: the judge's answer is not a number: {text!r:.200}"
    return min(max(float(value), low), high), None


def parse_label(text: str, labels: Sequence[str]) -> tuple[str | None, str | None]:
    """The label a judge chose, or ``(None, parse error)`` when it is not one of ``labels``."""
    try:
        value = _result_field(text)
    except ValueError:
        value = text.strip()
    if isinstance(value, str) and value in labels:
        return value, None
    return None, (
        f"model_grader_parse_error: the judge's answer is not one of {list(labels)}: {text!r:.200}"
    )


async def _call(judge: ChatProvider, request: GenerationRequest, retries: int) -> str:
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            return (await judge.generate(request)).text
        except ProviderError:
            raise  # providers retry rate limits and server errors themselves; this is final
        except Exception:
            if attempt == retries:
                raise
        await asyncio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


async def run_model_grader(
    g: ScoreModelGrader | LabelModelGrader,
    judge: ChatProvider,
    contexts: Sequence[dict[str, Any]],
    *,
    concurrency: int = 8,
    retries: int = 2,
) -> list[GradeResult]:
    """Grade each ``{"item", "sample"}`` context with the judge, at most ``concurrency`` at once."""
    gate = asyncio.Semaphore(max(1, concurrency))
    params = g.sampling_params if isinstance(g, ScoreModelGrader) else None
    schema = score_schema() if isinstance(g, ScoreModelGrader) else label_schema(g.labels)

    async def one(ctx: dict[str, Any]) -> GradeResult:
        try:
            messages = render_messages(g.input, ctx)
        except ValueError as exc:
            return GradeResult(score=0.0, error=f"invalid_variable_error: {exc}")
        request = GenerationRequest(
            model=g.model,
            messages=[_format_instruction(g), *messages],
            max_tokens=params.max_completions_tokens if params else None,
            temperature=params.temperature if params else None,
            seed=params.seed if params else None,
            top_p=params.top_p if params else None,
            reasoning_effort=params.reasoning_effort if params else None,
            json_schema=schema,
        )
        async with gate:
            try:
                text = await _call(judge, request, retries)
            except Exception as exc:  # any judge failure is this row's error, not the run's
                return GradeResult(score=0.0, error=redact(f"model_grader_server_error: {exc}"))
        if isinstance(g, ScoreModelGrader):
            score, error = parse_score(text, *g.range)
            return GradeResult(
                score=score, error=redact(error) if error else None, notes=_steps_note(text)
            )
        label, error = parse_label(text, g.labels)
        if error:
            return GradeResult(score=0.0, error=redact(error))
        return GradeResult(score=1.0 if label in g.passing_labels else 0.0, notes=f"label {label}")

    return list(await asyncio.gather(*(one(c) for c in contexts)))


def _steps_note(text: str) -> str:
    try:
        data = json.loads(text)
        steps = data.get("steps") if isinstance(data, dict) else None
        if steps:
            return redact(str(steps[-1].get("conclusion", "")))[:200]
    except (ValueError, AttributeError):
        pass
    return ""
