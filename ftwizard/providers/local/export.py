"""Exporting what local training produced: the LoRA adapter as it is, or a merged model.

A merged model is the base model with the adapter folded into its weights
(``merge_and_unload``): a plain transformers folder that any server loads without peft
(``transformers serve``, vLLM, llama.cpp's converter). A vision-language model's merged folder
also holds its processor's files (image settings, chat template), so it answers images too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.providers.local.chat import adapter_base_model, load_adapter
from ftwizard.providers.local.vision import is_vision_model, load_processor, save_processor_files

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
SENTENCEPIECE_MODEL = "tokenizer.model"


def _check_adapter(adapter_dir: Path) -> None:
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise InputError(
            f"not a complete LoRA adapter folder (missing {', '.join(missing)})", path=adapter_dir
        )


def _fresh_destination(dest: Path, overwrite: bool) -> None:
    if dest.exists():
        if not overwrite:
            raise InputError("the destination exists; choose another or allow overwrite", path=dest)
        shutil.rmtree(dest)


def _keep_sentencepiece_model(sources: tuple[Path, ...], dest: Path) -> None:
    # transformers 5 reads a SentencePiece tokenizer.model but never saves one, while
    # llama.cpp's converter needs it for the families whose tokenizer is one (Phi-3, Gemma,
    # Llama 2, Mistral): without it a merged Phi-3 cannot become a GGUF.
    if (dest / SENTENCEPIECE_MODEL).exists():
        return
    for source in sources:
        if (source / SENTENCEPIECE_MODEL).is_file():
            shutil.copyfile(source / SENTENCEPIECE_MODEL, dest / SENTENCEPIECE_MODEL)
            return


def export_adapter(adapter_dir: str | Path, dest: str | Path, *, overwrite: bool = False) -> Path:
    """Copy the adapter folder (weights, config, tokenizer) to ``dest``; return ``dest``."""
    source, target = Path(adapter_dir), Path(dest)
    _check_adapter(source)
    _fresh_destination(target, overwrite)
    shutil.copytree(source, target)
    return target


def export_merged(
    adapter_dir: str | Path,
    dest: str | Path,
    *,
    base_model: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Fold the adapter into its base model and save the result (with tokenizer) to ``dest``.

    ``base_model`` defaults to the one named in the adapter's config. Runs in the calling
    thread and takes seconds to minutes: call it off the event loop.
    """
    source, target = Path(adapter_dir), Path(dest)
    _check_adapter(source)
    base = base_model or adapter_base_model(source)
    if base is None:
        raise InputError("the adapter does not name its base model; pass base_model", path=source)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ftwizard.providers.local.models import resolve_local_model

    # tqdm bars on stderr would draw over the terminal UI.
    hf_logging.disable_progress_bar()
    base_dir = resolve_local_model(base)
    vision = is_vision_model(base_dir)
    if vision:
        from transformers import AutoModelForImageTextToText

        model = AutoModelForImageTextToText.from_pretrained(str(base_dir), dtype=torch.float32)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    merged = load_adapter(model, source).merge_and_unload(progressbar=False)
    _fresh_destination(target, overwrite)
    scratch = target.with_name(f".{target.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    merged.save_pretrained(str(scratch))
    if vision:
        # A VLM is served with its processor: tokenizer, image settings and chat template.
        save_processor_files(load_processor(base_dir), scratch)
    else:
        tokenizer_dir = source if (source / "tokenizer_config.json").is_file() else base_dir
        AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(scratch))
        _keep_sentencepiece_model((tokenizer_dir, base_dir), scratch)
    # Renamed into place only when complete, so a half-written model is never served.
    scratch.rename(target)
    return target


__all__ = ["export_adapter", "export_merged"]
