"""Which base models accept images, per backend (facts: shared/research/vision-finetuning.md).

OpenAI tunes images only on gpt-4o-2024-08-06; Together lists its vision bases (Qwen3-VL,
Llama 4 ``-VLM``, Gemma 3 ``-it-VLM``); Fireworks tunes the VLMs of its model library (Qwen-VL);
every Gemini model on Vertex takes images; a local model is a vision model when its folder has
an image processor or its name says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from ftwizard.session import Backend

OPENAI_VISION_BASES = ("gpt-4o-2024-08-06",)

TOGETHER_VISION_BASES = (
    "Qwen/Qwen3-VL-8B-Instruct",
    "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "Qwen/Qwen3-VL-235B-A22B-Instruct",
    "google/gemma-3-4b-it-VLM",
    "google/gemma-3-12b-it-VLM",
    "google/gemma-3-27b-it-VLM",
)

FIREWORKS_VISION_BASES = (
    "accounts/fireworks/models/qwen3-vl-8b-instruct",
    "accounts/fireworks/models/qwen2p5-vl-7b-instruct",
)

# Name fragments of open vision-language models (Hugging Face ids, Fireworks names).
_VISION_MARKERS = ("-vl", "_vl", "vlm", "vision", "llava", "idefics", "smolvlm", "paligemma")
# Gemma 3 4B and larger are multimodal; 1B is text-only.
_GEMMA3_VISION = ("gemma-3-4b", "gemma-3-12b", "gemma-3-27b")


def _local_folder_is_vision(folder: Path) -> bool | None:
    if (folder / "preprocessor_config.json").is_file():
        return True
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return isinstance(data, dict) and "vision_config" in data


def accepts_images(backend: Backend | str, model: str) -> bool | None:
    """Whether ``model`` on ``backend`` can be tuned on images; ``None`` when unknown."""
    backend = Backend(backend)
    lowered = model.lower()
    if backend is Backend.openai:
        bare = model.removeprefix("ft:").split(":", 1)[0]
        return bare in OPENAI_VISION_BASES
    if backend is Backend.vertex:
        return lowered.startswith("gemini") or None
    if backend is Backend.local:
        folder = Path(model).expanduser()
        if folder.is_dir():
            found = _local_folder_is_vision(folder)
            if found is not None:
                return found
    if any(m in lowered for m in _VISION_MARKERS) or any(g in lowered for g in _GEMMA3_VISION):
        return True
    if backend in (Backend.together, Backend.fireworks) or model == "builtin-tiny":
        return False
    return None


def openai_vision_dates() -> str:
    """Both OpenAI dates that bound vision fine-tuning on gpt-4o-2024-08-06."""
    from ftwizard.catalog import OPENAI_BASES_SHUTDOWN, OPENAI_FINE_TUNING_CUTOFF

    return (
        f"gpt-4o-2024-08-06 takes image fine-tuning jobs until "
        f"{OPENAI_FINE_TUNING_CUTOFF.isoformat()} and shuts down on "
        f"{OPENAI_BASES_SHUTDOWN.isoformat()}, its fine-tunes with it"
    )
