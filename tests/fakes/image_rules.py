"""What each provider's documentation says about images in an uploaded training file, for the
fakes to refuse what the real service would (shared/research/vision-finetuning.md).

- OpenAI: ``image_url`` is an https URL or a ``data:image/...;base64`` URI; at most 10 images per
  example, 10 MB each, JPEG/PNG/WEBP; no image in an assistant turn.
- Together: base64 data URIs only; 10 images, 10 MB; PNG/JPEG/WEBP; user turns only.
- Fireworks: base64 data URIs only; PNG/JPEG.
- Vertex: ``fileData.fileUri`` is a ``gs://`` object that exists (or public https) with a
  ``mimeType``; at most 30 images per example.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

_RULES: dict[str, dict[str, Any]] = {
    "openai": {"max": 10, "formats": (b"\x89PNG", b"\xff\xd8", b"RIFF"), "urls": True},
    "together": {"max": 10, "formats": (b"\x89PNG", b"\xff\xd8", b"RIFF"), "urls": False},
    "fireworks": {"max": 10, "formats": (b"\x89PNG", b"\xff\xd8"), "urls": False},
}
_MB = 1024 * 1024


def _chat_images(row: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for message in row.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    found.append((message.get("role"), part["image_url"]["url"]))
    return found


def _check_url(url: str, rules: dict[str, Any]) -> str | None:
    if url.startswith("https://") and rules["urls"]:
        return None
    if not url.startswith("data:image/") or ";base64," not in url:
        return "images must be base64-encoded data URIs (data:image/<type>;base64,...)"
    data = base64.b64decode(url.split(",", 1)[1])
    if len(data) > 10 * _MB:
        return "an image is over 10 MB"
    if not data.startswith(rules["formats"]):
        return "unsupported image format"
    return None


def chat_image_problem(data: bytes, backend: str) -> str | None:
    """Why an OpenAI-style chat JSONL upload breaks ``backend``'s image rules, or None."""
    rules = _RULES[backend]
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        images = _chat_images(row) if isinstance(row, dict) else []
        if len(images) > rules["max"]:
            return f"line {number}: more than {rules['max']} images in one example"
        for role, url in images:
            if role != "user":
                return f"line {number}: images are only allowed in user messages"
            problem = _check_url(url, rules)
            if problem:
                return f"line {number}: {problem}"
    return None


def gemini_image_problem(data: bytes, read_gcs: Callable[[str], bytes | None]) -> str | None:
    """Why a Vertex tuning JSONL breaks the image rules: a fileData that is not a stored
    ``gs://`` object (or https URL), without a mimeType, or more than 30 images."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        files = [
            part["fileData"]
            for turn in row.get("contents") or []
            for part in turn.get("parts") or []
            if isinstance(part, dict) and "fileData" in part
        ]
        if len(files) > 30:
            return f"line {number}: more than 30 images in one example"
        for fd in files:
            uri = fd.get("fileUri", "")
            if not fd.get("mimeType"):
                return f"line {number}: fileData needs a mimeType"
            if uri.startswith("https://"):
                continue
            if not uri.startswith("gs://") or read_gcs(uri) is None:
                return f"line {number}: file {uri} does not exist or is not accessible"
    return None
