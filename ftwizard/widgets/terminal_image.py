"""Real pictures in the terminal where it can draw them (Kitty graphics, Sixel).

With the optional ``textual-image`` package (``pip install ftwizard[images]``) and a terminal
that answers its graphics queries, the dataset preview shows the image itself; everywhere else
it draws block characters (:mod:`ftwizard.datasets.image_preview`). The terminal can only be
queried before Textual takes it over, so :func:`prepare` runs before the app starts.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from typing import Any

_widget_class: Any = None


def prepare() -> None:
    """Ask the terminal, once, whether it draws images; quick no-op without textual-image or
    without a terminal (replays, tests, pipes)."""
    global _widget_class
    if _widget_class is not None or not sys.stdout.isatty():
        return
    if importlib.util.find_spec("textual_image") is None:
        return
    try:
        from textual_image.renderable import Image as chosen
        from textual_image.renderable import SixelImage, TGPImage
        from textual_image.widget import Image
    except Exception:  # a terminal that answers oddly: block characters it is
        return
    if chosen in (SixelImage, TGPImage):
        _widget_class = Image


def graphics_available() -> bool:
    """Whether :func:`picture_widget` draws real pictures in this terminal."""
    return _widget_class is not None


def picture_widget(data: bytes, *, widget_class: Any = None, **kwargs: Any) -> Any:
    """A widget showing ``data`` with the terminal's graphics (``widget_class`` overrides the
    detected one, for tests); ``None`` when the terminal has none."""
    cls = widget_class or _widget_class
    if cls is None:
        return None
    from PIL import Image as PILImage

    return cls(PILImage.open(io.BytesIO(data)), **kwargs)
