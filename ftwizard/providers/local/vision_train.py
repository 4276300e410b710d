"""Building the TRL trainer for a vision-language model (called by the training worker).

- The model's processor (tokenizer + image processor, images capped at ``max_pixels``) is the
  trainer's ``processing_class``; rows are prompt-completion (SFT) or prompt/chosen/rejected
  (DPO) with an ``images`` column, so the SFT loss covers the answer only.
- ``max_length`` never cuts image tokens: the trainer gets ``max_length=None`` and every row is
  measured here with its images; a row longer than ``max_length`` is left out whole (and
  counted), never truncated into a mismatch between image features and image tokens.
- LoRA adapts the language model's projections; ``train_vision`` adds the vision tower's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.local.config import LocalTrainingConfig

# peft matches these against full module names (re.fullmatch).
LANGUAGE_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VISION_TARGETS = (
    r".*visual.*\.(qkv|proj|fc1|fc2|linear_fc1|linear_fc2|gate_proj|up_proj|down_proj"
    r"|merger\.mlp\.[02])"
)


def lora_targets(train_vision: bool) -> str:
    """The LoRA ``target_modules`` regex: the language model, plus the vision tower if asked."""
    if not train_vision:
        return LANGUAGE_TARGETS
    return f"(?:{LANGUAGE_TARGETS})|(?:{VISION_TARGETS})"


def row_length(processor: Any, row: dict[str, Any]) -> int:
    """Tokens of ``row`` with its images expanded, as the trainer's collator will see them."""
    answer = row.get("completion") or row.get("chosen") or []
    rejected = row.get("rejected") or []
    longest = answer if len(str(answer)) >= len(str(rejected)) else rejected
    text = processor.apply_chat_template(row["prompt"] + longest, tokenize=False)
    encoded = processor(text=[text], images=row["images"] or None, return_tensors="pt")
    return int(encoded["input_ids"].shape[1])


def fit_rows(
    processor: Any, rows: list[dict[str, Any]], max_length: int, path: Path
) -> tuple[list[dict[str, Any]], int]:
    """The rows that fit ``max_length`` whole, and how many did not."""
    kept = [row for row in rows if row_length(processor, row) <= max_length]
    if not kept:
        raise InputError(
            f"no example fits max_length {max_length} with its image tokens; raise "
            "max_length or lower max_pixels",
            path=path,
            field="max_length",
        )
    return kept, len(rows) - len(kept)


def _rows(config: LocalTrainingConfig, path: Path) -> list[dict[str, Any]]:
    from ftwizard.providers.local.data import read_jsonl
    from ftwizard.providers.local.vision_data import vision_dpo_rows, vision_sft_rows

    rows = read_jsonl(path)
    if config.method == "sft":
        return vision_sft_rows(rows, path)
    if config.method == "dpo":
        return vision_dpo_rows(rows, path)
    raise InputError(
        "RFT of a vision-language model is not supported on the local backend; use SFT or DPO",
        field="method",
    )


def build_vision_trainer(
    config: LocalTrainingConfig, model_dir: Path, device: str, callbacks: list[Any]
) -> tuple[Any, dict[str, Any]]:
    """The SFT or DPO trainer for the VLM in ``model_dir``, and facts for the start event."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText

    from ftwizard.providers.local.trainer_setup import trainer_args, trainer_info
    from ftwizard.providers.local.vision import load_processor

    hp = config.hyperparameters
    processor = load_processor(model_dir, max_pixels=hp.max_pixels)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    train, skipped = fit_rows(
        processor, _rows(config, config.train_file), hp.max_length, config.train_file
    )
    valid = None
    if config.valid_file:
        valid, skipped_valid = fit_rows(
            processor, _rows(config, config.valid_file), hp.max_length, config.valid_file
        )
        skipped += skipped_valid
    dtype = torch.float32
    if device == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype)
    args = trainer_args(config, device, valid is not None)
    # Rows were measured whole above; the collator must never truncate into image tokens.
    args.max_length = None
    peft_config = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=lora_targets(hp.train_vision),
        task_type="CAUSAL_LM",
    )
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": Dataset.from_list(train),
        "eval_dataset": Dataset.from_list(valid) if valid else None,
        "processing_class": processor,
        "peft_config": peft_config,
        "callbacks": callbacks,
    }
    if config.method == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(**kwargs)
    else:
        from trl import DPOTrainer

        trainer = DPOTrainer(**kwargs)
    return trainer, trainer_info(trainer, model_dir, device, train, valid, skipped_too_long=skipped)


__all__ = ["LANGUAGE_TARGETS", "build_vision_trainer", "fit_rows", "lora_targets", "row_length"]
