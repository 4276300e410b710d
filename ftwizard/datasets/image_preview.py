"""Images in the dataset preview: a block-character picture with size, format and tokens.

Each terminal cell shows two pixels, one above the other, as ``▀`` with the upper pixel's
colour in front and the lower one's behind, which every colour terminal can draw (no graphics
protocol needed). Rich is used for the colours; nothing here imports Textual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.style import Style
from rich.text import Text

from ftwizard.datasets.image_tokens import rule_for
from ftwizard.datasets.images import find_images
from ftwizard.providers import media


def block_picture(data: bytes, *, width: int = 32, max_rows: int = 8) -> Text:
    """``data`` drawn in at most ``width`` cells by ``max_rows`` lines of half blocks."""
    img = media.load_pil(data).convert("RGB")
    w, h = img.size
    cols = max(1, min(width, w))
    rows = max(2, round(h * cols / w))  # pixels tall: one cell is about twice as tall as wide
    if rows > max_rows * 2:
        rows = max_rows * 2
        cols = max(1, min(width, round(w * rows / h)))
    rows += rows % 2
    small = img.resize((cols, rows))
    pixels = small.load()
    text = Text()
    for y in range(0, rows, 2):
        for x in range(cols):
            top, bottom = pixels[x, y], pixels[x, y + 1]
            text.append("▀", style=Style(color=_rgb(top), bgcolor=_rgb(bottom)))
        text.append("\n")
    return text


def _rgb(pixel: Any) -> str:
    r, g, b = pixel[:3]
    return f"rgb({r},{g},{b})"


def preview_images(
    data: Any,
    *,
    base_dir: Path | None,
    backend: str = "local",
    model: str = "",
    max_pixels: int | None = None,
    limit: int = 2,
    width: int = 32,
    pictures: bool = True,
) -> list[Text]:
    """A picture and a line (``PNG 8x6 RGB, 1.2 KB, 6 tokens``) for each of the first
    ``limit`` images of one example (only the line with ``pictures=False``, when the terminal
    draws the picture itself); a line saying why for an image that cannot be shown."""
    rule = rule_for(backend, model, max_pixels=max_pixels)
    out: list[Text] = []
    for slot in [s for s in find_images(data) if not s.placeholder][:limit]:
        try:
            raw = (
                slot.data
                if slot.data is not None
                else media.resolve_image(slot.ref or "", base_dir=base_dir)
            )
            info = media.sniff_image(raw)
        except (media.MediaUnavailable, media.NotAnImage) as exc:
            out.append(Text(f"  {slot.field}: {exc}\n", style="yellow"))
            continue
        tokens = rule.count(info.width, info.height, slot.detail)
        about = "" if rule.exact else "about "
        caption = Text(f"  {slot.field}: {info.summary()}, {about}{tokens:,} tokens\n", style="dim")
        out.append(Text.assemble(caption, block_picture(raw, width=width)) if pictures else caption)
    return out


def first_image_bytes(data: Any, base_dir: Path | None) -> bytes | None:
    """The bytes of the example's first image that can be read here, else ``None``."""
    for slot in find_images(data):
        if slot.placeholder:
            continue
        if slot.data is not None:
            return slot.data
        try:
            return media.resolve_image(slot.ref or "", base_dir=base_dir)
        except media.MediaUnavailable:
            continue
    return None
