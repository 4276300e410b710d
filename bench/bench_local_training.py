"""Local SFT throughput: ftwizard's detached worker vs a plain TRL SFTTrainer script.

Both train the same model with the same LoRA settings on the same tickets rows (chat
``messages``), each in a fresh Python process, in alternating rounds so that noise from a
shared machine hits both alike. Throughput is training tokens (``num_tokens``, as the trainer
reports it) per second of ``train_runtime`` (best and median round) and per CPU-second of the
training process (median round; steadier when other people's jobs share the cores).
Target: ftwizard >= 95 % of plain TRL. Peak memory: each process's peak resident set (and,
on a GPU, peak allocated GPU memory), as both report it at the end of training. ``--device
cuda`` runs both on the GPU (bf16 where supported, as the worker does). The models are
``builtin-tiny`` and tiny random-weight models of the architecture matrix
(``tests/local/families.py``: Llama, Qwen3 by default).

    .venv/bin/python bench/bench_local_training.py [--steps 90] [--rounds 5] \
        [--models builtin-tiny,llama,qwen3] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ftwizard.providers.local.config import LocalHyperparameters, LocalTrainingConfig
from ftwizard.providers.local.data import training_rows
from ftwizard.providers.local.job import LocalTrainingJob
from ftwizard.providers.local.tiny_model import ensure_tiny_model

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "examples" / "data" / "tickets" / "train.jsonl"

PLAIN_SCRIPT = r"""
import json, sys, time
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

model_dir, rows_file, out_dir, steps, batch, lr, r, alpha, max_length, device = sys.argv[1:11]
cuda = device == "cuda"
bf16 = cuda and torch.cuda.is_bf16_supported()
rows = [json.loads(line) for line in open(rows_file)]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(
    model_dir, dtype=torch.bfloat16 if bf16 else torch.float32)
args = SFTConfig(
    output_dir=out_dir, max_steps=int(steps), per_device_train_batch_size=int(batch),
    learning_rate=float(lr), logging_steps=10, report_to=[], disable_tqdm=True, bf16=bf16,
    gradient_checkpointing=False, use_cpu=not cuda, max_length=int(max_length), seed=42,
    save_strategy="no",
)
peft = LoraConfig(r=int(r), lora_alpha=int(alpha), lora_dropout=0.0,
                  target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                     processing_class=tok, peft_config=peft)
