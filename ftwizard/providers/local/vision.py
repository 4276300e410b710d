"""Vision-language models on the local backend: telling one apart, loading its processor, images.

A model folder is a vision-language model (VLM) when its ``config.json`` has a
``vision_config``. Such a model is trained and served with its *processor* (tokenizer + image
processor) instead of a bare tokenizer.

Qwen-VL processors also want a video processor, which needs torchvision; ftwizard never
processes video and torchvision does not import beside the CPU torch of some installs, so the
processors here are no-video subclasses (see docs/local-training.md). ``max_pixels`` caps the
pixels of each image after the processor's resizing, which bounds its image tokens.

torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftwizard.errors import InputError

# Families whose processor this module knows how to build without a video processor.
QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def model_type(model_dir: Path) -> str | None:
    """The ``model_type`` of the model in ``model_dir`` (``None`` without a readable config)."""
    try:
        data = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = data.get("model_type")
    return kind if isinstance(kind, str) else None


def is_vision_model(model_dir: Path) -> bool:
    """Whether the model in ``model_dir`` takes images (its config has a ``vision_config``)."""
    try:
        data = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data.get("vision_config"), dict)


def _no_video(base: type) -> type:
    """A subclass of processor class ``base`` whose constructor has no video processor.

    ``ProcessorMixin`` reads its parts from the ``__init__`` signature, so leaving
    ``video_processor`` out of it is what stops the torchvision-only video processor loading.
    """

    def __init__(
        self: Any,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: Any = None,
        **kwargs: Any,
    ) -> None:
        base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    return type(base.__name__, (base,), {"__init__": __init__, "__module__": __name__})


def processor_class(kind: str) -> type:
    """The no-video processor class for model family ``kind`` (one of :data:`QWEN_FAMILIES`)."""
    if kind == "qwen3_vl":
        from transformers import Qwen3VLProcessor

        return _no_video(Qwen3VLProcessor)
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor

        return _no_video(Qwen2_5_VLProcessor)
    from transformers import Qwen2VLProcessor

    return _no_video(Qwen2VLProcessor)


def load_processor(model_dir: Path, *, max_pixels: int | None = None) -> Any:
    """The processor of the VLM in ``model_dir``, with images capped at ``max_pixels``.

    Qwen-VL families get a no-video processor built from the folder's tokenizer and image
    processor config; other families go through ``AutoProcessor``.
    """
    from transformers import AutoProcessor, AutoTokenizer

    kind = model_type(model_dir)
    if kind in QWEN_FAMILIES:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        settings = _image_processor_settings(model_dir)
        if max_pixels is not None:
            settings["max_pixels"] = max_pixels
            settings["min_pixels"] = min(settings.get("min_pixels", max_pixels), max_pixels)
        images = Qwen2VLImageProcessorPil(**settings)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        cls = processor_class(kind)
        return cls(image_processor=images, tokenizer=tokenizer, chat_template=_template(model_dir))
    try:
        processor = AutoProcessor.from_pretrained(str(model_dir))
    except Exception as exc:  # a family whose processor needs what this machine lacks
        raise InputError(
            f"cannot load the image processor of this model: {type(exc).__name__}: {exc}",
            path=model_dir,
        ) from None
    if max_pixels is not None and hasattr(processor, "image_processor"):
        size = getattr(processor.image_processor, "size", None)
        if isinstance(size, dict) and "longest_edge" in size:
            size["longest_edge"] = max_pixels
    return processor


_IMAGE_KEYS = (
    "min_pixels",
    "max_pixels",
    "patch_size",
    "merge_size",
    "temporal_patch_size",
    "image_mean",
    "image_std",
)


def _image_processor_settings(model_dir: Path) -> dict[str, Any]:
    for name in ("preprocessor_config.json", "processor_config.json"):
        try:
            data = json.loads((model_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = data.get("image_processor", data)
        out = {k: data[k] for k in _IMAGE_KEYS if k in data}
        size = data.get("size")
        if isinstance(size, dict):
            if "shortest_edge" in size and "min_pixels" not in out:
                out["min_pixels"] = size["shortest_edge"]
            if "longest_edge" in size and "max_pixels" not in out:
                out["max_pixels"] = size["longest_edge"]
        if model_type(model_dir) == "qwen3_vl":
            out.setdefault("patch_size", 16)
        return out
    return {"patch_size": 16} if model_type(model_dir) == "qwen3_vl" else {}


def _template(model_dir: Path) -> str | None:
    for name in ("chat_template.jinja", "chat_template.json"):
        path = model_dir / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if name.endswith(".json"):
                value = json.loads(text).get("chat_template")
                return value if isinstance(value, str) else None
            return text
    return None


def save_processor_files(processor: Any, folder: Path) -> None:
    """Write ``processor``'s tokenizer, image settings and chat template into ``folder``."""
    images = processor.image_processor
    if not hasattr(images, "merge_size"):  # not a Qwen-VL processor: its own files do
        processor.save_pretrained(str(folder))
        return
    processor.tokenizer.save_pretrained(str(folder))
    settings = {
        "image_processor_type": "Qwen2VLImageProcessor",
        "min_pixels": images.size["shortest_edge"],
        "max_pixels": images.size["longest_edge"],
        "patch_size": images.patch_size,
        "merge_size": images.merge_size,
        "temporal_patch_size": images.temporal_patch_size,
        "image_mean": list(images.image_mean),
        "image_std": list(images.image_std),
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(settings, indent=2) + "\n")
    if processor.chat_template:
        (folder / "chat_template.jinja").write_text(processor.chat_template)


def image_messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Messages with an ``images`` list each as chat-template parts, and their references.

    Each image becomes an ``{"type": "image"}`` part before the turn's text, the order the
    processor expects the images in.
    """
    out: list[dict[str, Any]] = []
    refs: list[str] = []
    for message in messages:
        images = list(message.get("images") or [])
        role = "system" if message["role"] == "developer" else message["role"]
        if not images:
            out.append({"role": role, "content": message["content"]})
            continue
        if role != "user":
            raise InputError(f"an image in a {role} turn; images belong in user turns")
        refs.extend(images)
        parts: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        parts.append({"type": "text", "text": message["content"]})
        out.append({"role": role, "content": parts})
    return out, refs


def load_images(refs: list[str]) -> list[Any]:
    """RGB PIL images for ``refs`` (data URIs or local files; a URL is never fetched).

    Raises :class:`InputError` saying which reference could not be used and why.
    """
    from ftwizard.providers.media import MediaUnavailable, NotAnImage, load_pil, resolve_image

    images = []
    for ref in refs:
        try:
            images.append(load_pil(resolve_image(ref)).convert("RGB"))
        except MediaUnavailable as exc:
            raise InputError(f"{exc}; send the image as a data URI or a local file") from None
        except (NotAnImage, OSError, ValueError) as exc:
            raise InputError(f"not a readable image: {exc}") from None
    return images


def encode_batch(loaded: Any, texts: list[str], images: list[Any]) -> dict[str, Any]:
    """Model inputs for left-padded ``texts`` with ``images`` (flat, in placeholder order)."""
    if loaded.processor is None:
        if images:
            raise InputError("this model does not take images (it has no vision tower)")
        return dict(
            loaded.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        )
    return dict(
        loaded.processor(text=texts, images=images or None, return_tensors="pt", padding=True)
    )


__all__ = [
    "QWEN_FAMILIES",
    "encode_batch",
    "image_messages",
    "is_vision_model",
    "load_images",
    "load_processor",
    "model_type",
    "processor_class",
    "save_processor_files",
]
