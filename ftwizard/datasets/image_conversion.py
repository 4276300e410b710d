"""Images through format conversion, and placed where each backend reads them.

Conversion keeps the text path as it is: an example's images are taken out (remembering which
user turn held each), the text converts as before, and the images go back into the same user
turn in the target's own shape: ``image_url`` parts (OpenAI chat, Together, Fireworks),
``fileData`` parts (Vertex), ``{"type": "image"}`` placeholders plus an ``images`` column (TRL).
Relative paths become absolute (the converted file lives elsewhere) and inline bytes (a Hugging
Face ``Image`` column) become data URIs, so a JSONL file never holds bare bytes.

:mod:`ftwizard.providers.media_files` then places every reference for the backend that trains,
at upload: base64 data URIs for Together and Fireworks (and local files for OpenAI), the
session's bucket for Vertex.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftwizard.datasets.formats import ConversionSkip, DatasetFormat
from ftwizard.datasets.images import IMAGE_COLUMNS, find_images
from ftwizard.providers import media
from ftwizard.providers.media_files import rewrite_refs

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
_GEMINI_FILE_KEYS = ("fileData", "file_data", "inlineData", "inline_data")


def _ref(slot: Any, base_dir: Path | None) -> str:
    if slot.data is not None:
        try:
            return media.data_uri(slot.data)
        except media.NotAnImage as exc:
            raise ConversionSkip(f"has image bytes that {exc} ({slot.field})") from exc
    ref = slot.ref or ""
    if base_dir is None or media.reference_kind(ref) != "path":
        return ref
    path = media.local_path(ref, base_dir)
    return str(path.resolve()) if path is not None else ref


def _user_index(field: str, data: dict[str, Any]) -> int:
    """Which user turn (0-based, counting user turns only) of its list holds the image."""
    head, _, rest = field.partition("[")
    key = "input" if head == "input.messages" else head
    index = int(rest.split("]", 1)[0]) if rest and rest[0].isdigit() else 0
    turns = data.get(key)
    if key == "input" and isinstance(turns, dict):
        turns = turns.get("messages")
    if not isinstance(turns, list):
        return 0
    return sum(
        1
        for t in turns[:index]
        if isinstance(t, dict) and t.get("role") in ("user", None) and key != "completion"
    )


def take_images(data: dict[str, Any], base_dir: Path | None) -> tuple[dict[str, Any], list]:
    """``data`` without its images, and ``[(user_turn, reference)]`` in order."""
    slots = find_images(data)
    for slot in slots:
        if slot.role not in (None, "user"):
            raise ConversionSkip(
                f"has an image in a {slot.role!r} turn ({slot.field}); images go in user turns"
            )
    placed = [s for s in slots if s.placeholder]
    column = [s for s in slots if not s.placeholder and s.field.split("[")[0] in IMAGE_COLUMNS]
    # A column image stands where its placeholder is, or in the first user turn.
    column_turns = [_user_index(p.field, data) for p in placed] + [0] * len(column)
    found: list[tuple[int, str]] = []
    it = iter(column_turns)
    for slot in slots:
        if slot.placeholder:
            continue
        turn = next(it) if slot in column else _user_index(slot.field, data)
        found.append((turn, _ref(slot, base_dir)))
    return _strip(data), found


def _strip_content(message: Any) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    kept = [
        p
        for p in message["content"]
        if not (isinstance(p, dict) and p.get("type") in _IMAGE_PART_TYPES)
    ]
    return {**message, "content": kept if kept else ""}


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in IMAGE_COLUMNS}
    for key in ("messages", "prompt", "completion", "chosen", "rejected"):
        if isinstance(out.get(key), list):
            out[key] = [_strip_content(m) for m in out[key]]
    if isinstance(out.get("input"), dict) and isinstance(out["input"].get("messages"), list):
        out["input"] = {
            **out["input"],
            "messages": [_strip_content(m) for m in out["input"]["messages"]],
        }
    if isinstance(out.get("contents"), list):
        out["contents"] = [
            {
                **turn,
                "parts": [
                    p
                    for p in turn["parts"]
                    if not (isinstance(p, dict) and any(k in p for k in _GEMINI_FILE_KEYS))
                ],
            }
            if isinstance(turn, dict) and isinstance(turn.get("parts"), list)
            else turn
            for turn in out["contents"]
        ]
    return out


def mime_of(ref: str) -> str:
    """The MIME type a reference names: a data URI's header, else its file extension."""
    if media.reference_kind(ref) == "data":
        return ref[5:].split(";", 1)[0] or "image/png"
    guessed = mimetypes.guess_type(ref.split("?", 1)[0])[0]
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


