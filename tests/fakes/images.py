"""Tiny test images built in code (no files in the repository): PNG, JPEG, WEBP bytes."""

from __future__ import annotations

import io


def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (8, 6),
    color: tuple[int, ...] = (200, 30, 30),
    mode: str = "RGB",
) -> bytes:
    """The bytes of a solid ``size`` image in ``fmt`` (``PNG``, ``JPEG``, ``WEBP``, ``GIF``...)."""
    from PIL import Image

    img = Image.new(mode, size, color if mode != "L" else color[0])
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def png(size: tuple[int, int] = (8, 6), color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A tiny solid PNG."""
    return image_bytes("PNG", size, color)


def jpeg(size: tuple[int, int] = (8, 6), color: tuple[int, int, int] = (30, 30, 200)) -> bytes:
    """A tiny solid JPEG."""
    return image_bytes("JPEG", size, color)
