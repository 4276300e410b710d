"""Transforms practitioners otherwise do by hand, applied while copying a dataset.

Each example goes through the neutral conversation shape, so every transform works on every
format. The input file is never changed: :func:`transform_file` writes a new file, plus a record
of every dropped line (``<output stem>.dropped.jsonl``) when lines are dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from ftwizard.datasets.checks import check_example
from ftwizard.datasets.conversion import (
    Conversation,
    ConversionSkip,
    from_conversation,
    to_conversation,
)
from ftwizard.datasets.formats import DatasetFormat
from ftwizard.datasets.images import find_images, may_hold_images
from ftwizard.datasets.loading import SourceKind, iter_records
from ftwizard.datasets.writing import json_default, write_jsonl
from ftwizard.errors import InputError

PREVIOUS_TAG = "previous_assistant_message"

TransformKind = Literal[
    "top_k",
    "fold_assistant_turns",
    "append_stop_marker",
    "drop_system_prompt",
    "replace_system_prompt",
    "drop_duplicates",
    "drop_invalid",
]


class Transform(BaseModel):
    """One transform and its parameters (stored in sessions and replays as JSON).

    - ``top_k``: keep the first ``k`` items of list answers (a JSON array, or one item per
      line, bulleted or numbered); with ``field``, of that list-valued item field instead.
    - ``fold_assistant_turns``: earlier assistant turns become text in the next user message,
      inside ``<previous_assistant_message>`` tags; only the last answer stays an answer.
    - ``append_stop_marker``: append ``marker`` to the input (the last user message).
    - ``drop_system_prompt`` / ``replace_system_prompt`` (with ``text``).
    - ``drop_duplicates``: keep the first of identical examples.
    - ``drop_invalid``: drop every line validation reports an error on (for ``model``).
    """

    kind: TransformKind
    k: int | None = Field(default=None, ge=1)
    field: str | None = None
    marker: str | None = None
    text: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _needs(self) -> Transform:
        if self.kind == "top_k" and self.k is None:
            raise ValueError("top_k needs k")
        if self.kind == "append_stop_marker" and not self.marker:
            raise ValueError("append_stop_marker needs a marker")
        if self.kind == "replace_system_prompt" and self.text is None:
            raise ValueError("replace_system_prompt needs text")
        return self


class Dropped(BaseModel):
    """A line left out of the output, and why."""

    line: int
    reason: str
    codes: list[str] = Field(default_factory=list)


class TransformResult(BaseModel):
    """What :func:`transform_file` wrote."""

    input: str
    output: str
    format: DatasetFormat
    written: int = 0
    changed: int = 0
    dropped: list[Dropped] = Field(default_factory=list)
    dropped_record: str | None = None


# ---------------------------------------------------------------- per-example transforms

_ITEM_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def keep_top_k(answer: str, k: int) -> str:
    """The first ``k`` items of a list answer; other answers are returned unchanged."""
    stripped = answer.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            items = None
        if isinstance(items, list):
            return json.dumps(items[:k], ensure_ascii=False)
    lines = [line for line in answer.splitlines() if line.strip()]
    if len(lines) > 1 and all(_ITEM_LINE.match(line) for line in lines):
        return "\n".join(lines[:k])
    return answer


def _content_text(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    return content if isinstance(content, str) else None


def _top_k(conv: Conversation, t: Transform) -> None:
    assert t.k is not None
    if t.field:
        value = conv.extra.get(t.field)
        if isinstance(value, list):
            conv.extra[t.field] = value[: t.k]
        return
    targets = [m for m in conv.messages if m.get("role") == "assistant"][-1:]
    if conv.rejected is not None:
        targets.append(conv.rejected)
    for message in targets:
        text = _content_text(message)
        if text is not None:
            message["content"] = keep_top_k(text, t.k)


def _fold(conv: Conversation, _: Transform) -> None:
    messages = conv.messages
    # with a final answer, it stays; without one (RFT prompts), every assistant turn is earlier
    last_answer = (
        len(messages) - 1 if messages and messages[-1].get("role") == "assistant" else None
    )
    folded: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.get("role") == "assistant" and i != last_answer:
            text = _content_text(message) or ""
            message = {"role": "user", "content": f"<{PREVIOUS_TAG}>\n{text}\n</{PREVIOUS_TAG}>"}
        if (
            folded
            and message.get("role") == "user"
            and folded[-1].get("role") == "user"
            and isinstance(folded[-1].get("content"), str)
            and isinstance(message.get("content"), str)
        ):
            folded[-1] = {
                **folded[-1],
                "content": folded[-1]["content"] + "\n\n" + message["content"],
            }
        else:
            folded.append(dict(message))
    conv.messages = folded


def _stop_marker(conv: Conversation, t: Transform) -> None:
    assert t.marker
    answer_at = next(
        (
            i
            for i in range(len(conv.messages) - 1, -1, -1)
            if conv.messages[i].get("role") == "assistant"
        ),
        len(conv.messages),
    )
    for i in range(min(answer_at, len(conv.messages)) - 1, -1, -1):
        message = conv.messages[i]
        if message.get("role") == "user":
            text = _content_text(message)
            if text is not None and not text.endswith(t.marker):
                message["content"] = text + t.marker
            return


def _drop_system(conv: Conversation, _: Transform) -> None:
    conv.messages = [m for m in conv.messages if m.get("role") not in ("system", "developer")]


def _replace_system(conv: Conversation, t: Transform) -> None:
    _drop_system(conv, t)
    conv.messages.insert(0, {"role": "system", "content": t.text})


_EXAMPLE_TRANSFORMS = {
    "top_k": _top_k,
    "fold_assistant_turns": _fold,
    "append_stop_marker": _stop_marker,
    "drop_system_prompt": _drop_system,
    "replace_system_prompt": _replace_system,
}


def transform_example(
    data: dict[str, Any], fmt: DatasetFormat, transforms: Sequence[Transform]
) -> dict[str, Any]:
    """Apply the per-example transforms to one valid example, keeping its format (and its
    images, in their user turns)."""
    data = json.loads(json.dumps(data, default=json_default))
    images: list[Any] = []
    if may_hold_images(None, data) and find_images(data):
        from ftwizard.datasets.image_conversion import take_images

        data, images = take_images(data, None)
    conv = to_conversation(data, fmt)
    for t in transforms:
        fn = _EXAMPLE_TRANSFORMS.get(t.kind)
        if fn is not None:
            fn(conv, t)
    out = from_conversation(conv, fmt)
    if images:
        from ftwizard.datasets.image_conversion import put_images

        put_images(out, images, fmt)
    return out


# ---------------------------------------------------------------- whole-file transforms


def transform_file(
    input_path: str | Path,
    output_path: str | Path,
    transforms: Sequence[Transform],
    *,
    fmt: DatasetFormat | str | None = None,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
) -> TransformResult:
    """Copy ``input_path`` to ``output_path`` (JSONL) applying ``transforms`` in order.

    ``drop_invalid`` runs validation first and leaves out every line with an error;
    ``drop_duplicates`` compares examples after the other transforms. Every dropped line is
    listed in the result and in ``<output stem>.dropped.jsonl``.
    """
    from ftwizard.datasets.validation import detect_file_format, validate_file

    src, out = Path(input_path), Path(output_path)
    if out.exists() and out.resolve() == src.resolve():
        raise InputError("output would overwrite the input; choose another path", path=out)
    if fmt is None:
        found = detect_file_format(src, kind=kind, mapping=mapping)
        if found is None:
            raise InputError("could not recognise the dataset format; name it", path=src)
        dataset_format = found
    else:
        dataset_format = DatasetFormat(fmt)
    kinds = {t.kind for t in transforms}
    invalid: dict[int, list[tuple[str, str]]] = {}
    drop_invalid = next((t for t in transforms if t.kind == "drop_invalid"), None)
    if drop_invalid is not None:
        report = validate_file(
            src, fmt=dataset_format, model=drop_invalid.model, mapping=mapping, kind=kind
        )
        for problem in report.errors:
            if problem.line is not None:
                invalid.setdefault(problem.line, []).append((problem.code.value, problem.message))
    result = TransformResult(input=str(src), output=str(out), format=dataset_format)
    per_example = [t for t in transforms if t.kind in _EXAMPLE_TRANSFORMS]

    def rows() -> Iterator[dict[str, Any]]:
        seen: set[bytes] = set()
        for rec in iter_records(src, kind=kind, mapping=mapping, on_error="keep"):
            if rec.line in invalid:
                codes = [c for c, _ in invalid[rec.line]]
                result.dropped.append(
                    Dropped(
                        line=rec.line,
                        reason="; ".join(m for _, m in invalid[rec.line]),
                        codes=codes,
                    )
                )
                continue
            if rec.error is not None:
                raise InputError(
                    f"{rec.error}; fix the line or add the drop_invalid transform",
                    path=src,
                    line=rec.line,
                )
            if check_example(rec.data, dataset_format).errors:
                # without drop_invalid, an invalid example is copied as it is, never lost
                yield rec.data
                continue
            data = rec.data
            if per_example:
                try:
                    data = transform_example(data, dataset_format, per_example)
                except ConversionSkip as exc:
                    result.dropped.append(Dropped(line=rec.line, reason=f"example {exc}"))
                    continue
                if data != rec.data:
                    result.changed += 1
            if "drop_duplicates" in kinds:
                key = hashlib.blake2b(
                    json.dumps(
                        data, sort_keys=True, ensure_ascii=False, default=json_default
                    ).encode(),
                    digest_size=16,
                ).digest()
                if key in seen:
                    result.dropped.append(
                        Dropped(
                            line=rec.line, reason="duplicate example", codes=["duplicate_example"]
                        )
                    )
                    continue
                seen.add(key)
            yield data

    result.written = write_jsonl(out, rows())
    if result.dropped:
        record = out.with_name(out.stem + ".dropped.jsonl")
        write_jsonl(record, (d.model_dump() for d in result.dropped))
        result.dropped_record = str(record)
    return result
