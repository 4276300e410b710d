"""Tiny random-weight models in the shapes of the families practitioners fine-tune.

``build_family(name, folder)`` writes a Hugging Face model folder (config, safetensors weights,
tokenizer) that ``AutoModelForCausalLM`` / ``AutoTokenizer`` load offline. Each has its
family's architecture class, its chat template in the family's real format (no
``{% generation %}`` markers) and its tokenizer quirks:

- ``llama``: Llama 3 headers, ``<|eot_id|>`` ends a turn but eos is ``<|end_of_text|>``, no pad.
- ``qwen2``: ChatML with a default system prompt, eos ``<|endoftext|>`` ≠ ``<|im_end|>``.
- ``qwen3``: ChatML with thinking blocks, dropped from earlier assistant turns.
- ``gemma3``: ``<start_of_turn>`` turns, role ``model``, system folded into the first user turn.
- ``phi3``: ``<|user|>``/``<|assistant|>`` tags ending in ``<|end|>``, and Phi-3's kind of
  tokenizer: a SentencePiece model (``tokenizer.model``, byte fallback) with the chat tags
  added after it, which llama.cpp's Phi-3 converter reads.
- ``nosystem``: a Gemma-2-style template that raises on a system message.

Everything is tiny except what transformers' GGUF loader does not read from the file but takes
from the family's defaults: Qwen3's ``head_dim`` is 128 and Gemma 3's ``query_pre_attn_scalar``
256, as in the released models, and Gemma 3's ``head_dim`` equals it (256) as in its 1B-12B
models, so a GGUF export reads back as the model it came from.

``family_dirs`` (module-scoped fixture) builds every family once into a temporary folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "you answer questions about birds and the robin sings first at dawn",
    "which bird is number one? the robin. which bird sings last? the owl.",
    "yes no maybe hello thanks good bad answer question think reason",
    "0 1 2 3 4 5 6 7 8 9 a b c d e f g h i j k l m n o p q r s t u v w x y z",
)

LLAMA = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
QWEN2 = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant."
    "<|im_end|>\n{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN3 = (
    "{% set ns = namespace(last=-1) %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{% set c = m['content'] %}"
    "{% if m['role'] == 'assistant' and loop.index0 < ns.last and '</think>' in c %}"
    "{% set c = c.split('</think>')[-1].lstrip('\n') %}{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ c }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA3 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set first = messages[0]['content'] + '\n\n' %}{% set rest = messages[1:] %}"
    "{% else %}{% set first = '' %}{% set rest = messages %}{% endif %}"
    "{% for m in rest %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{% if loop.first %}{{ first }}{% endif %}{{ m['content'] | trim }}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
NOSYSTEM = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
PHI3 = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}"
)


@dataclass(frozen=True)
class Family:
    """What makes a family: architecture, template, special tokens."""

    name: str
    model_type: str
    template: str
    specials: tuple[str, ...]
    eos: str
    end_of_turn: str
    bos: str | None = None
    pad: str | None = None
    sentencepiece: bool = False


FAMILIES: dict[str, Family] = {
    "llama": Family(
        "llama", "llama", LLAMA,
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
         "<|eot_id|>"),
        eos="<|end_of_text|>", end_of_turn="<|eot_id|>", bos="<|begin_of_text|>",
    ),
    "qwen2": Family(
        "qwen2", "qwen2", QWEN2, ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        eos="<|endoftext|>", end_of_turn="<|im_end|>", pad="<|endoftext|>",
    ),
    "qwen3": Family(
        "qwen3", "qwen3", QWEN3,
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"),
        eos="<|endoftext|>", end_of_turn="<|im_end|>", pad="<|endoftext|>",
    ),
    "gemma3": Family(
        "gemma3", "gemma3_text", GEMMA3,
        ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        eos="<eos>", end_of_turn="<end_of_turn>", bos="<bos>", pad="<pad>",
    ),
    "phi3": Family(
        "phi3", "phi3", PHI3,
        ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        eos="<|endoftext|>", end_of_turn="<|end|>", pad="<|endoftext|>", sentencepiece=True,
    ),
    "nosystem": Family(
        "nosystem", "gemma3_text", NOSYSTEM,
        ("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"),
        eos="<eos>", end_of_turn="<end_of_turn>", bos="<bos>", pad="<pad>",
    ),
}  # fmt: skip


def _config(family: Family, vocab: dict[str, int]) -> object:
    from transformers import AutoConfig

    ids = {
        "eos_token_id": [vocab[family.eos], vocab[family.end_of_turn]],
        "bos_token_id": vocab[family.bos] if family.bos else None,
        "pad_token_id": vocab[family.pad] if family.pad else None,
    }
    shape = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 512,
    }
    extra: dict[str, object] = {}
    # transformers' GGUF loader takes Qwen3's head_dim and Gemma 3's query_pre_attn_scalar from
    # the family's defaults, not the file: with other values a sound export reads back wrong.
    if family.model_type == "qwen3":
        extra["head_dim"] = 128
    if family.model_type == "gemma3_text":
        extra.update(
            head_dim=256, query_pre_attn_scalar=256, sliding_window=64, tie_word_embeddings=True
        )
    if family.model_type == "phi3":
        extra["original_max_position_embeddings"] = 512
    return AutoConfig.for_model(family.model_type, **shape, **extra, **ids)


def _byte_level_tokenizer(family: Family) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=list(family.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(_CORPUS), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=family.eos,
        bos_token=family.bos,
        pad_token=family.pad,
    )


def _sentencepiece_tokenizer(family: Family, folder: Path) -> Any:
    # Llama 2's recipe (BPE, byte fallback, digits split, no normalization), which Phi-3 uses;
    # the family's chat tags are added tokens after the SentencePiece vocabulary, as in Phi-3.
    import io

    import sentencepiece
    from transformers import LlamaTokenizer

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS),
        model_writer=model,
        model_type="bpe",
        vocab_size=400,
        hard_vocab_limit=False,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5 converts tokenizer.model on load but never writes it back: it stays here.
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    tokenizer = LlamaTokenizer.from_pretrained(
        str(folder), legacy=False, add_bos_token=False, add_eos_token=False
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(family.specials)})
    tokenizer.eos_token = family.eos
    tokenizer.pad_token = family.pad
    return tokenizer


def build_family(name: str, folder: Path) -> Path:
    """Write family ``name``'s tiny model to ``folder`` (deterministic weights)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    family = FAMILIES[name]
    if family.sentencepiece:
        fast = _sentencepiece_tokenizer(family, folder)
    else:
        fast = _byte_level_tokenizer(family)
    fast.chat_template = family.template
    vocab = fast.get_vocab()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_config(family, vocab))
    model.generation_config = GenerationConfig(
        eos_token_id=[vocab[family.eos], vocab[family.end_of_turn]],
        bos_token_id=vocab[family.bos] if family.bos else None,
        pad_token_id=vocab[family.pad] if family.pad else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every family's tiny model, built once per test module: name -> model folder."""
    root = tmp_path_factory.mktemp("families")
    return {name: build_family(name, root / name) for name in FAMILIES}


__all__ = ["FAMILIES", "Family", "build_family", "family_dirs"]
