"""Shared fixtures for tests that need the local backend: the built tiny model, the tickets
example, and a tiny model fine-tuned on it.

Import what a test module needs, e.g. ``from tests.tiny_local import tiny_model, tickets``.

- ``tiny_model_build`` (session): the ``builtin-tiny`` model, built once per test run into a
  session home (``tiny_model_build.home``, ``tiny_model_build.model_dir``).
- ``tiny_model`` (function): that build linked into the test's own ftwizard home, so
  ``builtin-tiny`` / ``local:builtin-tiny`` resolve without rebuilding; returns its folder.
- ``tickets``: the paths of ``examples/data/tickets`` (train, valid, the label grader).
- ``tickets_adapter`` (session): a LoRA adapter trained on the tickets with the default tiny
  hyperparameters through the real worker (about 15-60 s on 2 shared cores), with the job's
  final status; reused by every test that needs a tuned model.
- ``tickets_ramp`` (session): a short run (12 steps at a high learning rate, a checkpoint every
  4 steps, no validation pass) whose checkpoints answer the tickets increasingly well (measured
  on 40 held-out rows: 20 %, 30 %, 40 %), for tests that need checkpoints whose grader scores
  differ by construction (about 15-25 s on 2 shared cores).
- ``accuracy(model, rows)``: exact-match accuracy of a local model (name or adapter folder).
- ``random_lora_adapter(model_dir, folder, base_model=...)``: a LoRA adapter with random
  (non-zero) weights, saved as training saves one (with the tokenizer): it moves every answer
  as a trained adapter does, in a second instead of a training run.
"""

from __future__ import annotations

import asyncio
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.local.config import LocalTrainingConfig, default_hyperparameters
from ftwizard.providers.local.job import LocalJobStatus, LocalTrainingJob
from ftwizard.providers.local.tiny_model import TINY_MODEL_NAME, ensure_tiny_model, tiny_model_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
TICKETS_DIR = REPO_ROOT / "examples" / "data" / "tickets"
TRAINING_TIMEOUT_S = 420


@dataclass(frozen=True)
class TinyBuild:
    """The session's built tiny model and the home it lives in."""

    home: Path
    model_dir: Path


@dataclass(frozen=True)
class Tickets:
    """The tickets example files."""

    train: Path
    valid: Path
    grader: Path

    def valid_rows(self) -> list[dict[str, Any]]:
        """The validation examples as parsed JSON."""
        return [json.loads(line) for line in self.valid.read_text().splitlines() if line]


@dataclass(frozen=True)
class TrainedAdapter:
    """An adapter trained on the tickets, with the job that made it."""

    adapter_dir: Path
    run_dir: Path
    status: LocalJobStatus
    wall_s: float


