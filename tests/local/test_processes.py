"""Local training on two CPU processes through ``accelerate launch``: one data-parallel run.

Two processes with batch 2 must train exactly what one process with batch 4 trains (the same
global batch): the same losses step by step and the same adapter. Both ranks must end with the
same loss and weights (without ``use_cpu=True`` they would be two separate trainings), and
only rank 0 writes the events and the adapter.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ftwizard.providers.local.config import LocalHyperparameters, LocalTrainingConfig
from ftwizard.providers.local.job import LocalTrainingJob
from ftwizard.providers.local.tiny_model import TINY_MODEL_NAME
from tests.tiny_local import Tickets, TinyBuild, worker_env

RANK_LINE = re.compile(
    r"ftwizard rank (\d)/(\d): step (\d+) train_loss ([\d.]+) adapter_checksum (-?[\d.]+)"
)
TIMEOUT_S = 600


def _train(
    run_dir: Path, tickets: Tickets, tiny: TinyBuild, *, processes: int, batch: int
) -> LocalTrainingJob:
    hp = LocalHyperparameters(
        max_steps=3,
        learning_rate=5e-3,
        batch_size=batch,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        max_length=128,
        logging_steps=1,
        processes=processes,
        seed=3,
    )
    config = LocalTrainingConfig(
        method="sft",
        base_model=f"local:{TINY_MODEL_NAME}",
        train_file=tickets.train,
        run_dir=run_dir,
        hyperparameters=hp,
        device="cpu",
    )
    job = LocalTrainingJob.start(config, env=worker_env(tiny.home))
    try:
        status = job.wait(timeout_s=TIMEOUT_S)
    finally:
        if job.is_alive():
            job.cancel(timeout_s=10)
    assert status.state == "succeeded", f"{status.message}\n{job.log_tail()}"
    return job


def _losses(job: LocalTrainingJob) -> list[float]:
    return [e.metrics["loss"] for e in job.events() if e.event == "metrics" and "loss" in e.metrics]


@pytest.mark.slow
def test_two_cpu_processes_train_what_one_process_trains_with_the_same_global_batch(
    tmp_path: Path, tickets: Tickets, tiny_model_build: TinyBuild
) -> None:
    two = _train(tmp_path / "two", tickets, tiny_model_build, processes=2, batch=2)
    one = _train(tmp_path / "one", tickets, tiny_model_build, processes=1, batch=4)

    start = next(e for e in two.events() if e.event == "start")
    assert (start.model_extra or {})["world_size"] == 2
    assert "accelerate.commands.launch" in (two.worker() or None).command  # type: ignore[union-attr]
    # Only rank 0 wrote events: one start, one done.
    assert [e.event for e in two.events()].count("start") == 1
    assert [e.event for e in two.events()].count("done") == 1
    ranks = {int(m[0]): m for m in RANK_LINE.findall((two.run_dir / "worker.log").read_text())}
    assert sorted(ranks) == [0, 1]
    # Both ranks saw the same loss and hold the same adapter: one training, not two.
    assert ranks[0][1:] == ranks[1][1:] and ranks[0][1] == "2"
    (single,) = RANK_LINE.findall((one.run_dir / "worker.log").read_text())
    assert single[1] == "1"
    # The same global batch gives the same training, up to float summation order.
    assert len(_losses(two)) == 3
    assert _losses(two) == pytest.approx(_losses(one), rel=1e-4)
    assert float(ranks[0][4]) == pytest.approx(float(single[4]), rel=1e-3)
    assert (two.run_dir / "adapter" / "adapter_model.safetensors").is_file()
