"""GGUF export of every family people fine-tune: the file reads back as the tuned model.

For each family of :mod:`tests.local.families` the real export path runs: a LoRA adapter is
merged into the base (``export_merged``), llama.cpp's converter writes an f32 GGUF
(``convert_to_gguf``), and ``verify_gguf`` reads it back with transformers and compares its
greedy tokens with the merged model's. A family whose GGUF does not reproduce the model fails
here, naming the prompt and the token that differs. The families whose fixtures carry the
values transformers' GGUF loader assumes (Qwen3, Gemma 3) and the one with a SentencePiece
tokenizer (Phi-3) run in every quick pass; the others are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.providers.local import gguf
from ftwizard.providers.local.export import export_merged
from ftwizard.providers.local.gguf_runner import known_split
from tests.local.families import FAMILIES, family_dirs
from tests.tiny_local import random_lora_adapter

__all__ = ["family_dirs"]

CONVERTER_PROBLEM = gguf.converter_problem()
QUICK = {"qwen3", "gemma3", "phi3"}
PARAMS = [pytest.param(name, marks=() if name in QUICK else pytest.mark.slow) for name in FAMILIES]
PROMPTS = ["which bird is number one?", "which bird sings last?", "hello"]
# The architecture llama.cpp (and Ollama) runs each family's GGUF as.
GGUF_ARCHITECTURE = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma3_text": "gemma3",
    "phi3": "phi3",
}


def _gguf_field(path: Path, key: str) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).get_field(key)
    assert field is not None, f"{path.name} has no {key}"
    return str(field.contents())


@pytest.mark.skipif(CONVERTER_PROBLEM is not None, reason=str(CONVERTER_PROBLEM))
@pytest.mark.parametrize("family", PARAMS)
def test_a_tuned_models_gguf_reads_back_with_its_greedy_tokens(
    family: str, family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    base = family_dirs[family]
    adapter = random_lora_adapter(base, tmp_path / "adapter", base_model=str(base))
    merged = export_merged(adapter, tmp_path / "merged")

    target = gguf.convert_to_gguf(merged, tmp_path / "model-f32.gguf", "f32")
    check = gguf.verify_gguf(merged, target, PROMPTS, quant="f32")

    assert check.passed and check.agreement == 1.0
    assert [p.prompt for p in check.prompts] == PROMPTS
    assert all(p.gguf_tokens == p.merged_tokens != [] for p in check.prompts)
    spec = FAMILIES[family]
    assert _gguf_field(target, "general.architecture") == GGUF_ARCHITECTURE[spec.model_type]
    # The family's chat template travels in the file: llama.cpp and Ollama format prompts with it.
    assert _gguf_field(target, "tokenizer.chat_template") == spec.template


def _saved_tokenizer(model_dir: Path, folder: Path) -> Path:
    from transformers import AutoTokenizer

    # Saved as the merged export saves it: transformers 5 rewrites a Qwen2 tokenizer's split.
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize(("family", "split"), [("llama", "gpt-2"), ("qwen2", "qwen2")])
def test_a_tokenizer_llama_cpp_has_no_hash_for_converts_when_it_splits_as_a_known_one(
    family: str, split: str, family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    assert known_split(_saved_tokenizer(family_dirs[family], tmp_path)) == split


@pytest.mark.parametrize(
    "change",
    ["no normalizer", "another regex", "a prefix space"],
)
def test_a_split_that_differs_in_any_way_stays_an_error(
    change: str, family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    folder = _saved_tokenizer(family_dirs["qwen2"], tmp_path)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    split, byte_level = spec["pre_tokenizer"]["pretokenizers"]
    if change == "no normalizer":
        spec["normalizer"] = None
    elif change == "another regex":
        split["pattern"]["Regex"] = split["pattern"]["Regex"].replace(r"\p{N}", r"\p{N}{1,3}")
    else:
        byte_level["add_prefix_space"] = True
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    assert known_split(folder) is None
