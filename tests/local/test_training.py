"""Real local training through the detached worker, on the tiny model, on CPU."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.local.config import LocalHyperparameters, LocalTrainingConfig, RewardConfig
from ftwizard.providers.local.events import TrainingEvent
from ftwizard.providers.local.export import export_adapter, export_merged
from ftwizard.providers.local.job import LocalJobState, LocalTrainingJob
from tests.tiny_local import (
    Tickets,
    TinyBuild,
    TrainedAdapter,
    accuracy,
    worker_env,
)

WAIT_S = 240


def _config(
    tickets: Tickets,
    run_dir: Path,
    method: str = "sft",
    *,
    train: Path | None = None,
    valid: Path | bool | None = True,
    reward: RewardConfig | None = None,
    **hp: Any,
) -> LocalTrainingConfig:
    settings = {"learning_rate": 5e-3, "batch_size": 8, "lora_dropout": 0.0, "max_length": 128}
    settings.update(hp)
    return LocalTrainingConfig(
        method=method,  # type: ignore[arg-type]
        base_model="local:builtin-tiny",
        train_file=train or tickets.train,
        valid_file=tickets.valid if valid is True else valid or None,
        run_dir=run_dir,
        hyperparameters=LocalHyperparameters(**settings),
        reward=reward,
        device="cpu",
    )


def _start(config: LocalTrainingConfig, build: TinyBuild) -> LocalTrainingJob:
    return LocalTrainingJob.start(config, env=worker_env(build.home))


def _wait_for_metrics(job: LocalTrainingJob, timeout_s: float = WAIT_S) -> list[TrainingEvent]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        events = job.events()
        if any(e.event == "metrics" for e in events):
            return events
        status = job.status()
        assert not status.finished, f"{status.state}: {status.message}\n{status.log_tail}"
        time.sleep(0.2)
    raise AssertionError(f"no metrics within {timeout_s} s:\n{job.log_tail()}")


def _kill(job: LocalTrainingJob) -> None:
    record = job.worker()
    if record is not None and job.is_alive():
        os.killpg(record.pid, signal.SIGKILL)


def test_sft_runs_detached_and_reports_metrics_checkpoints_and_done(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    config = _config(tickets, tmp_path / "run", max_steps=12, logging_steps=2, eval_steps=6)
    job = _start(config, tiny_model_build)
    try:
        status = job.wait(timeout_s=WAIT_S)
    finally:
        _kill(job)
    assert status.state is LocalJobState.succeeded, f"{status.message}\n{status.log_tail}"

    events = job.events()
    kinds = [e.event for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    start = events[0]
    record = job.worker()
    assert record is not None and start.model_extra is not None
    assert start.model_extra["pid"] == record.pid
    assert 0 < start.model_extra["trainable_parameters"] < start.model_extra["total_parameters"]
    assert start.model_extra["train_examples"] == 480

    train_logs = [e for e in events if e.event == "metrics" and "loss" in e.metrics]
    assert [e.step for e in train_logs] == [2, 4, 6, 8, 10, 12]
    assert train_logs[-1].metrics["loss"] < train_logs[0].metrics["loss"]
    assert all("learning_rate" in e.metrics for e in train_logs)
    eval_logs = [e for e in events if e.event == "metrics" and "eval_loss" in e.metrics]
    assert [e.step for e in eval_logs] == [6, 12]

    checkpoints = status.checkpoints
    assert [c.step for c in checkpoints] == [6, 12]
    assert all(Path(c.path, "adapter_model.safetensors").is_file() for c in checkpoints)
    assert all("eval_loss" in c.metrics for c in checkpoints)
    best = job.best_checkpoint()
    assert best is not None
    assert best.metrics["eval_loss"] == min(c.metrics["eval_loss"] for c in checkpoints)

    assert status.adapter_dir is not None
    assert Path(status.adapter_dir, "adapter_config.json").is_file()
    assert {"train_runtime", "train_cpu_s", "eval_loss"} <= status.metrics.keys()
    assert status.metrics["num_tokens"] == max(e.metrics["num_tokens"] for e in train_logs)

    async def follow() -> list[str]:
        return [e.event async for e in LocalTrainingJob(job.run_dir).follow(poll_s=0.05)]

    assert asyncio.run(follow()) == kinds


@pytest.mark.slow
def test_tiny_model_learns_the_tickets_task(
    tiny_model: Path, tickets: Tickets, tickets_adapter: TrainedAdapter
) -> None:
    rows = tickets.valid_rows()
    before = accuracy("builtin-tiny", rows)
    after = accuracy(str(tickets_adapter.adapter_dir), rows)
    runtime = tickets_adapter.status.metrics["train_runtime"]
    print(
        f"\ntickets accuracy before {before:.1%} after {after:.1%} "
        f"(train_runtime {runtime:.1f} s, job wall {tickets_adapter.wall_s:.1f} s)"
    )
    assert before <= 0.1
    assert after >= 0.95
    best = LocalTrainingJob(tickets_adapter.run_dir).best_checkpoint("eval_loss")
    assert best is not None and best.metrics["eval_loss"] < 0.2


@pytest.mark.slow
def test_merged_export_answers_like_the_adapter(
    tickets_adapter: TrainedAdapter, tickets: Tickets, tmp_path: Path
) -> None:
    copied = export_adapter(tickets_adapter.adapter_dir, tmp_path / "adapter")
    assert (copied / "adapter_model.safetensors").is_file()
    with pytest.raises(InputError, match="destination exists"):
        export_adapter(tickets_adapter.adapter_dir, copied)
    merged = export_merged(tickets_adapter.adapter_dir, tmp_path / "merged")
    assert (merged / "model.safetensors").is_file()
    assert not (merged / "adapter_config.json").exists()
    rows = tickets.valid_rows()[:40]
    assert accuracy(str(merged), rows) == accuracy(str(copied), rows) >= 0.9


def _rft_rows(tickets: Tickets, path: Path, n: int) -> Path:
    rows = [json.loads(line) for line in tickets.train.read_text().splitlines()[:n]]
    with path.open("w") as f:
        for row in rows:
            item = {
                "messages": row["messages"][:-1],
                "reference_answer": row["messages"][-1]["content"],
            }
            f.write(json.dumps(item) + "\n")
    return path


def test_grpo_trains_with_the_grader_as_reward(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    train = _rft_rows(tickets, tmp_path / "rft.jsonl", 16)
    config = _config(
        tickets,
        tmp_path / "run",
        method="rft",
        train=train,
        valid=None,
        reward=RewardConfig(grader_file=tickets.grader),
        max_steps=2,
        logging_steps=1,
        batch_size=4,
        num_generations=4,
        max_completion_length=4,
    )
    job = _start(config, tiny_model_build)
    try:
        status = job.wait(timeout_s=WAIT_S)
    finally:
        _kill(job)
    assert status.state is LocalJobState.succeeded, f"{status.message}\n{status.log_tail}"
    logs = [e for e in job.events() if e.event == "metrics" and "reward" in e.metrics]
    assert [e.step for e in logs] == [1, 2]
    for event in logs:
        assert 0.0 <= event.metrics["reward"] <= 1.0
        assert "rewards/label_match/mean" in event.metrics
        assert "completions/mean_length" in event.metrics


def test_dpo_trains_on_preference_pairs(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    labels = ["billing", "bug", "account", "feature"]
    rows = [json.loads(line) for line in tickets.train.read_text().splitlines()[:16]]
    train = tmp_path / "dpo.jsonl"
    with train.open("w") as f:
        for row in rows:
            right = row["messages"][-1]["content"]
            wrong = labels[(labels.index(right) + 1) % 4]
            pair = {
                "input": {"messages": row["messages"][:-1]},
                "preferred_output": [{"role": "assistant", "content": right}],
                "non_preferred_output": [{"role": "assistant", "content": wrong}],
            }
            f.write(json.dumps(pair) + "\n")
    config = _config(
        tickets, tmp_path / "run", "dpo", train=train, valid=None, max_steps=3, logging_steps=1
    )
    job = _start(config, tiny_model_build)
    try:
        status = job.wait(timeout_s=WAIT_S)
    finally:
        _kill(job)
    assert status.state is LocalJobState.succeeded, f"{status.message}\n{status.log_tail}"
    logs = [e for e in job.events() if e.event == "metrics" and "loss" in e.metrics]
    assert [e.step for e in logs] == [1, 2, 3]
    assert any(key.startswith("rewards/") for key in logs[-1].metrics)


def test_killed_worker_is_reported_as_crashed_with_its_log(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    job = _start(
        _config(tickets, tmp_path / "run", max_steps=100_000, logging_steps=1), tiny_model_build
    )
    try:
        _wait_for_metrics(job)
        record = job.worker()
        assert record is not None
        os.killpg(record.pid, signal.SIGKILL)
        status = LocalTrainingJob(job.run_dir).wait(timeout_s=20)
    finally:
        _kill(job)
    assert status.state is LocalJobState.crashed
    assert not status.alive
    assert status.message is not None and "died" in status.message
    assert status.log_tail and "loss" in status.log_tail
    assert status.step is not None and status.step >= 1


def test_reattach_to_a_running_job_and_cancel_it(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    config = _config(tickets, tmp_path / "run", max_steps=100_000, logging_steps=1)
    job = _start(config, tiny_model_build)
    try:
        _wait_for_metrics(job)
        with pytest.raises(InputError, match="re-attach"):
            _start(config, tiny_model_build)
        # A new object knows only the folder, as after an app restart.
        again = LocalTrainingJob(job.run_dir)
        status = again.status()
        assert status.state is LocalJobState.running and status.alive
        record = job.worker()
        assert record is not None and status.pid == record.pid
        # Even without worker.json (the app died right after starting the worker) the job is
        # found through the pid in the worker's start event.
        job.worker_path.unlink()
        status = again.status()
        assert status.state is LocalJobState.running and status.pid == record.pid
        first = again.poll()
        assert first[0].event == "start" and any(e.event == "metrics" for e in first)
        status = again.cancel(timeout_s=60)
    finally:
        _kill(job)
    assert status.state is LocalJobState.cancelled, f"{status.message}\n{status.log_tail}"
    assert not job.is_alive()
    assert status.adapter_dir is not None
    assert Path(status.adapter_dir, "adapter_model.safetensors").is_file()
    rest = again.poll()
    assert rest and rest[-1].event == "cancelled"


def test_worker_failure_is_reported_with_the_traceback(
    tiny_model_build: TinyBuild, tickets: Tickets, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(tickets.train.read_text().splitlines()[0] + "\n{not json\n")
    config = _config(tickets, tmp_path / "run", train=bad)
    job = _start(config, tiny_model_build)
    try:
        status = job.wait(timeout_s=WAIT_S)
    finally:
        _kill(job)
    assert status.state is LocalJobState.failed
    assert status.message is not None and f"{bad}:2" in status.message
    assert status.log_tail is not None and "Traceback" in status.log_tail


@pytest.mark.slow
def test_served_adapter_answers_openai_chat_completions(
    tickets_adapter: TrainedAdapter, tickets: Tickets, tmp_path: Path
) -> None:
    import httpx
    import openai

    from ftwizard.providers.local.serve import LocalServer

    server = LocalServer.start(
        str(tickets_adapter.adapter_dir), tmp_path / "serve", name="tuned", timeout_s=120
    )
    try:
        record = LocalServer(tmp_path / "serve").record()
        assert record is not None and record.host == "127.0.0.1" and record.name == "tuned"
        with httpx.Client(base_url=record.base_url, timeout=60) as client:
            models = client.get("/models").json()
            assert [m["id"] for m in models["data"]] == ["tuned"]
            rows = tickets.valid_rows()[:8]
            answers = []
            for row in rows:
                reply = client.post(
                    "/chat/completions",
                    json={"model": "tuned", "messages": row["messages"][:-1], "max_tokens": 8},
                )
                assert reply.status_code == 200, reply.text
                body = reply.json()
                assert body["usage"]["completion_tokens"] >= 1
                answers.append(body["choices"][0]["message"]["content"])
            bad = client.post("/chat/completions", json={"model": "tuned", "messages": []})
            assert bad.status_code == 400
        sdk = openai.OpenAI(base_url=record.base_url, api_key="unused", max_retries=0)
        stream = sdk.chat.completions.create(
            model="tuned", messages=rows[0]["messages"][:-1], max_tokens=8, stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed.strip() == answers[0]
        expected = [row["messages"][-1]["content"] for row in rows]
        assert sum(a == e for a, e in zip(answers, expected, strict=True)) >= 7
    finally:
        server.stop()
    assert not server.is_alive()
