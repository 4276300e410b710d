"""Checks of an example's images against one target's rules, by line and field.

Images only in user turns; images per example and bytes per image within the backend's limits;
the bytes open as an image of an accepted format and mode; a referenced file exists; and, per
backend, how the image will travel (base64 data URI for Together and Fireworks, the session's
bucket for Vertex). Each distinct image is opened once per scan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftwizard.datasets.image_tokens import ImageTokenRule, rule_for
from ftwizard.datasets.images import ImageSlot, find_images
from ftwizard.datasets.problems import Code
from ftwizard.providers import media

_LABEL = {
    "openai": "OpenAI",
    "together": "Together",
    "fireworks": "Fireworks",
    "vertex": "Vertex AI",
    "local": "local training",
}

Found = tuple[Code, str | None, str]
"""A problem: code, field, message."""


@dataclass(slots=True)
class ExampleImages:
    """What checking one example's images found."""

    errors: list[Found] = field(default_factory=list)
    warnings: list[Found] = field(default_factory=list)
    images: int = 0
    tokens: int = 0


class ImageChecker:
    """Checks images for one target; remembers each image it opened for the whole scan."""

    def __init__(
        self,
        backend: str,
        model: str,
        *,
        base_dir: Path | None,
        max_pixels: int | None = None,
    ) -> None:
        self.backend = backend
        self.limits = media.limits_for(backend)
        self.label = _LABEL.get(backend, backend)
        self.rule: ImageTokenRule = rule_for(backend, model, max_pixels=max_pixels)
        self.base_dir = base_dir
        self._cache: dict[Any, media.ImageInfo | Exception] = {}
        self.images = 0
        self.tokens = 0
        self.examples = 0
        self.unsized = 0

    def _info(self, slot: ImageSlot) -> media.ImageInfo | Exception:
        if slot.data is not None:
            key: Any = hashlib.blake2b(slot.data, digest_size=16).digest()
        else:
            key = slot.ref
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            data = (
                slot.data
                if slot.data is not None
                else media.resolve_image(slot.ref or "", base_dir=self.base_dir)
            )
            found: media.ImageInfo | Exception = media.sniff_image(data)
        except (media.MediaUnavailable, media.NotAnImage) as exc:
            found = exc
        self._cache[key] = found
        return found

    def check(self, data: Any) -> ExampleImages:
        """Every image problem of one example, each with the field that holds the image."""
        out = ExampleImages()
        slots = find_images(data)
        if not slots:
            return out
        placeholders = [s for s in slots if s.placeholder]
        images = [s for s in slots if not s.placeholder]
        if placeholders and len(placeholders) != len(images):
            out.errors.append(
                (
                    Code.IMAGE_COUNT_MISMATCH,
                    placeholders[0].field,
                    f"{len(placeholders)} image placeholder(s) in the messages but "
                    f"{len(images)} image(s) in the images column; they must match",
                )
            )
        for slot in slots:
            if slot.role not in (None, "user"):
                out.errors.append(
                    (
                        Code.IMAGE_NOT_IN_USER_TURN,
                        slot.field,
                        f"image in a {slot.role!r} turn; {self.label} takes images only in "
                        "user turns. Move it to the user message",
                    )
                )
        if len(images) > self.limits.max_images:
            extra = images[self.limits.max_images]
            out.errors.append(
                (
                    Code.TOO_MANY_IMAGES,
                    extra.field,
                    f"{len(images)} images in one example; {self.label} takes at most "
                    f"{self.limits.max_images}. Split the example or drop images",
                )
            )
        for slot in images:
            self._check_one(slot, out)
        out.images = len(images)
        if not out.errors:  # the totals cover the examples that will train
            self.examples += 1
            self.images += out.images
            self.tokens += out.tokens
        return out

    def _check_one(self, slot: ImageSlot, out: ExampleImages) -> None:
        where = slot.field
        if slot.data is None and not slot.ref:
            out.errors.append(
                (Code.INVALID_IMAGE, where, "empty image reference; give a path, URL or data URI")
            )
            return
        kind = media.reference_kind(slot.ref) if slot.ref else "data"
        if self.limits.base64_only and kind in ("https", "http", "gs"):
            out.errors.append(
                (
                    Code.IMAGE_NOT_EMBEDDED,
                    where,
                    f"{self.label} takes images only as base64 data URIs, not URLs; download "
                    f"'{media.describe_reference(slot.ref or '')}' and give the file instead "
                    "(ftwizard embeds local files)",
                )
            )
            return
        if kind in ("path", "file") and self.backend in ("together", "fireworks", "openai"):
            out.warnings.append(
                (
                    Code.IMAGE_WILL_BE_EMBEDDED,
                    where,
                    f"local image files are embedded as base64 data URIs when ftwizard "
                    f"prepares the file for {self.label}",
                )
            )
        elif kind in ("path", "file", "data") and self.backend == "vertex":
            out.warnings.append(
                (
                    Code.IMAGE_WILL_BE_UPLOADED,
                    where,
                    "local and inline images are uploaded to the session's Cloud Storage "
                    "bucket and referenced by gs:// URI when ftwizard prepares the upload",
                )
            )
        if kind in ("path", "file") and self._too_big_on_disk(slot, out):
            return
        info = self._info(slot)
        if isinstance(info, media.MediaUnavailable):
            if info.reason in ("remote", "no-bucket-reader"):
                out.warnings.append(
                    (
                        Code.IMAGE_NOT_CHECKED,
                        where,
                        f"{info}; its size and format are not checked, and its tokens are "
                        "estimated",
                    )
                )
                self.unsized += 1
                out.tokens += self.rule.count(1024, 1024, slot.detail)
                return
            code = Code.IMAGE_MISSING if info.reason == "missing" else Code.INVALID_IMAGE
            out.errors.append((code, where, str(info)))
            return
        if isinstance(info, Exception):
            out.errors.append(
                (Code.INVALID_IMAGE, where, f"{info}; give a PNG or JPEG file instead")
            )
            return
        self._check_info(info, slot, out)

    def _too_big_on_disk(self, slot: ImageSlot, out: ExampleImages) -> bool:
        """A file over the limit is reported from its size, never read into memory."""
        path = media.local_path(slot.ref or "", self.base_dir)
        try:
            size = path.stat().st_size if path is not None and path.is_file() else 0
        except OSError:
            return False
        if size <= self.limits.max_bytes:
            return False
        out.errors.append(
            (
                Code.IMAGE_TOO_LARGE,
                slot.field,
                f"image file is {media.human_bytes(size)}; {self.label} takes at most "
                f"{media.human_bytes(self.limits.max_bytes)} per image. Shrink it",
            )
        )
        return True

    def _check_info(self, info: media.ImageInfo, slot: ImageSlot, out: ExampleImages) -> None:
        where, limits = slot.field, self.limits
        if info.format not in limits.formats:
            out.errors.append(
                (
                    Code.IMAGE_FORMAT,
                    where,
                    f"image is {info.format}; {self.label} takes {limits.describe_formats()}. "
                    "Convert it",
                )
            )
        if limits.modes is not None and info.mode not in limits.modes:
            out.errors.append(
                (
                    Code.IMAGE_MODE,
                    where,
                    f"image mode is {info.mode}; {self.label} takes "
                    f"{' or '.join(sorted(limits.modes))}. Convert it to RGB",
                )
            )
        if info.size_bytes > limits.max_bytes:
            out.errors.append(
                (
                    Code.IMAGE_TOO_LARGE,
                    where,
                    f"image is {media.human_bytes(info.size_bytes)}; {self.label} takes at "
                    f"most {media.human_bytes(limits.max_bytes)} per image. Shrink it",
                )
            )
        if slot.mime and media.MIME_FORMAT.get(slot.mime.lower()) not in (None, info.format):
            out.errors.append(
                (
                    Code.INVALID_IMAGE,
                    where,
                    f"mimeType says {slot.mime} but the file is {info.format}; fix the mimeType",
                )
            )
        out.tokens += self.rule.count(info.width, info.height, slot.detail)

    def finish(self, report: Any, target: Any, warn: Callable[..., None]) -> None:
        """Put the file's image totals in ``report`` and ``warn(code, message, None)`` once
        for each file-level image warning."""
        if not self.images:
            return
        from ftwizard.vision import accepts_images

        report.images = self.images
        report.image_examples = self.examples
        report.image_tokens = self.tokens
        report.image_tokens_note = self.rule.note
        report.image_tokens_exact = self.rule.exact and not self.unsized
        vision = accepts_images(target.backend, target.name)
        for code, _, message in self.file_warnings(vision, target.name):
            warn(code, message, None)

    def file_warnings(self, model_accepts_images: bool | None, model: str) -> list[Found]:
        """Warnings about the whole file, once it is read (only when it held images)."""
        if not self.images:
            return []
        found: list[Found] = []
        if self.backend == "openai":
            from ftwizard.vision import openai_vision_dates

            found.append(
                (
                    Code.IMAGES_MAY_BE_DROPPED,
                    None,
                    "OpenAI silently leaves out images that contain people, faces, children "
                    f"or CAPTCHAs, and the examples that hold them; {openai_vision_dates()}",
                )
            )
        if model_accepts_images is False:
            found.append(
                (
                    Code.MODEL_NOT_VISION,
                    None,
                    f"{model} does not take images; choose a vision base model "
                    "(docs/datasets.md lists them per backend)",
                )
            )
        if not self.rule.exact or self.unsized:
            found.append(
                (
                    Code.IMAGE_TOKEN_ESTIMATE,
                    None,
                    f"image tokens: {self.rule.note}"
                    + (f"; {self.unsized} image(s) not sized offline" if self.unsized else ""),
                )
            )
        return found