def _nth_user(turns: list[Any], n: int, roles: tuple[str, ...] = ("user",)) -> Any:
    users = [t for t in turns if isinstance(t, dict) and t.get("role") in roles]
    return users[min(n, len(users) - 1)] if users else None


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [p for p in content or [] if isinstance(p, dict)]


def _conversational(value: Any, role: str) -> list[dict[str, Any]]:
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def put_images(out: dict[str, Any], images: list[tuple[int, str]], dst: DatasetFormat) -> None:
    """Put ``images`` back into the converted example ``out``, in ``dst``'s own shape."""
    if not images:
        return
    if dst in (DatasetFormat.GEMINI, DatasetFormat.GEMINI_PREFERENCE):
        for turn, ref in reversed(images):
            target = _nth_user(out["contents"], turn)
            file_part = {"fileData": {"mimeType": mime_of(ref), "fileUri": ref}}
            target["parts"].insert(0, file_part)
        return
    if dst in (DatasetFormat.CHAT, DatasetFormat.RFT, DatasetFormat.DPO):
        turns = out["input"]["messages"] if dst is DatasetFormat.DPO else out["messages"]
        for turn, ref in images:
            target = _nth_user(turns, turn)
            target["content"] = [
                *_text_parts(target["content"]),
                {"type": "image_url", "image_url": {"url": ref}},
            ]
        return
    # TRL shapes: placeholders in the user turn, the images in their own column.
    if dst is DatasetFormat.TRL:
        turns = out["messages"]
    else:
        for key, role in (
            ("completion", "assistant"),
            ("chosen", "assistant"),
            ("rejected", "assistant"),
        ):
            if key in out:
                out[key] = _conversational(out[key], role)
        out["prompt"] = _conversational(out["prompt"], "user")
        turns = out["prompt"]
    for turn, _ in reversed(images):
        target = _nth_user(turns, turn)
        target["content"] = [{"type": "image"}, *_text_parts(target["content"])]
    out["images"] = [ref for _, ref in images]


def embedded(value: Any) -> Any:
    """An image column's value as Hugging Face ``Image`` structs with the bytes embedded.

    Local files and data URIs are read into ``bytes`` (never a bare local path); only a remote
    URL, which cannot be read offline, stays a ``path`` without bytes.
    """
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        slot = find_images({"image": item})[0]
        if slot.data is not None:
            out.append({"bytes": slot.data, "path": None})
            continue
        ref = slot.ref or ""
        kind = media.reference_kind(ref)
        if kind in ("https", "http", "gs"):
            out.append({"bytes": None, "path": ref})
            continue
        data = media.resolve_image(ref)
        name = None if kind == "data" else Path(media.local_path(ref, None) or ref).name
        out.append({"bytes": data, "path": name})
    return out if isinstance(value, list) else out[0]


def hf_features(row: dict[str, Any]) -> dict[str, Any]:
    """The ``huggingface`` schema metadata that makes ``datasets`` read image columns as
    ``Image`` features (``List(Image())`` for a list column)."""
    features: dict[str, Any] = {}
    for key, value in row.items():
        if key in IMAGE_COLUMNS:
            image = {"_type": "Image"}
            features[key] = (
                {"feature": image, "_type": "List"} if isinstance(value, list) else image
            )
        elif isinstance(value, str) or value is None:
            features[key] = {"dtype": "string", "_type": "Value"}
        elif isinstance(value, bool):
            features[key] = {"dtype": "bool", "_type": "Value"}
        elif isinstance(value, int):
            features[key] = {"dtype": "int64", "_type": "Value"}
        elif isinstance(value, float):
            features[key] = {"dtype": "float64", "_type": "Value"}
    return {"info": {"features": features}}


def absolute_paths(data: Any, place: Callable[[str], str]) -> Any:
    """``data`` with relative image paths made absolute; inline bytes stay bytes, so bytes
    that are not an image are still reported on their own line."""
    if not isinstance(data, dict):
        return data
    columns = {k: data[k] for k in IMAGE_COLUMNS if k in data}
    out = rewrite_refs({k: v for k, v in data.items() if k not in columns}, place)
    for key, value in columns.items():
        items = value if isinstance(value, list) else [value]
        fixed = [_absolute_item(item, place) for item in items]
        out[key] = fixed if isinstance(value, list) else fixed[0]
    return out


def _absolute_item(item: Any, place: Callable[[str], str]) -> Any:
    if isinstance(item, str):
        return place(item)
    if isinstance(item, dict) and not item.get("bytes") and isinstance(item.get("path"), str):
        return {**item, "path": place(item["path"])}
    return item
