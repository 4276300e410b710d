"""The local training worker: ``python -m ftwizard.providers.local.worker RUN_DIR/config.json``.

It runs one SFT (TRL SFTTrainer), DPO (DPOTrainer) or RFT (GRPOTrainer) job with a LoRA adapter
(peft) and reports through the JSON-lines event log in the run folder (see
:mod:`ftwizard.providers.local.events`). It is started detached by
:class:`ftwizard.providers.local.job.LocalTrainingJob`, so it outlives the app; SIGTERM asks it
to stop at the end of the current step, save the adapter and write ``cancelled``.

Under ``accelerate launch`` every rank runs this module; only rank 0 writes events.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.local.config import LocalTrainingConfig
from ftwizard.providers.local.data import training_rows
from ftwizard.providers.local.events import EventLog, TrainingEvent, clean_metrics
from ftwizard.providers.local.trainer_setup import trainer_args, trainer_info

EVENTS_FILE = "events.jsonl"
ADAPTER_DIR = "adapter"
TRACEBACK_LINES = 40


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


class _Events:
    """Writes events on rank 0 only; other ranks stay silent."""

    def __init__(self, path: Path) -> None:
        self._log = EventLog(path) if _rank() == 0 else None

    def write(self, event: TrainingEvent) -> None:
        if self._log is not None:
            self._log.write(event)


def _make_callback(events: _Events, stop: threading.Event) -> Any:
    from transformers import TrainerCallback

    class EventCallback(TrainerCallback):
        """Turns the trainer's logs and saves into events, and honours a stop request."""

        def __init__(self) -> None:
            self.latest: dict[str, float] = {}
            self.latest_step = -1

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            metrics = clean_metrics(logs or {})
            if state.global_step != self.latest_step:
                # Keep the eval metrics of the current step together with its train metrics.
                self.latest, self.latest_step = {}, state.global_step
            self.latest.update(metrics)
            if state.is_world_process_zero and metrics:
                events.write(
                    TrainingEvent(
                        event="metrics", step=state.global_step, epoch=state.epoch, metrics=metrics
                    )
                )

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                events.write(
                    TrainingEvent(
                        event="checkpoint",
                        step=state.global_step,
                        epoch=state.epoch,
                        path=str(path),
                        metrics=dict(self.latest),
                    )
                )

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if stop.is_set():
                control.should_training_stop = True

    return EventCallback()


def _device(config: LocalTrainingConfig) -> str:
    import torch

    if config.device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if config.device == "cuda":
        raise InputError("device 'cuda' was asked for but no GPU is visible", field="device")
    return "cpu"


def _build_trainer(
    config: LocalTrainingConfig, device: str, events: _Events, stop: threading.Event
) -> tuple[Any, dict[str, Any]]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftwizard.providers.local.chat_format import ensure_pad_token
    from ftwizard.providers.local.models import resolve_local_model
    from ftwizard.providers.local.sft_tokens import rows_for_tokenizer

    model_dir = resolve_local_model(config.base_model)
    from ftwizard.providers.local.vision import is_vision_model

    if is_vision_model(model_dir):
        from ftwizard.providers.local.vision_train import build_vision_trainer

        return build_vision_trainer(config, model_dir, device, [_make_callback(events, stop)])
    train = training_rows(config.method, config.train_file)
    valid = training_rows(config.method, config.valid_file) if config.valid_file else None

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.chat_template is None and any("prompt" in row for row in train[:1]):
        raise InputError(
            f"model '{config.model_name}' has no chat template, so chat data cannot be "
            "formatted for it; choose an instruct/chat model",
            field="base_model",
        )
    ensure_pad_token(tokenizer)
    hp = config.hyperparameters
    train = rows_for_tokenizer(train, tokenizer, hp.max_length)
    valid = rows_for_tokenizer(valid, tokenizer, hp.max_length) if valid else None
    dtype = torch.float32
    if device == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)

    peft_config = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    args = trainer_args(config, device, valid is not None)
    kwargs: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": Dataset.from_list(train),
        "eval_dataset": Dataset.from_list(valid) if valid else None,
        "processing_class": tokenizer,
        "peft_config": peft_config,
        "callbacks": [_make_callback(events, stop)],
    }
    if config.method == "sft":
        from trl import SFTTrainer

        trainer = SFTTrainer(**kwargs)
    elif config.method == "dpo":
        from trl import DPOTrainer

        trainer = DPOTrainer(**kwargs)
    else:
        from trl import GRPOTrainer

        from ftwizard.providers.local.rewards import load_reward_function

        assert config.reward is not None  # guaranteed by LocalTrainingConfig's validator
        trainer = GRPOTrainer(reward_funcs=[load_reward_function(config.reward)], **kwargs)

    return trainer, trainer_info(trainer, model_dir, device, train, valid)


