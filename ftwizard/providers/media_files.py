"""Images inside a training file, placed where a backend reads them before upload.

Together and Fireworks take images only as base64 data URIs, OpenAI takes URLs or data URIs,
Vertex takes ``gs://`` (or public https) URIs. :func:`rewrite_refs` walks every place an example
names an image (``image_url`` parts, ``input_image`` parts, Vertex ``fileData``, TRL ``images``
columns); :func:`place_file` writes a copy of a JSONL file with each reference rewritten for the
backend. A file with no image reference is returned as it is, read once as bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers import media

Uploader = Callable[[bytes, str], str]
"""Stores image bytes (with their MIME type) and returns the URI the training file names."""

IMAGE_COLUMNS = ("images", "image", "image_path")
_MARKERS = (b'"image_url"', b'"input_image"', b'"fileData"', b'"images"', b'"image"')


def _column_item(item: Any) -> Any:
    """A TRL/HF column entry as a reference: bytes (or ``{"bytes": ...}``) become a data URI."""
    if isinstance(item, dict):
        raw = item.get("bytes")
        if isinstance(raw, bytes | bytearray) and raw:
            return media.data_uri(bytes(raw))
        return item.get("path") or ""
    if isinstance(item, bytes | bytearray):
        return media.data_uri(bytes(item))
    return item


def rewrite_refs(data: Any, fn: Callable[[str], str]) -> Any:
    """``data`` with every image reference passed through ``fn``."""
    if not isinstance(data, dict):
        return data
    out = dict(data)

    def part(p: Any) -> Any:
        if not isinstance(p, dict):
            return p
        kind, inner = p.get("type"), p.get("image_url")
        if kind == "image_url" and isinstance(inner, dict) and isinstance(inner.get("url"), str):
            return {**p, "image_url": {**inner, "url": fn(inner["url"])}}
        if kind in ("image_url", "input_image") and isinstance(inner, str):
            return {**p, "image_url": fn(inner)}
        return p

    def messages(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            {**m, "content": [part(p) for p in m["content"]]}
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            else m
            for m in value
        ]

    for key in ("messages", "prompt", "completion", "chosen", "rejected"):
        if key in out:
            out[key] = messages(out[key])
    if isinstance(out.get("input"), dict):
        out["input"] = {**out["input"], "messages": messages(out["input"].get("messages"))}
    if isinstance(out.get("contents"), list):
        out["contents"] = [_gemini_turn(t, fn) for t in out["contents"]]
    for key in IMAGE_COLUMNS:
        value = out.get(key)
        if value is None or value == "":
            continue
        items = value if isinstance(value, list) else [value]
        fixed = [fn(ref) if isinstance(ref, str) else ref for ref in map(_column_item, items)]
        out[key] = fixed if isinstance(value, list) else fixed[0]
    return out


def _gemini_turn(turn: Any, fn: Callable[[str], str]) -> Any:
    if not isinstance(turn, dict) or not isinstance(turn.get("parts"), list):
        return turn
    parts = []
    for p in turn["parts"]:
        fd = p.get("fileData") if isinstance(p, dict) else None
        if isinstance(fd, dict) and isinstance(fd.get("fileUri"), str):
            p = {**p, "fileData": {**fd, "fileUri": fn(fd["fileUri"])}}
        parts.append(p)
    return {**turn, "parts": parts}


def placer(
    backend: str, *, base_dir: Path | None, uploader: Uploader | None = None
) -> Callable[[str], str]:
    """The rewrite of one reference for ``backend``.

    ``local``: relative paths become absolute. Together, Fireworks and OpenAI: local files
    become data URIs (a URL stays for OpenAI; Together and Fireworks refuse it). Vertex: local
    files and data URIs go through ``uploader`` to Cloud Storage, each distinct image once.
    """
    limits = media.limits_for(backend)
    done: dict[str, str] = {}

    def place(ref: str) -> str:
        if ref in done:
            return done[ref]
        kind = media.reference_kind(ref)
        if backend == "vertex" and kind not in ("gs", "https", "http"):
            if uploader is None:
                raise InputError("Vertex reads images from Cloud Storage; no bucket to upload to")
            data = media.resolve_image(ref, base_dir=base_dir)
            new = uploader(data, media.sniff_image(data).mime)
        elif kind in ("https", "http") and limits.base64_only:
            raise InputError(
                f"{backend} takes images only as base64 data URIs; "
                f"'{media.describe_reference(ref)}' is a URL ftwizard does not fetch"
            )
        elif kind in ("path", "file") and (limits.base64_only or backend == "openai"):
            new = media.to_data_uri(ref, base_dir=base_dir)
        elif kind == "path":
            path = media.local_path(ref, base_dir)
            new = str(path.resolve()) if path is not None else ref
        else:
            new = ref
        done[ref] = new
        return new

    return place


def may_reference_images(path: Path) -> bool:
    """Whether the JSONL file at ``path`` may name an image (a byte search, no parsing)."""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            if any(m in chunk for m in _MARKERS):
                return True
    return False


def place_file(
    path: Path,
    backend: str,
    *,
    base_dir: Path | None = None,
    uploader: Uploader | None = None,
    out: Path | None = None,
) -> Path:
    """``path`` itself when it names no image, else a copy with every image placed for
    ``backend`` (beside it, ``<stem>.<backend>-images.jsonl``, unless ``out`` is given).

    Raises :class:`~ftwizard.errors.InputError` naming the line of an image that cannot be
    placed (a missing file, a URL for a base64-only backend).
    """
    if not may_reference_images(path):
        return path
    fn = placer(backend, base_dir=base_dir or path.parent, uploader=uploader)
    target = out or path.with_name(f"{path.stem}.{backend}-images.jsonl")
    changed = False
    tmp = target.with_name(target.name + ".tmp")
    with path.open("rb") as src, tmp.open("w", encoding="utf-8") as dst:
        for lineno, raw in enumerate(src, start=1):
            if not raw.strip():
                dst.write("\n")
                continue
            try:
                data = json.loads(raw)
                placed = rewrite_refs(data, fn)
            except (media.MediaUnavailable, media.NotAnImage, InputError) as exc:
                tmp.unlink(missing_ok=True)
                raise InputError(str(exc), path=path, line=lineno) from None
            except ValueError:
                placed = None
            if placed is None or placed == data:
                dst.write(raw.decode("utf-8").rstrip("\n") + "\n")
                continue
            changed = True
            dst.write(json.dumps(placed, ensure_ascii=False) + "\n")
    if not changed:
        tmp.unlink()
        return path
    tmp.replace(target)
    return target


def gcs_uploader(upload: Callable[[bytes, str, str], str], prefix: str) -> Uploader:
    """An :data:`Uploader` that stores each image once under ``prefix``, named by its digest.

    ``upload(data, object_name, mime)`` stores the bytes and returns their ``gs://`` URI.
    """
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

    def store(data: bytes, mime: str) -> str:
        digest = hashlib.sha256(data).hexdigest()[:24]
        return upload(data, f"{prefix}/images/{digest}.{ext.get(mime, 'img')}", mime)

    return store
