"""Where a dataset example holds images, in every shape ftwizard reads.

- OpenAI chat (and Together, Fireworks): ``image_url`` content parts (also the Responses API's
  ``input_image``) holding an https URL, a data URI, a path relative to the dataset file or a
  ``file://`` URL;
- Vertex Gemini: ``contents[].parts[].fileData`` (``gs://`` or https) and ``inlineData``;
- TRL: an ``images`` (list) or ``image`` column beside ``prompt``/``completion`` or ``messages``,
  whose messages hold ``{"type": "image"}`` placeholders;
- Hugging Face parquet/Arrow: an ``Image`` feature, read as ``{"bytes": ..., "path": ...}``;
- CSV/parquet: an image-path column (``image``, ``images``, ``image_path``, or any column mapped
  to ``image`` with ``--map image=COLUMN``).

:func:`find_images` lists every image of one example with the field that holds it and the role
of its turn; checking them per target is :mod:`ftwizard.datasets.image_checks`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

#: Columns that hold an example's images (TRL's names, and a plain path column).
IMAGE_COLUMNS = ("images", "image", "image_path")

#: Byte strings of which at least one is in every JSONL line that holds an image: lines with
#: none of them skip image handling at the cost of a substring search.
RAW_MARKERS = (b"image", b"fileData", b"file_data", b"inlineData", b"inline_data")

_PART_TYPES = frozenset({"image_url", "input_image", "image"})


@dataclass(slots=True)
class ImageSlot:
    """One image of an example.

    ``ref`` is a reference (URL, data URI, path, ``gs://``) or ``None`` when the bytes are inline
    (``data``) or the slot is a placeholder whose image is in the ``images`` column.
    ``role`` is the role of the turn that holds it (``None`` for a column: it goes with the
    prompt). ``field`` names where it is, e.g. ``messages[1].content[2].image_url.url``.
    """

    field: str
    role: str | None
    ref: str | None = None
    data: bytes | None = None
    mime: str | None = None
    detail: str | None = None
    placeholder: bool = False


def may_hold_images(raw: bytes | None, data: Any) -> bool:
    """A cheap test that skips every text-only example: False means ``data`` has no image."""
    if raw is not None:
        return any(marker in raw for marker in RAW_MARKERS)
    if not isinstance(data, dict):
        return False
    if any(col in data for col in IMAGE_COLUMNS):
        return True
    for key in ("messages", "contents", "prompt", "completion", "input", "chosen", "rejected"):
        value = data.get(key)
        if isinstance(value, list | dict) and not isinstance(value, str):
            return True
    return False


def _message_parts(message: Any, where: str, out: list[ImageSlot]) -> None:
    if not isinstance(message, dict):
        return
    content = message.get("content")
    if not isinstance(content, list):
        return
    role = message.get("role") if isinstance(message.get("role"), str) else None
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in _PART_TYPES:
            continue
        field = f"{where}.content[{j}]"
        kind = part["type"]
        if kind == "image_url":
            inner = part.get("image_url")
            if isinstance(inner, dict):
                url = inner.get("url")
                detail = inner.get("detail")
                out.append(
                    ImageSlot(
                        f"{field}.image_url.url",
                        role,
                        ref=url if isinstance(url, str) else "",
                        detail=detail if isinstance(detail, str) else None,
                    )
                )
            else:
                out.append(
                    ImageSlot(
                        f"{field}.image_url", role, ref=inner if isinstance(inner, str) else ""
                    )
                )
        elif kind == "input_image":
            url = part.get("image_url")
            out.append(
                ImageSlot(f"{field}.image_url", role, ref=url if isinstance(url, str) else "")
            )
        else:  # TRL / Axolotl {"type": "image"}: a placeholder, or the image itself
            for key in ("image", "url", "path", "base64"):
                value = part.get(key)
                if isinstance(value, str) and value:
                    if key == "base64" and not value.startswith("data:"):
                        value = "data:image/png;base64," + value
                    out.append(ImageSlot(f"{field}.{key}", role, ref=value))
                    break
                if isinstance(value, dict | bytes):
                    out.append(_column_item(value, f"{field}.{key}", role))
                    break
            else:
                out.append(ImageSlot(field, role, placeholder=True))


def _messages(value: Any, where: str, out: list[ImageSlot]) -> None:
    if isinstance(value, list):
        for i, message in enumerate(value):
            _message_parts(message, f"{where}[{i}]", out)


def _gemini(contents: Any, where: str, out: list[ImageSlot]) -> None:
    if not isinstance(contents, list):
        return
    for i, turn in enumerate(contents):
        if not isinstance(turn, dict) or not isinstance(turn.get("parts"), list):
            continue
        role = turn.get("role") if isinstance(turn.get("role"), str) else None
        for j, part in enumerate(turn["parts"]):
            if not isinstance(part, dict):
                continue
            field = f"{where}[{i}].parts[{j}]"
            for key in ("fileData", "file_data"):
                fd = part.get(key)
                if isinstance(fd, dict):
                    uri = fd.get("fileUri", fd.get("file_uri"))
                    mime = fd.get("mimeType", fd.get("mime_type"))
                    out.append(
                        ImageSlot(
                            f"{field}.{key}.fileUri" if "fileUri" in fd else f"{field}.{key}",
                            role,
                            ref=uri if isinstance(uri, str) else "",
                            mime=mime if isinstance(mime, str) else None,
                        )
                    )
            for key in ("inlineData", "inline_data"):
                inline = part.get(key)
                if isinstance(inline, dict) and isinstance(inline.get("data"), str):
                    mime = inline.get("mimeType", inline.get("mime_type")) or "image/png"
                    out.append(
                        ImageSlot(
                            f"{field}.{key}.data",
                            role,
                            ref=f"data:{mime};base64,{inline['data']}",
                            mime=mime if isinstance(mime, str) else None,
                        )
                    )


def _column_item(item: Any, field: str, role: str | None = None) -> ImageSlot:
    """One entry of an ``images``/``image`` column: a reference, bytes or an HF ``Image``."""
    if isinstance(item, str):
        return ImageSlot(field, role, ref=item)
    if isinstance(item, bytes | bytearray):
        return ImageSlot(field, role, data=bytes(item))
    if isinstance(item, dict):
        raw = item.get("bytes")
        if isinstance(raw, bytes | bytearray) and raw:
            return ImageSlot(f"{field}.bytes", role, data=bytes(raw))
        if isinstance(raw, str) and raw:  # bytes that went through JSON as base64
            if raw.startswith("data:"):
                return ImageSlot(f"{field}.bytes", role, ref=raw)
            try:
                return ImageSlot(f"{field}.bytes", role, data=base64.b64decode(raw))
            except ValueError:
                pass
        path = item.get("path")
        # The Image feature falls back to its path when the bytes were not embedded.
        return ImageSlot(f"{field}.path", role, ref=path if isinstance(path, str) else "")
    return ImageSlot(field, role, ref="")


def find_images(data: Any) -> list[ImageSlot]:
    """Every image of one example, in order: parts in its turns, then its image column."""
    out: list[ImageSlot] = []
    if not isinstance(data, dict):
        return out
    _messages(data.get("messages"), "messages", out)
    inner = data.get("input")
    if isinstance(inner, dict):
        _messages(inner.get("messages"), "input.messages", out)
    for key in (
        "preferred_output",
        "non_preferred_output",
        "prompt",
        "completion",
        "chosen",
        "rejected",
    ):
        _messages(data.get(key), key, out)
    _gemini(data.get("contents"), "contents", out)
    for key in IMAGE_COLUMNS:
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if isinstance(value, list):
            out.extend(_column_item(item, f"{key}[{i}]") for i, item in enumerate(value))
        elif value != "":
            out.append(_column_item(value, key))
    return out


def column_images(data: dict[str, Any]) -> list[ImageSlot]:
    """Only the images of an example's image column (what TRL's placeholders stand for)."""
    return [s for s in find_images({k: data[k] for k in IMAGE_COLUMNS if k in data})]
