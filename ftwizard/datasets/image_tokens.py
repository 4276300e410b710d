"""How many tokens an image costs on each target, by the documented formula where one exists.

- OpenAI (gpt-4o): fit in 2048x2048, shortest side to 768, then 170 per 512-px tile plus 85;
  ``detail: low`` is 85 (OpenAI vision guide, "Calculating costs").
- Qwen2-VL / Qwen2.5-VL / Qwen3-VL: the processor resizes to multiples of patch x merge pixels
  (28 for Qwen2/2.5, 32 for Qwen3) within ``min_pixels``..``max_pixels``, one token per cell
  (``smart_resize`` in transformers' Qwen2-VL image processor); ``max_pixels`` caps the cost.
- Gemma 3: 256 tokens per image (its SigLIP encoder's fixed output).
- Gemini: 258 tokens per image up to 384 px, else per 768x768 tile (Gemini token docs).
- Anything else: an estimate, labelled so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

#: Qwen2-VL's processor default pixel budget (1280 tokens of 28x28 px).
QWEN_DEFAULT_MAX_PIXELS = 1280 * 28 * 28
QWEN_DEFAULT_MIN_PIXELS = 56 * 56
ESTIMATE_PER_IMAGE = 1_000


@dataclass(frozen=True)
class ImageTokenRule:
    """How one target counts image tokens; ``exact`` False means an estimate."""

    name: str
    exact: bool
    note: str
    patch: int = 0
    merge: int = 2
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS
    max_pixels: int = QWEN_DEFAULT_MAX_PIXELS

    def count(self, width: int, height: int, detail: str | None = None) -> int:
        """Tokens of one ``width`` x ``height`` image under this rule."""
        if self.name == "openai":
            return openai_image_tokens(width, height, detail)
        if self.name == "qwen":
            return qwen_image_tokens(
                width,
                height,
                patch=self.patch,
                merge=self.merge,
                min_pixels=self.min_pixels,
                max_pixels=self.max_pixels,
            )
        if self.name == "gemini":
            if width <= 384 and height <= 384:
                return 258
            return 258 * math.ceil(width / 768) * math.ceil(height / 768)
        if self.name == "gemma3":
            return 256
        if self.name == "anthropic":
            scale = min(1.0, 1568 / max(width, height, 1))
            return max(1, round(width * scale * height * scale / 750))
        return ESTIMATE_PER_IMAGE


def openai_image_tokens(width: int, height: int, detail: str | None = None) -> int:
    """OpenAI's tile formula for gpt-4o (85 base + 170 per 512-px tile; ``low`` is 85)."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


def qwen_resize(
    width: int, height: int, *, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """The size Qwen's processor resizes an image to (``smart_resize``): (width, height)."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


def qwen_image_tokens(
    width: int,
    height: int,
    *,
    patch: int = 14,
    merge: int = 2,
    min_pixels: int = QWEN_DEFAULT_MIN_PIXELS,
    max_pixels: int = QWEN_DEFAULT_MAX_PIXELS,
) -> int:
    """Tokens of one image after Qwen's resize: one per (patch x merge)^2 pixels."""
    factor = patch * merge
    w, h = qwen_resize(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return (w // factor) * (h // factor)


def _processor_config(folder: Path) -> dict[str, object] | None:
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            if isinstance(data.get("image_processor"), dict):
                data = data["image_processor"]
            return data if isinstance(data, dict) else None
    return None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and value > 0 else default


def _tiny_vlm_rule(model: str, max_pixels: int | None) -> ImageTokenRule | None:
    """The built-in tiny VLM's own processor (a Qwen-VL shape), before it is ever built: the
    rule its training and serving resize by, not a 1,000-token guess."""
    from ftwizard.providers.local.tiny_vlm import TINY_VLM_NAME, TinyVisionSpec

    if model.removeprefix("local:").strip() != TINY_VLM_NAME:
        return None
    spec = TinyVisionSpec()
    patch = 16 if spec.family == "qwen3_vl" else 14
    budget = max_pixels or spec.max_pixels
    return ImageTokenRule(
        "qwen",
        True,
        f"the model's processor: {(2 * patch) ** 2} px per token, {budget:,} max pixels",
        patch=patch,
        min_pixels=(2 * patch) ** 2,
        max_pixels=budget,
    )


def rule_for(backend: str, model: str, *, max_pixels: int | None = None) -> ImageTokenRule:
    """The rule for ``model`` on ``backend``; ``max_pixels`` overrides Qwen's pixel budget."""
    lowered = model.lower()
    if backend == "openai":
        return ImageTokenRule("openai", True, "OpenAI's tile formula (85 + 170 per 512-px tile)")
    if backend == "vertex":
        return ImageTokenRule(
            "gemini", False, "Gemini's documented 258 tokens per image or 768-px tile"
        )
    if backend == "anthropic":
        return ImageTokenRule("anthropic", False, "Anthropic's width x height / 750")
    if backend == "local":
        tiny = _tiny_vlm_rule(model, max_pixels)
        if tiny is not None:
            return tiny
    folder = Path(model).expanduser()
    config = _processor_config(folder) if backend == "local" and folder.is_dir() else None
    if config is not None and "merge_size" in config:
        size = config.get("size") if isinstance(config.get("size"), dict) else {}
        assert isinstance(size, dict)
        budget = max_pixels or _int(
            config.get("max_pixels", size.get("longest_edge")), QWEN_DEFAULT_MAX_PIXELS
        )
        return ImageTokenRule(
            "qwen",
            True,
            f"the model's processor: {budget:,} max pixels",
            patch=_int(config.get("patch_size"), 14),
            merge=_int(config.get("merge_size"), 2),
            min_pixels=_int(config.get("min_pixels", size.get("shortest_edge")), 3136),
            max_pixels=budget,
        )
    budget = max_pixels or QWEN_DEFAULT_MAX_PIXELS
    if "qwen3-vl" in lowered or "qwen3_vl" in lowered or "qwen3.5" in lowered:
        return ImageTokenRule(
            "qwen",
            True,
            f"Qwen3-VL: 32x32 px per token, {budget:,} max pixels",
            patch=16,
            max_pixels=budget,
        )
    if "qwen2" in lowered and "vl" in lowered:
        return ImageTokenRule(
            "qwen",
            True,
            f"Qwen2-VL: 28x28 px per token, {budget:,} max pixels",
            patch=14,
            max_pixels=budget,
        )
    if "gemma-3" in lowered or "gemma3" in lowered:
        return ImageTokenRule("gemma3", True, "Gemma 3: 256 tokens per image")
    return ImageTokenRule(
        "estimate",
        False,
        f"estimated at {ESTIMATE_PER_IMAGE:,} tokens per image: no published formula for {model}",
    )