def run(config: LocalTrainingConfig, events: _Events, stop: threading.Event) -> None:
    """Train, save the adapter, and report ``done`` (or ``cancelled`` when stopped early)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets
    import transformers

    # Progress bars would fill the worker's log with carriage returns nobody reads.
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()

    device = _device(config)
    trainer, info = _build_trainer(config, device, events, stop)
    events.write(
        TrainingEvent(
            event="start", message=f"{config.method} on {device}", pid=os.getpid(), **info
        )
    )
    cpu_start = time.process_time()
    result = trainer.train()
    cpu_s = time.process_time() - cpu_start
    adapter = config.run_dir / ADAPTER_DIR
    trainer.save_model(str(adapter))
    final = clean_metrics(result.metrics)
    # CPU seconds of this process (all its threads) for training: on a shared machine a
    # steadier cost figure than train_runtime, which counts the time others held the CPU.
    final["train_cpu_s"] = cpu_s
    final.update(_peak_memory(device))
    for entry in trainer.state.log_history:
        # The summary keeps the last validation scores and the count of trained tokens.
        logged = clean_metrics(entry)
        final.update({k: v for k, v in logged.items() if k.startswith("eval_")})
        if "num_tokens" in logged:
            final["num_tokens"] = logged["num_tokens"]
    step, epoch = trainer.state.global_step, trainer.state.epoch
    _report_rank(trainer, final)
    if stop.is_set():
        events.write(
            TrainingEvent(
                event="cancelled",
                step=step,
                epoch=epoch,
                path=str(adapter),
                metrics=final,
                message="stopped on request; the adapter holds the training so far",
            )
        )
    else:
        events.write(
            TrainingEvent(event="done", step=step, epoch=epoch, path=str(adapter), metrics=final)
        )


def _peak_memory(device: str) -> dict[str, float]:
    """Peak resident memory of this process (MB) and, on a GPU, peak allocated GPU memory."""
    import resource

    import torch

    # ru_maxrss is in kilobytes on Linux.
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device == "cuda":
        peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return peak


def _report_rank(trainer: Any, final: dict[str, float]) -> None:
    """One line per rank in the worker's log: with several processes, every rank must end
    with the same loss and the same adapter weights (one data-parallel training, not N)."""
    import torch

    with torch.no_grad():
        checksum = sum(
            float(p.detach().double().sum()) for p in trainer.model.parameters() if p.requires_grad
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    loss = final.get("train_loss", float("nan"))
    print(
        f"ftwizard rank {_rank()}/{world}: step {trainer.state.global_step} "
        f"train_loss {loss:.6f} adapter_checksum {checksum:.6f}",
        flush=True,
    )


def _tail(text: str, lines: int = TRACEBACK_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the config file given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m ftwizard.providers.local.worker RUN_DIR/config.json", file=sys.stderr
        )
        return 2
    config = LocalTrainingConfig.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
    events = _Events(config.run_dir / EVENTS_FILE)
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run(config, events, stop)
    except Exception as exc:
        text = traceback.format_exc()
        message = str(exc) if isinstance(exc, FtwizardError) else f"{type(exc).__name__}: {exc}"
        events.write(TrainingEvent(event="error", message=message, traceback=_tail(text)))
        print(text, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
