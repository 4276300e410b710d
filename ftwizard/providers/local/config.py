"""What a local training run needs: hyperparameters, the reward for RFT, files and device.

These pydantic models are the boundary between the app and the training worker: the app writes
a :class:`LocalTrainingConfig` as ``config.json`` into the run folder and the worker reads it
back. Validation happens here, in the app's process, so mistakes come back as
:class:`~ftwizard.errors.InputError` naming the field, before any process is started.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ftwizard.errors import InputError
from ftwizard.providers.local.tiny_model import is_tiny_model_name
from ftwizard.providers.local.tiny_vlm import is_tiny_vlm_name

Method = Literal["sft", "dpo", "rft"]
Device = Literal["auto", "cpu", "cuda"]

_CALLABLE_PATH = re.compile(r"^[\w./\\-]+:[A-Za-z_]\w*$")


class LocalHyperparameters(BaseModel):
    """Training settings, with defaults that suit a LoRA fine-tune of a small model.

    ``max_steps`` caps the run (``None``: train for ``epochs``). ``eval_steps`` is also the
    checkpoint interval, so every checkpoint has a validation score to be chosen by.
    """

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(default=3.0, gt=0, le=100)
    max_steps: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0)
    batch_size: int = Field(default=8, ge=1, le=1024)
    grad_accumulation: int = Field(default=1, ge=1, le=1024)
    lora_r: int = Field(default=16, ge=1, le=1024)
    lora_alpha: int = Field(default=32, ge=1, le=4096)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    max_length: int = Field(default=1024, ge=8, le=131072)
    warmup_ratio: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)
    logging_steps: int = Field(default=10, ge=1)
    eval_steps: int | None = Field(default=None, ge=1)
    seed: int = 42
    # Data-parallel processes (accelerate launch); None: one per visible GPU, 1 on CPU. Each
    # takes batch_size rows per step, so the global batch is processes x batch_size x
    # grad_accumulation.
    processes: int | None = Field(default=None, ge=1, le=64)
    # Vision-language models: the pixel cap of each image after resizing (None: the model's
    # own), and whether LoRA also adapts the vision tower (default: the language model only).
    max_pixels: int | None = Field(default=None, ge=28 * 28, le=16384 * 28 * 28)
    train_vision: bool = False
    # DPO and GRPO.
    beta: float = Field(default=0.1, ge=0)
    # GRPO only.
    num_generations: int = Field(default=4, ge=2, le=256)
    max_completion_length: int = Field(default=64, ge=1, le=32768)
    temperature: float = Field(default=1.0, gt=0, le=5)


class RewardConfig(BaseModel):
    """The RFT reward: a grader spec file (YAML/JSON) or an importable ``module:function``.

    A function path may also be ``path/to/file.py:function``. The function is called the way
    TRL's GRPOTrainer calls reward functions: ``f(prompts=, completions=, **columns)``.
    """

    model_config = ConfigDict(extra="forbid")

    grader_file: Path | None = None
    function: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RewardConfig:
        if (self.grader_file is None) == (self.function is None):
            raise ValueError("give exactly one of grader_file or function")
        if self.function is not None and not _CALLABLE_PATH.match(self.function):
            raise ValueError(
                f"function '{self.function}' is not of the form module:function "
                "or path/to/file.py:function"
            )
        return self


class LocalTrainingConfig(BaseModel):
    """Everything the worker needs to run one training job, written to ``config.json``."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "sft"
    base_model: str = Field(min_length=1)
    train_file: Path
    valid_file: Path | None = None
    run_dir: Path
    hyperparameters: LocalHyperparameters = Field(default_factory=LocalHyperparameters)
    reward: RewardConfig | None = None
    device: Device = "auto"
    num_processes: int | None = Field(
        default=None, ge=1, description="processes to launch; None: one per visible GPU"
    )

    @model_validator(mode="after")
    def _consistent(self) -> LocalTrainingConfig:
        hp = self.hyperparameters
        if self.method == "rft":
            if self.reward is None:
                raise ValueError("RFT needs a reward: a grader_file or a function")
            per_step = hp.batch_size * hp.grad_accumulation
            if per_step % hp.num_generations:
                raise ValueError(
                    f"for RFT, batch_size x grad_accumulation ({per_step}) must be a multiple "
                    f"of num_generations ({hp.num_generations})"
                )
        elif self.reward is not None:
            raise ValueError(f"a reward is only used by RFT, not by {self.method.upper()}")
        return self

    @property
    def model_name(self) -> str:
        """The base model without the ``local:`` prefix."""
        return self.base_model.removeprefix("local:")


def default_hyperparameters(base_model: str, method: Method = "sft") -> LocalHyperparameters:
    """Sensible defaults for ``base_model``.

    The built-in tiny model starts from random weights, so it wants a much higher learning rate
    and more epochs than a pretrained model (measured: 6 epochs at 5e-3 take the tickets
    example from 0 % to 100 %).
    """
    if is_tiny_vlm_name(base_model):
        # Measured on the shapes example: these take the random tiny VLM from 0 % to the
        # label on most held-out images in about a minute on 2 cores.
        return LocalHyperparameters(
            epochs=8,
            learning_rate=1e-2,
            batch_size=8,
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            max_length=256,
        )
    if is_tiny_model_name(base_model):
        if method == "rft":
            return LocalHyperparameters(
                epochs=1,
                learning_rate=5e-3,
                batch_size=8,
                lora_r=16,
                lora_alpha=32,
                lora_dropout=0.0,
                max_length=256,
                max_completion_length=8,
            )
        return LocalHyperparameters(
            epochs=6,
            learning_rate=5e-3,
            batch_size=16,
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            max_length=256,
        )
    if method == "dpo":
        return LocalHyperparameters(learning_rate=5e-6, epochs=1)
    if method == "rft":
        return LocalHyperparameters(learning_rate=1e-5, epochs=1, max_completion_length=256)
    return LocalHyperparameters()


def parse_training_config(
    data: dict[str, object], *, path: Path | None = None
) -> LocalTrainingConfig:
    """Validate ``data`` into a config, or raise :class:`InputError` naming the first bad field."""
    try:
        return LocalTrainingConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(err["msg"].removeprefix("Value error, "), path=path, field=field) from None


__all__ = [
    "Device",
    "LocalHyperparameters",
    "LocalTrainingConfig",
    "Method",
    "RewardConfig",
    "default_hyperparameters",
    "parse_training_config",
]
