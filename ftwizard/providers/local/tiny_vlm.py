"""``builtin-tiny-vl``: a tiny Qwen-VL-shaped vision-language model built from scratch, no download.

The image twin of ``builtin-tiny``: it serves the offline images quickstart and the tests. A
2-layer language model and a 2-block vision tower in the shape of Qwen2-VL (the default),
Qwen2.5-VL or Qwen3-VL, a byte-level BPE tokenizer trained on the built-in corpus plus the
Qwen vision tokens, a Qwen-style chat template and an image processor capped at a small pixel
budget (so an image costs a handful of tokens). Its weights are random and deterministic given
the seed: it knows nothing until it is fine-tuned.

The built model is cached under ``<ftwizard home>/models/`` like ``builtin-tiny``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ftwizard.providers.local.tiny_model import CORPUS, build_once
from ftwizard.store import ftwizard_home

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BUILD_VERSION = 1
"""Bumped whenever :func:`build_tiny_vlm` changes what it builds, so caches are rebuilt."""

TINY_VLM_NAME = "builtin-tiny-vl"
"""The local backend's name for this model (``local:builtin-tiny-vl`` with the prefix)."""

Family = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]

VISION_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen's chat layout without the default system prompt (it would cost every row tokens the tiny
# model does not need); each image part becomes <|vision_start|><|image_pad|><|vision_end|>,
# which the processor expands to one pad token per merged patch.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TinyVisionSpec(BaseModel):
    """The shape of a tiny VLM; every field goes into the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Family = "qwen2_vl"
    layers: int = Field(default=2, ge=1, le=8)
    hidden_size: int = Field(default=64, ge=16, le=512)
    intermediate_size: int = Field(default=128, ge=16, le=2048)
    heads: int = Field(default=4, ge=1, le=16)
    vision_depth: int = Field(default=2, ge=1, le=8)
    vision_hidden_size: int = Field(default=32, ge=16, le=512)
    vocab_size: int = Field(default=768, ge=300, le=4096)
    # 56x56 px: 4 image tokens per image for Qwen2-VL (28 px per token after the 2x2 merge).
    max_pixels: int = Field(default=56 * 56, ge=28 * 28, le=1024 * 1024)
    seed: int = 0

    def cache_key(self) -> str:
        """A short hash of the spec, the corpus and the template."""
        text = json.dumps(self.model_dump(), sort_keys=True) + CORPUS + CHAT_TEMPLATE
        return hashlib.sha256((text + str(BUILD_VERSION)).encode()).hexdigest()[:12]


def is_tiny_vlm_name(name: str) -> bool:
    """Whether ``name`` (with or without ``local:``) means the built-in tiny VLM."""
    return name.removeprefix("local:").strip() == TINY_VLM_NAME


def tiny_vlm_dir(spec: TinyVisionSpec | None = None, *, home: Path | None = None) -> Path:
    """Where the VLM for ``spec`` is cached (it may not be built yet)."""
    spec = spec or TinyVisionSpec()
    home = home if home is not None else ftwizard_home()
    return home / "models" / f"{TINY_VLM_NAME}-{spec.cache_key()}"


def ensure_tiny_vlm(spec: TinyVisionSpec | None = None, *, home: Path | None = None) -> Path:
    """The folder of the built tiny VLM, building it first when it is not cached yet.

    Safe against concurrent builders: each builds in its own folder and the first rename wins.
    """
    spec = spec or TinyVisionSpec()
    chosen = spec
    return build_once(tiny_vlm_dir(spec, home=home), lambda folder: build_tiny_vlm(folder, chosen))


def build_vlm_tokenizer(spec: TinyVisionSpec | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer over the built-in corpus with Qwen's vision tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = spec or TinyVisionSpec()
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(VISION_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in CORPUS.splitlines() if line.strip()]
    tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(VISION_TOKENS[1:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _config(spec: TinyVisionSpec, tokenizer: Any) -> Any:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    text: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "num_key_value_heads": spec.heads,
        "max_position_embeddings": 4096,
        # As for builtin-tiny: larger initial weights let LoRA alone make the model confident.
        "initializer_range": 0.2,
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    head_dim = spec.hidden_size // spec.heads
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
    }
    vision_heads = max(1, spec.vision_hidden_size // 16)
    if spec.family == "qwen3_vl":
        from transformers import Qwen3VLConfig

        # mrope sections split head_dim / 2 across (time, height, width).
        half = head_dim // 2
        section = [half - 2 * (half // 3), half // 3, half // 3]
        text.update(
            head_dim=head_dim,
            rope_parameters={"rope_type": "default", "mrope_section": section},
        )
        vision = {
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_hidden_size * 2,
            "num_heads": vision_heads,
            "out_hidden_size": spec.hidden_size,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        }
        return Qwen3VLConfig(text_config=text, vision_config=vision, **common)
    half = head_dim // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    text["rope_parameters"] = {"rope_type": "default", "mrope_section": section}
    if spec.family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = {
            "depth": spec.vision_depth,
            "hidden_size": spec.vision_hidden_size,
            "intermediate_size": spec.vision_hidden_size * 2,
            "num_heads": vision_heads,
            "out_hidden_size": spec.hidden_size,
            "fullatt_block_indexes": [spec.vision_depth - 1],
            "window_size": 56,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    from transformers import Qwen2VLConfig

    vision = {
        "depth": spec.vision_depth,
        "embed_dim": spec.vision_hidden_size,
        "hidden_size": spec.hidden_size,
        "num_heads": vision_heads,
        "mlp_ratio": 2,
    }
    return Qwen2VLConfig(text_config=text, vision_config=vision, **common)


def build_tiny_vlm(folder: str | Path, spec: TinyVisionSpec | None = None) -> Path:
    """Build the tokenizer, processor settings and random VLM for ``spec`` into ``folder``."""
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )
    from transformers.utils import logging as hf_logging

    from ftwizard.providers.local.vision import processor_class, save_processor_files

    hf_logging.disable_progress_bar()
    spec = spec or TinyVisionSpec()
    tokenizer = build_vlm_tokenizer(spec)
    config = _config(spec, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = AutoModelForImageTextToText.from_config(config)
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(
        eos_token_id=end_id, pad_token_id=pad_id, do_sample=False, max_new_tokens=32
    )
    patch = 16 if spec.family == "qwen3_vl" else 14
    images = Qwen2VLImageProcessorPil(
        min_pixels=(patch * 2) ** 2, max_pixels=spec.max_pixels, patch_size=patch
    )
    processor = processor_class(spec.family)(
        image_processor=images, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    save_processor_files(processor, out)
    (out / "ftwizard-tiny.json").write_text(
        json.dumps({"name": TINY_VLM_NAME, "spec": spec.model_dump()}, indent=2) + "\n"
    )
    return out


__all__ = [
    "CHAT_TEMPLATE",
    "TINY_VLM_NAME",
    "TinyVisionSpec",
    "build_tiny_vlm",
    "build_vlm_tokenizer",
    "ensure_tiny_vlm",
    "is_tiny_vlm_name",
    "tiny_vlm_dir",
]
