"""What every local trainer is built with: TRL's config from ftwizard's settings, and the facts
the worker's ``start`` event reports about the trainer it built.

Shared by the text worker (:mod:`ftwizard.providers.local.worker`) and the vision trainer
(:mod:`ftwizard.providers.local.vision_train`), which the worker calls.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ftwizard.providers.local.config import LocalTrainingConfig

CHECKPOINTS_DIR = "checkpoints"


def trainer_args(config: LocalTrainingConfig, device: str, has_eval: bool) -> Any:
    """The TRL config for ``config``'s method, with ftwizard's CPU-friendly defaults."""
    import torch

    hp = config.hyperparameters
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    if hp.eval_steps is not None:
        strategy: dict[str, Any] = {"save_strategy": "steps", "save_steps": hp.eval_steps}
        if has_eval:
            strategy.update(eval_strategy="steps", eval_steps=hp.eval_steps)
    else:
        strategy = {"save_strategy": "epoch"}
        if has_eval:
            strategy["eval_strategy"] = "epoch"
    eval_batch = hp.batch_size
    if config.method == "rft":
        # GRPO evaluates whole groups of generations: the eval batch must hold full groups.
        eval_batch = hp.num_generations * max(1, hp.batch_size // hp.num_generations)
    common: dict[str, Any] = {
        "output_dir": str(config.run_dir / CHECKPOINTS_DIR),
        "num_train_epochs": hp.epochs,
        "max_steps": hp.max_steps if hp.max_steps is not None else -1,
        "learning_rate": hp.learning_rate,
        "per_device_train_batch_size": hp.batch_size,
        "per_device_eval_batch_size": eval_batch,
        "gradient_accumulation_steps": hp.grad_accumulation,
        # transformers 5 takes a ratio (a float below 1) in warmup_steps.
        "warmup_steps": hp.warmup_ratio,
        "weight_decay": hp.weight_decay,
        "logging_steps": hp.logging_steps,
        "seed": hp.seed,
        "report_to": [],
        "disable_tqdm": True,
        # SFTConfig turns these on by default; they are wrong on CPU and slow for small models.
        "bf16": bf16,
        "gradient_checkpointing": False,
        "use_cpu": device == "cpu",
        **strategy,
    }
    if config.method == "sft":
        from trl import SFTConfig

        return SFTConfig(**common, max_length=hp.max_length)
    if config.method == "dpo":
        from trl import DPOConfig

        return DPOConfig(**common, max_length=hp.max_length, beta=hp.beta)
    from trl import GRPOConfig

    return GRPOConfig(
        **common,
        num_generations=hp.num_generations,
        max_completion_length=hp.max_completion_length,
        temperature=hp.temperature,
        beta=hp.beta,
    )


def trainer_info(
    trainer: Any, model_dir: Path, device: str, train: Any, valid: Any, **extra: Any
) -> dict[str, Any]:
    """The ``start`` event's facts about a built trainer: sizes, device and world size."""
    parameters = list(trainer.model.parameters())
    return {
        "model_dir": str(model_dir),
        "device": device,
        "train_examples": len(train),
        "valid_examples": len(valid) if valid else 0,
        "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
        "total_parameters": sum(p.numel() for p in parameters),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        **extra,
    }


__all__ = ["CHECKPOINTS_DIR", "trainer_args", "trainer_info"]
