"""Images shared by every provider: resolve a reference to bytes, sniff it, encode it, limits.

A dataset names an image in one of five ways: an ``https://`` URL, a ``data:`` URI, a path
relative to the dataset file, a ``file://`` URL or a ``gs://`` URI. :func:`resolve_image` turns
any of them into bytes where that can be done offline, and raises :class:`MediaUnavailable`
(with a ``reason`` a check can report) where it cannot. :func:`sniff_image` reads the format,
size and mode; Pillow is imported only there, so a text-only dataset never pays for it.

:data:`IMAGE_LIMITS` holds each backend's documented limits as data (sources in
``shared/research/vision-finetuning.md``).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.base import ProviderError

RefKind = Literal["https", "http", "data", "file", "gs", "path"]
Reason = Literal["remote", "missing", "bad-data-uri", "unreadable", "no-bucket-reader"]

MB = 1024 * 1024

#: Pillow's format name -> MIME type, for the formats any backend accepts.
FORMAT_MIME: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "HEIC": "image/heic",
    "HEIF": "image/heif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
MIME_FORMAT: dict[str, str] = {mime: fmt for fmt, mime in FORMAT_MIME.items()} | {
    "image/jpg": "JPEG"
}


class MediaUnavailable(FtwizardError):
    """An image reference that cannot be turned into bytes here; ``reason`` says why."""

    def __init__(self, message: str, *, reason: Reason) -> None:
        self.reason: Reason = reason
        super().__init__(message)


class NotAnImage(FtwizardError):
    """Bytes that do not open as an image."""


@dataclass(frozen=True)
class ImageLimits:
    """What one backend accepts for images in a training file."""

    backend: str
    max_images: int
    max_bytes: int
    formats: frozenset[str]
    modes: frozenset[str] | None
    #: The backend only takes images inline as base64 data URIs (no URLs, no paths).
    base64_only: bool
    #: URL schemes the backend fetches itself ("https", "gs"); empty when it fetches none.
    remote_schemes: frozenset[str]
    source: str

    def describe_formats(self) -> str:
        """The accepted formats as a user reads them: ``PNG, JPEG or WEBP``."""
        order = ["PNG", "JPEG", "WEBP", "GIF", "HEIC", "HEIF", "BMP", "TIFF"]
        names = [f for f in order if f in self.formats]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_RGB = frozenset({"RGB", "RGBA"})

#: Per-backend limits. ``local`` is what the local trainer can decode (any Pillow image,
#: converted to RGB by the processor), with Qwen's processor as the only ceiling that matters.
IMAGE_LIMITS: dict[str, ImageLimits] = {
    "openai": ImageLimits(
        "openai",
        10,
        10 * MB,
        frozenset({"PNG", "JPEG", "WEBP"}),
        _RGB,
        False,
        frozenset({"https", "http"}),
        "OpenAI vision fine-tuning guide, Image data requirements",
    ),
    "together": ImageLimits(
        "together",
        10,
        10 * MB,
        frozenset({"PNG", "JPEG", "WEBP"}),
        None,
        True,
        frozenset(),
        "docs.together.ai/docs/fine-tuning/vision; together/lib/constants.py",
    ),
    "fireworks": ImageLimits(
        "fireworks",
        10,
        10 * MB,
        frozenset({"PNG", "JPEG"}),
        None,
        True,
        frozenset(),
        "docs.fireworks.ai/fine-tuning/fine-tuning-vlm",
    ),
    "vertex": ImageLimits(
        "vertex",
        30,
        20 * MB,
        frozenset({"PNG", "JPEG", "WEBP", "HEIC", "HEIF"}),
        None,
        False,
        frozenset({"gs", "https", "http"}),
        "Vertex AI tune_gemini/image_tune",
    ),
    "anthropic": ImageLimits(
        "anthropic",
        100,
        5 * MB,
        frozenset({"PNG", "JPEG", "WEBP", "GIF"}),
        None,
        True,
        frozenset(),
        "platform.claude.com build-with-claude/vision",
    ),
    "local": ImageLimits(
        "local",
        64,
        64 * MB,
        frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"}),
        None,
        False,
        frozenset(),
        "what Pillow decodes; the processor converts to RGB",
    ),
}


def limits_for(backend: str) -> ImageLimits:
    """The limits for ``backend`` (a model prefix such as ``together``); ``local`` if unknown."""
    return IMAGE_LIMITS.get(backend, IMAGE_LIMITS["local"])


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`sniff_image` found: Pillow's format name, MIME type, pixels, mode, bytes."""

    format: str
    mime: str
    width: int
    height: int
    mode: str
    size_bytes: int

    def summary(self) -> str:
        """``PNG 64x48 RGB, 1.2 KB``: what a preview line shows."""
        return (
            f"{self.format} {self.width}x{self.height} {self.mode}, {human_bytes(self.size_bytes)}"
        )


