"""Image rows for TRL's vision trainers: ``images`` plus prompt/completion (or chosen/rejected).

Rows come in as OpenAI chat examples whose user turns hold ``image_url`` parts (a data URI, a
path relative to the dataset file, or ``file://``), OpenAI preference rows of the same kind, or
TRL rows with an ``images`` / ``image`` column. They go out as TRL's prompt-completion vision
rows, so the loss covers the answer only::

    {"images": [PIL], "prompt": [{"role": "user", "content": [{"type": "image"},
     {"type": "text", "text": "..."}]}], "completion": [{"role": "assistant", "content": "..."}]}

Each image part becomes an ``{"type": "image"}`` placeholder in place, so the model sees the
images where the user put them. An image outside a user turn, a remote URL (never fetched) or
bytes that are not an image are an :class:`~ftwizard.errors.InputError` naming the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.media import MediaUnavailable, NotAnImage, load_pil, resolve_image

Row = dict[str, Any]


def _pil(ref: Any, base_dir: Path, path: Path, line: int, field: str) -> Any:
    """The RGB image ``ref`` names: a reference string or a ``{"bytes", "path"}`` struct."""
    try:
        if isinstance(ref, dict):
            data = ref.get("bytes")
            if not data:
                source = ref.get("path")
                if not isinstance(source, str):
                    raise InputError("an image has neither bytes nor a path", path=path, line=line)
                data = resolve_image(source, base_dir=base_dir)
        elif isinstance(ref, str):
            data = resolve_image(ref, base_dir=base_dir)
        else:
            raise InputError("an image must be a reference string", path=path, line=line)
        return load_pil(bytes(data)).convert("RGB")
    except MediaUnavailable as exc:
        raise InputError(str(exc), path=path, line=line, field=field) from None
    except (NotAnImage, OSError, ValueError) as exc:
        raise InputError(
            f"not a readable image: {exc}", path=path, line=line, field=field
        ) from None


def row_has_images(row: Row) -> bool:
    """Whether a dataset row carries an image in any of the shapes this module reads."""
    if row.get("images") or row.get("image"):
        return True
    source = row.get("input") if isinstance(row.get("input"), dict) else row
    messages = source.get("messages") if isinstance(source, dict) else None
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "image") for p in content
        ):
            return True
    return False


def _turns(messages: Any, base_dir: Path, path: Path, line: int, images: list[Any]) -> list[Row]:
    """``messages`` with image parts as placeholders; their images appended to ``images``."""
    if not isinstance(messages, list) or not messages:
        raise InputError("expected a non-empty 'messages' list", path=path, line=line)
    out: list[Row] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        role = "system" if role == "developer" else role
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise InputError(
                "content must be text or a list of parts",
                path=path,
                line=line,
                field=f"messages[{i}].content",
            )
        parts: list[Row] = []
        for j, part in enumerate(content):
            field = f"messages[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind in ("image_url", "image"):
                if role != "user":
                    raise InputError(
                        f"an image in a {role} turn; images belong in user turns",
                        path=path,
                        line=line,
                        field=field,
                    )
                ref = part.get("image_url", part.get("image"))
                if isinstance(ref, dict) and "url" in ref:
                    ref = ref["url"]
                if ref is not None:
                    images.append(_pil(ref, base_dir, path, line, field))
                parts.append({"type": "image"})
            else:
                raise InputError(
                    f"unknown content part type {kind!r}", path=path, line=line, field=field
                )
        out.append({"role": role, "content": parts})
    return out


def _column_images(row: Row, base_dir: Path, path: Path, line: int) -> list[Any]:
    refs = row.get("images", row.get("image"))
    refs = refs if isinstance(refs, list) else [refs]
    field = "images" if "images" in row else "image"
    return [_pil(ref, base_dir, path, line, field) for ref in refs if ref is not None]


def _as_turns(value: Any, role: str) -> list[Row]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, dict):
        return [value]
    return list(value)


def _check_placeholders(row: Row, path: Path, line: int) -> None:
    """TRL raises on a count mismatch deep in training; say it here, with the line."""
    count = sum(
        1
        for message in row["prompt"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image"
    )
    has_parts = any(isinstance(m.get("content"), list) for m in row["prompt"])
    if has_parts and count != len(row["images"]):
        raise InputError(
            f"{count} image placeholders in the prompt but {len(row['images'])} images",
            path=path,
            line=line,
            field="images",
        )


def vision_sft_rows(rows: list[Row], path: Path) -> list[Row]:
    """Prompt-completion vision rows for SFT (see the module docstring)."""
    base_dir = path.parent
    out: list[Row] = []
    for line, row in enumerate(rows, start=1):
        images: list[Any] = []
        if "prompt" in row and "completion" in row:
            prompt = _turns(_as_turns(row["prompt"], "user"), base_dir, path, line, images)
            completion = _as_turns(row["completion"], "assistant")
            images = images or _column_images(row, base_dir, path, line)
        else:
            turns = _turns(row.get("messages"), base_dir, path, line, images)
            if turns[-1]["role"] != "assistant":
                raise InputError(
                    "the last message must be the assistant's answer to train on",
                    path=path,
                    line=line,
                    field="messages",
                )
            prompt, completion = turns[:-1], turns[-1:]
            if not images:
                images = _column_images(row, base_dir, path, line)
        new = {"images": images, "prompt": prompt, "completion": completion}
        _check_placeholders(new, path, line)
        out.append(new)
    return out


def _answer(value: Any) -> list[Row]:
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return [{"role": "assistant", "content": value[-1].get("content", "")}]
    return _as_turns(value, "assistant")


def vision_dpo_rows(rows: list[Row], path: Path) -> list[Row]:
    """Prompt/chosen/rejected vision rows for DPO from OpenAI preference or TRL rows."""
    base_dir = path.parent
    out: list[Row] = []
    for line, row in enumerate(rows, start=1):
        images: list[Any] = []
        if {"prompt", "chosen", "rejected"} <= row.keys():
            prompt = _turns(_as_turns(row["prompt"], "user"), base_dir, path, line, images)
            chosen, rejected = _answer(row["chosen"]), _answer(row["rejected"])
            images = images or _column_images(row, base_dir, path, line)
        else:
            source = row.get("input")
            if not isinstance(source, dict) or "preferred_output" not in row:
                raise InputError(
                    "expected OpenAI preference data (input.messages, preferred_output, "
                    "non_preferred_output) or prompt/chosen/rejected",
                    path=path,
                    line=line,
                )
            prompt = _turns(source.get("messages"), base_dir, path, line, images)
            chosen = _answer(row["preferred_output"])
            rejected = _answer(row.get("non_preferred_output"))
        new = {"images": images, "prompt": prompt, "chosen": chosen, "rejected": rejected}
        _check_placeholders(new, path, line)
        out.append(new)
    return out


__all__ = ["row_has_images", "vision_dpo_rows", "vision_sft_rows"]
