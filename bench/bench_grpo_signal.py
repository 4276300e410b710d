"""Does the group dry run predict what GRPO sees? Dry run, then a short GRPO run, same model.

On ``local:builtin-tiny`` (built from scratch, offline) with the tickets example and its label
grader: the dry run draws K answers per prompt at temperature 1.0 and reports the share of
prompts whose K scores are all equal; then TRL's GRPOTrainer trains a few steps with
``num_generations = K`` at the same temperature and completion length, and logs
``frac_reward_zero_std`` per step. The first logged step is closest to the base model the dry
run measured; later steps drift as the adapter learns.

Two graders: the task's own label grader, which the untrained tiny model always fails (so both
figures sit at 100 %), and a probe that passes an answer containing the letter "e" — a binary
grader with a pass rate in the middle, so that the share of flat groups is neither 0 nor 100 %
and the comparison says something (for a pass rate p and K draws, p^K + (1 - p)^K is flat).

    .venv/bin/python bench/bench_grpo_signal.py [--prompts 32] [--k 4] [--steps 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TICKETS = REPO / "examples" / "data" / "tickets"
sys.path.insert(0, str(REPO))


def _rft_rows(path: Path, n: int) -> Path:
    """The first ``n`` tickets as RFT rows: the prompt, and the label as reference answer."""
    lines = (TICKETS / "train.jsonl").read_text().splitlines()[:n]
    with path.open("w") as fh:
        for line in lines:
            row = json.loads(line)
            item = {
                "messages": row["messages"][:-1],
                "reference_answer": row["messages"][-1]["content"],
            }
            fh.write(json.dumps(item) + "\n")
    return path


PROBE = {
    "type": "string_check",
    "name": "contains e",
    "input": "{{sample.output_text}}",
    "reference": "e",
    "operation": "like",
}


async def _dry_run(data: Path, grader: Path, prompts: int, k: int, max_tokens: int) -> object:
    from ftwizard.dryrun.engine import DryRun
    from ftwizard.dryrun.report import DryRunConfig
    from ftwizard.graders.loading import load_grader

    config = DryRunConfig(
        data=str(data),
        model="local:builtin-tiny",
        samples=prompts,
        samples_per_prompt=k,
        temperature=1.0,
        max_tokens=max_tokens,
    )
    return await DryRun(config, load_grader(grader)).run()


def _grpo(
    data: Path, grader: Path, run_dir: Path, home: Path, k: int, steps: int, max_tokens: int
) -> list[float]:
    from ftwizard.providers.local.config import (
        LocalHyperparameters,
        LocalTrainingConfig,
        RewardConfig,
    )
    from ftwizard.providers.local.job import LocalJobState, LocalTrainingJob

    config = LocalTrainingConfig(
        method="rft",
        base_model="local:builtin-tiny",
        train_file=data,
        run_dir=run_dir,
        hyperparameters=LocalHyperparameters(
            learning_rate=5e-3,
            batch_size=k * 2,
            lora_dropout=0.0,
            max_length=128,
            max_steps=steps,
            logging_steps=1,
            num_generations=k,
            max_completion_length=max_tokens,
            temperature=1.0,
        ),
        reward=RewardConfig(grader_file=grader),
        device="cpu",
    )
    env = dict(os.environ)
    env.update(FTWIZARD_HOME=str(home), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    job = LocalTrainingJob.start(config, env=env)
    status = job.wait(timeout_s=900)
    if status.state is not LocalJobState.succeeded:
        raise SystemExit(f"GRPO run failed: {status.message}\n{status.log_tail}")
    return [
        float(e.metrics["frac_reward_zero_std"])
        for e in job.events()
        if e.event == "metrics" and "frac_reward_zero_std" in e.metrics
    ]


def main() -> int:
    """Run both and print the dry run's zero-variance share beside TRL's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=4)
    # Each step trains 2 prompts x K answers: 16 steps are one pass over the 32 prompts, so
    # TRL's mean covers the same prompts as the dry run.
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=4)
    args = parser.parse_args()
    from ftwizard.providers.local.tiny_model import ensure_tiny_model

    with tempfile.TemporaryDirectory(prefix="ftwizard-grpo-bench-") as tmp:
        root = Path(tmp)
        home = root / "home"
        os.environ["FTWIZARD_HOME"] = str(home)
        os.environ["HF_HUB_OFFLINE"] = "1"
        ensure_tiny_model(home=home)
        data = _rft_rows(root / "rft.jsonl", args.prompts)
        probe = root / "probe.json"
        probe.write_text(json.dumps(PROBE))
        for name, grader in (("label grader", TICKETS / "grader.yaml"), ("probe", probe)):
            started = time.perf_counter()
            report = asyncio.run(_dry_run(data, grader, args.prompts, args.k, args.max_tokens))
            dry_s = time.perf_counter() - started
            groups = report.groups  # type: ignore[attr-defined]
            started = time.perf_counter()
            run_dir = root / f"run-{grader.stem}"
            trl = _grpo(data, grader, run_dir, home, args.k, args.steps, args.max_tokens)
            grpo_s = time.perf_counter() - started
            if groups is None or not trl:
                print("no group figures or no frac_reward_zero_std logged", file=sys.stderr)
                return 1
            print(f"{name} ({grader.name}):")
            print(
                f"  dry run ({args.prompts} prompts x K={args.k}, {dry_s:.1f} s): zero-variance "
                f"share {groups.zero_variance_pct:.1f}% (all fail {groups.all_fail_pct:.1f}%, "
                f"all pass {groups.all_pass_pct:.1f}%), within-prompt std "
                f"{groups.mean_within_std:.3f}"
            )
            print(
                f"  TRL GRPO ({len(trl)} steps, {grpo_s:.1f} s): frac_reward_zero_std first step "
                f"{100 * trl[0]:.1f}%, mean {100 * statistics.fmean(trl):.1f}%, per step "
                + " ".join(f"{100 * x:.0f}%" for x in trl),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