def human_bytes(n: int) -> str:
    """A byte count as a user reads it (``812 B``, ``1.2 KB``, ``10.0 MB``)."""
    if n < 1024:
        return f"{n} B"
    if n < MB:
        return f"{n / 1024:.1f} KB"
    return f"{n / MB:.1f} MB"


def reference_kind(ref: str) -> RefKind:
    """Which of the five ways ``ref`` names an image (a bare string is a path)."""
    head = ref[:8].lower()
    if head.startswith("data:"):
        return "data"
    if head.startswith("https://"):
        return "https"
    if head.startswith("http://"):
        return "http"
    if head.startswith("file://"):
        return "file"
    if head.startswith("gs://"):
        return "gs"
    return "path"


def describe_reference(ref: str) -> str:
    """A short form of ``ref`` for messages: a data URI is shown by its MIME type only."""
    if reference_kind(ref) == "data":
        return ref.split(",", 1)[0] + ",…"
    return ref if len(ref) <= 80 else ref[:77] + "…"


def local_path(ref: str, base_dir: Path | None) -> Path | None:
    """The file a ``path`` or ``file://`` reference names (relative to ``base_dir``), else None."""
    kind = reference_kind(ref)
    if kind == "file":
        parsed = urlparse(ref)
        return Path(unquote(parsed.path))
    if kind != "path":
        return None
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """``data:<mime>;base64,<payload>`` -> (mime, bytes); :class:`MediaUnavailable` otherwise."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().startswith("data:"):
        raise MediaUnavailable(
            "a data URI needs 'data:<mime>;base64,<data>'", reason="bad-data-uri"
        )
    meta = header[5:].split(";")
    mime = meta[0].strip().lower() or "text/plain"
    if "base64" not in (m.strip().lower() for m in meta[1:]):
        raise MediaUnavailable(
            f"data URI '{describe_reference(uri)}' is not base64-encoded", reason="bad-data-uri"
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaUnavailable(
            f"data URI '{describe_reference(uri)}' has invalid base64 ({exc})",
            reason="bad-data-uri",
        ) from exc
    return mime, data


def resolve_image(
    ref: str,
    *,
    base_dir: Path | None = None,
    gcs_reader: Callable[[str], bytes] | None = None,
) -> bytes:
    """The bytes ``ref`` names, read offline.

    ``https``/``http`` URLs are never fetched (reason ``remote``); ``gs://`` is read only through
    ``gcs_reader`` (reason ``no-bucket-reader`` without one); a missing local file is ``missing``.
    """
    kind = reference_kind(ref)
    if kind == "data":
        return decode_data_uri(ref)[1]
    if kind in ("https", "http"):
        raise MediaUnavailable(
            f"'{describe_reference(ref)}' is a URL; ftwizard does not fetch it (offline)",
            reason="remote",
        )
    if kind == "gs":
        if gcs_reader is None:
            raise MediaUnavailable(
                f"'{ref}' is in Cloud Storage; no bucket reader was given",
                reason="no-bucket-reader",
            )
        return gcs_reader(ref)
    path = local_path(ref, base_dir)
    assert path is not None
    if not path.is_file():
        raise MediaUnavailable(f"image file '{path}' does not exist", reason="missing")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaUnavailable(
            f"image file '{path}' cannot be read ({exc})", reason="unreadable"
        ) from exc


def _pil_image():  # type: ignore[no-untyped-def]
    # Pillow is imported here only, so reading a text-only dataset never loads it.
    from PIL import Image

    return Image


def sniff_image(data: bytes) -> ImageInfo:
    """Format, size and mode of ``data``; :class:`NotAnImage` if Pillow cannot open it."""
    image_mod = _pil_image()
    try:
        with image_mod.open(io.BytesIO(data)) as img:
            fmt = (img.format or "").upper()
            width, height = img.size
            mode = img.mode
            img.verify()
    except image_mod.DecompressionBombError as exc:
        raise NotAnImage(f"the image has too many pixels to open safely ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for bad bytes; all mean "not an image".
        raise NotAnImage(f"the bytes do not open as an image ({type(exc).__name__})") from exc
    if fmt == "MPO":  # multi-picture JPEG from phones: a JPEG to every backend
        fmt = "JPEG"
    mime = FORMAT_MIME.get(fmt, f"image/{fmt.lower()}")
    return ImageInfo(fmt, mime, int(width), int(height), mode, len(data))


def data_uri(data: bytes, mime: str | None = None) -> str:
    """``data:<mime>;base64,...`` for ``data``; the MIME type is sniffed when not given."""
    if mime is None:
        mime = sniff_image(data).mime
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def to_data_uri(ref: str, *, base_dir: Path | None = None) -> str:
    """``ref`` as a data URI (a data URI is returned unchanged); for base64-only backends."""
    if reference_kind(ref) == "data":
        return ref
    return data_uri(resolve_image(ref, base_dir=base_dir))


def sendable_image(ref: str) -> str:
    """``ref`` as a chat API takes it: URLs and data URIs as they are, a local file (path or
    ``file://``) as a data URI."""
    if reference_kind(ref) in ("path", "file"):
        return to_data_uri(ref)
    return ref


def load_pil(data: bytes):  # type: ignore[no-untyped-def]
    """A decoded Pillow image of ``data`` (for the preview and local training)."""
    image_mod = _pil_image()
    img = image_mod.open(io.BytesIO(data))
    img.load()
    return img


def content_images(content: object) -> list[str]:
    """The image references in a message's content parts (``image_url`` parts' URLs and
    ``image`` parts that hold a reference string), in order; none for plain text."""
    if not isinstance(content, list):
        return []
    refs: list[str] = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("image_url", "image"):
            continue
        ref = part.get("image_url", part.get("image"))
        if isinstance(ref, dict):
            ref = ref.get("url")
        if isinstance(ref, str) and ref:
            refs.append(ref)
    return refs


def unsendable_image(exc: InputError, *, provider: str, model: str) -> ProviderError:
    """A chat call's image that could not be sent (``exc``, raised while building the request)
    as that call's :class:`ProviderError`, so a batch of calls records it against its row
    instead of stopping the run."""
    hint = None
    if "Cloud Storage" in exc.message:
        # A Vertex session's held-out rows name their pictures by gs:// URI; only Gemini on
        # Vertex reads them.
        hint = (
            f"{provider} cannot read gs:// images; compare Vertex (gemini) models on these "
            "rows, or give the images as local files or data URIs"
        )
    return ProviderError(
        f"field '{exc.field}': {exc.message}" if exc.field else exc.message,
        provider=provider,
        model=model,
        hint=hint,
    )


@contextmanager
def image_failures_per_call(*, provider: str, model: str) -> Iterator[None]:
    """Turn an image a chat API cannot take (a gs:// URI, a missing file: an
    :class:`InputError` on field ``image`` while the request is built) into that call's
    :class:`ProviderError`, so callers running many rows record it against the row."""
    try:
        yield
    except InputError as exc:
        if exc.field != "image":
            raise
        raise unsendable_image(exc, provider=provider, model=model) from None


def gemini_part_image(part: object) -> str | None:
    """The image a Gemini ``parts`` entry holds, as :class:`ChatMessage` images are named:
    ``inlineData`` as a data URI, ``fileData`` as its URI (``gs://``, ``https://``); ``None``
    for a text part or anything else."""
    if not isinstance(part, dict):
        return None
    for key in ("inlineData", "inline_data"):
        inline = part.get(key)
        if isinstance(inline, dict) and isinstance(inline.get("data"), str) and inline["data"]:
            mime = inline.get("mimeType", inline.get("mime_type"))
            # Gemini requires the MIME type; a row missing it is most likely a PNG, as the
            # dataset checks assume too.
            mime = mime if isinstance(mime, str) and mime else "image/png"
            return f"data:{mime};base64,{inline['data']}"
    for key in ("fileData", "file_data"):
        file_data = part.get(key)
        if isinstance(file_data, dict):
            uri = file_data.get("fileUri", file_data.get("file_uri"))
            if isinstance(uri, str) and uri:
                return uri
    return None


def anchor_images(row: dict[str, object], base_dir: Path) -> dict[str, object]:
    """``row`` with relative image paths in its messages (or Gemini ``contents``) made absolute
    against ``base_dir``.

    A row read from a dataset file names its images relative to that file; once the row
    travels (to a model, a report, another process) the file's folder is lost, so callers that
    know it anchor the paths first. Rows without relative image paths come back unchanged.
    """

    def fix_turns(turns: object) -> object:
        if not isinstance(turns, list):
            return turns
        out = []
        for turn in turns:
            content = turn.get("content") if isinstance(turn, dict) else None
            if not isinstance(content, list) or not any(
                reference_kind(ref) == "path" and not Path(ref).is_absolute()
                for ref in content_images(content)
            ):
                out.append(turn)
                continue
            parts = []
            for part in content:
                ref = content_images([part])
                if ref and reference_kind(ref[0]) == "path" and not Path(ref[0]).is_absolute():
                    absolute = str(base_dir / ref[0])
                    if part.get("type") == "image_url":
                        inner = part.get("image_url")
                        inner = {**inner, "url": absolute} if isinstance(inner, dict) else absolute
                        part = {**part, "image_url": inner}
                    else:
                        part = {**part, "image": absolute}
                parts.append(part)
            out.append({**turn, "content": parts})
        return out

    def fix_contents(turns: object) -> object:
        # Gemini rows (a Vertex session's converted files) name a local picture by fileUri.
        if not isinstance(turns, list):
            return turns
        out = []
        for turn in turns:
            parts = turn.get("parts") if isinstance(turn, dict) else None
            if not isinstance(parts, list):
                out.append(turn)
                continue
            new_parts = []
            for part in parts:
                for key in ("fileData", "file_data"):
                    file_data = part.get(key) if isinstance(part, dict) else None
                    uri_key = "fileUri" if key == "fileData" else "file_uri"
                    uri = file_data.get(uri_key) if isinstance(file_data, dict) else None
                    if (
                        isinstance(file_data, dict)
                        and isinstance(uri, str)
                        and reference_kind(uri) == "path"
                        and not Path(uri).is_absolute()
                    ):
                        part = {**part, key: {**file_data, uri_key: str(base_dir / uri)}}
                new_parts.append(part)
            out.append({**turn, "parts": new_parts})
        return out

    fixed = dict(row)
    if "contents" in fixed:
        fixed["contents"] = fix_contents(fixed["contents"])
    if "messages" in fixed:
        fixed["messages"] = fix_turns(fixed["messages"])
    inner = fixed.get("input")
    if isinstance(inner, dict) and "messages" in inner:
        fixed["input"] = {**inner, "messages": fix_turns(inner["messages"])}
    return fixed