cpu_start = time.process_time()
result = trainer.train()
cpu_s = time.process_time() - cpu_start
tokens = max(h.get("num_tokens", 0) for h in trainer.state.log_history)
import resource
peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if torch.cuda.is_available():
    peak["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
print("RESULT " + json.dumps({"train_runtime": result.metrics["train_runtime"],
                              "train_cpu_s": cpu_s, "num_tokens": tokens,
                              "steps": trainer.state.global_step, **peak}))
"""


def run_plain(
    model_dir: Path, rows_file: Path, work: Path, hp: LocalHyperparameters, device: str
) -> dict:
    """Train with the plain TRL script in a fresh process; its figures and wall time."""
    started = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_SCRIPT,
            str(model_dir),
            str(rows_file),
            str(work / "plain-out"),
            str(hp.max_steps),
            str(hp.batch_size),
            str(hp.learning_rate),
            str(hp.lora_r),
            str(hp.lora_alpha),
            str(hp.max_length),
            device,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["wall_s"] = time.monotonic() - started
    return result


def run_ftwizard(
    work: Path, hp: LocalHyperparameters, round_no: int, model: str, device: str
) -> dict:
    """Train through LocalTrainingJob (the detached worker); its figures and wall time."""
    config = LocalTrainingConfig(
        method="sft",
        base_model=model,
        train_file=TRAIN,
        run_dir=work / f"ftwizard-run-{Path(model).name}-{round_no}",
        hyperparameters=hp,
        device=device,  # type: ignore[arg-type]
    )
    started = time.monotonic()
    job = LocalTrainingJob.start(config)
    status = job.wait(timeout_s=600)
    if status.state != "succeeded":
        raise SystemExit(f"ftwizard run {status.state}: {status.message}\n{status.log_tail}")
    tokens = max(e.metrics.get("num_tokens", 0.0) for e in job.events() if e.event == "metrics")
    return {
        "train_runtime": status.metrics["train_runtime"],
        "train_cpu_s": status.metrics["train_cpu_s"],
        "num_tokens": tokens,
        "steps": status.step,
        "wall_s": time.monotonic() - started,
        **{k: status.metrics[k] for k in ("peak_rss_mb", "peak_gpu_mb") if k in status.metrics},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    parser.add_argument("--models", default="llama,qwen3", help="builtin-tiny and/or families")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    hp = LocalHyperparameters(
        max_steps=args.steps,
        learning_rate=5e-3,
        batch_size=16,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        max_length=256,
        logging_steps=10,
    )
    with tempfile.TemporaryDirectory(prefix="ftwizard-bench-") as tmp:
        work = Path(tmp)
        os.environ["FTWIZARD_HOME"] = str(work / "home")
        os.environ["HF_HUB_OFFLINE"] = "1"
        # Fewer threads than cores keeps other people's load from stalling a run mid-step.
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        rows_file = work / "rows.jsonl"
        rows_file.write_text(
            "".join(json.dumps(r) + "\n" for r in training_rows("sft", TRAIN)), encoding="utf-8"
        )
        for name in args.models.split(","):
            if name == "builtin-tiny":
                model_dir, model = ensure_tiny_model(), "local:builtin-tiny"
            else:
                sys.path.insert(0, str(REPO))
                from tests.local.families import build_family

                model_dir = build_family(name, work / "families" / name)
                model = str(model_dir)
            plain: list[dict] = []
            ours: list[dict] = []
            for i in range(args.rounds):
                # Alternate the order so neither side always runs on a warmer machine.
                if i % 2 == 0:
                    plain.append(run_plain(model_dir, rows_file, work, hp, args.device))
                    ours.append(run_ftwizard(work, hp, i, model, args.device))
                else:
                    ours.append(run_ftwizard(work, hp, i, model, args.device))
                    plain.append(run_plain(model_dir, rows_file, work, hp, args.device))
            report(name, hp, args, plain, ours)
    return 0


def report(
    name: str, hp: LocalHyperparameters, args: Any, plain: list[dict], ours: list[dict]
) -> None:
    """Print one model's figures."""

    def wall_rate(r: dict) -> float:
        return r["num_tokens"] / r["train_runtime"]

    def cpu_rate(r: dict) -> float:
        return r["num_tokens"] / r["train_cpu_s"]

    print(
        f"SFT, {name}, LoRA r={hp.lora_r}, batch {hp.batch_size}, {args.steps} steps, "
        f"{args.device}, {args.threads} thread(s), {args.rounds} alternating rounds"
    )
    for label, runs in (("plain TRL", plain), ("ftwizard ", ours)):
        figures = ", ".join(
            f"{wall_rate(r):,.0f} tok/s [{cpu_rate(r):,.0f} tok/cpu-s]" for r in runs
        )
        print(f"  {label}: {figures}")
    rows = (
        ("best tokens/s (train_runtime)", max(map(wall_rate, ours)), max(map(wall_rate, plain))),
        (
            "median tokens/s (train_runtime)",
            statistics.median(map(wall_rate, ours)),
            statistics.median(map(wall_rate, plain)),
        ),
        (
            "median tokens per CPU-second",
            statistics.median(map(cpu_rate, ours)),
            statistics.median(map(cpu_rate, plain)),
        ),
    )
    for label, mine, theirs in rows:
        print(f"  {label}: ftwizard {mine:,.0f} / plain {theirs:,.0f} = {mine / theirs:.1%}")
    for key, what in (("peak_rss_mb", "peak resident memory"), ("peak_gpu_mb", "peak GPU memory")):
        if all(key in r for r in ours + plain):
            mine, theirs = max(r[key] for r in ours), max(r[key] for r in plain)
            print(f"  {what}: ftwizard {mine:,.0f} MB / plain {theirs:,.0f} MB")
    print("  target: ftwizard >= 95 % of plain TRL", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