def worker_env(home: Path) -> dict[str, str]:
    """The environment for a worker that must find the tiny model in ``home``, offline."""
    env = dict(os.environ)
    env.update(FTWIZARD_HOME=str(home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


@pytest.fixture(scope="session")
def tiny_model_build(tmp_path_factory: pytest.TempPathFactory) -> TinyBuild:
    """The tiny model, built once for the whole test run."""
    home = tmp_path_factory.mktemp("tiny-home")
    return TinyBuild(home=home, model_dir=ensure_tiny_model(home=home))


@pytest.fixture
def tiny_model(tiny_model_build: TinyBuild, isolated_home: Path) -> Path:
    """The session's tiny model, linked into this test's ftwizard home."""
    target = tiny_model_dir(home=isolated_home)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(tiny_model_build.model_dir, target_is_directory=True)
    return target


@pytest.fixture(scope="session")
def tickets() -> Tickets:
    """The tickets example shipped in examples/data/tickets."""
    return Tickets(
        train=TICKETS_DIR / "train.jsonl",
        valid=TICKETS_DIR / "valid.jsonl",
        grader=TICKETS_DIR / "grader.yaml",
    )


def label_requests(rows: list[dict[str, Any]], model: str) -> list[GenerationRequest]:
    """One greedy request per example: the conversation without its answer."""
    return [
        GenerationRequest(
            model=model,
            messages=[ChatMessage(**m) for m in row["messages"][:-1]],
            max_tokens=8,
        )
        for row in rows
    ]


def accuracy(
    model: str, rows: list[dict[str, Any]], provider: LocalChatProvider | None = None
) -> float:
    """Share of ``rows`` whose reply equals the reference answer exactly."""
    provider = provider or LocalChatProvider(device="cpu")
    replies = asyncio.run(provider.generate_batch(label_requests(rows, model)))
    hits = sum(
        reply.text == row["messages"][-1]["content"]
        for reply, row in zip(replies, rows, strict=True)
    )
    return hits / len(rows)


@pytest.fixture(scope="session")
def tickets_adapter(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrainedAdapter]:
    """The tiny model fine-tuned (SFT, LoRA) on the tickets with the default settings."""
    import time

    run_dir = tmp_path_factory.mktemp("tickets-run")
    config = LocalTrainingConfig(
        method="sft",
        base_model=f"local:{TINY_MODEL_NAME}",
        train_file=tickets.train,
        valid_file=tickets.valid,
        run_dir=run_dir,
        hyperparameters=default_hyperparameters(TINY_MODEL_NAME),
        device="cpu",
    )
    started = time.monotonic()
    job = LocalTrainingJob.start(config, env=worker_env(tiny_model_build.home))
    try:
        status = job.wait(timeout_s=TRAINING_TIMEOUT_S)
    finally:
        if job.is_alive():
            job.cancel(timeout_s=10)
    assert status.state == "succeeded", f"{status.message}\n{status.log_tail}"
    assert status.adapter_dir is not None
    yield TrainedAdapter(
        adapter_dir=Path(status.adapter_dir),
        run_dir=run_dir,
        status=status,
        wall_s=time.monotonic() - started,
    )


def random_lora_adapter(
    model_dir: Path, folder: Path, *, base_model: str, seed: int = 7, rank: int = 12
) -> Path:
    """Save a LoRA adapter on ``model_dir`` with random weights to ``folder``; return it.

    ``base_model`` is what the adapter's config names as its base (``local:builtin-tiny``, a
    model folder), which is how an export finds the model to merge into.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules="all-linear",
        # peft starts LoRA's B at zero (a no-op adapter); random B makes it change the model.
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft reads an attribute transformers 5 deprecated; the warning is peft's to fix.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing")
        peft_model = get_peft_model(model, config)
    peft_model.peft_config["default"].base_model_name_or_path = base_model
    peft_model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(folder))
    return folder


RAMP_STEPS = 12
RAMP_EVERY = 4


@pytest.fixture(scope="session")
def tickets_ramp(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TrainedAdapter]:
    """The tiny model trained briefly on the tickets, with a checkpoint every 4 steps.

    The cheapest run measured whose checkpoints score differently on the held-out rows: fewer
    steps or a lower rate leave every checkpoint at the same (near zero) score.
    """
    import time

    from ftwizard.providers.local.config import LocalHyperparameters

    run_dir = tmp_path_factory.mktemp("tickets-ramp")
    config = LocalTrainingConfig(
        method="sft",
        base_model=f"local:{TINY_MODEL_NAME}",
        train_file=tickets.train,
        run_dir=run_dir,
        hyperparameters=LocalHyperparameters(
            epochs=100,
            max_steps=RAMP_STEPS,
            eval_steps=RAMP_EVERY,
            logging_steps=RAMP_EVERY,
            learning_rate=2e-2,
            batch_size=16,
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            max_length=256,
        ),
        device="cpu",
    )
    started = time.monotonic()
    job = LocalTrainingJob.start(config, env=worker_env(tiny_model_build.home))
    try:
        status = job.wait(timeout_s=TRAINING_TIMEOUT_S)
    finally:
        if job.is_alive():
            job.cancel(timeout_s=10)
    assert status.state == "succeeded", f"{status.message}\n{status.log_tail}"
    assert status.adapter_dir is not None
    yield TrainedAdapter(
        adapter_dir=Path(status.adapter_dir),
        run_dir=run_dir,
        status=status,
        wall_s=time.monotonic() - started,
    )


__all__ = [
    "TICKETS_DIR",
    "Tickets",
    "TinyBuild",
    "TrainedAdapter",
    "accuracy",
    "label_requests",
    "random_lora_adapter",
    "tickets",
    "tickets_adapter",
    "tickets_ramp",
    "tiny_model",
    "tiny_model_build",
    "worker_env",
]
