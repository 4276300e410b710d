"""The training and deploy steps on the local backend, for real: the tiny model learns the
tickets through the detached worker, a fresh process re-attaches to a running worker, and the
deployed model answers a ticket with its label."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.deploy import engine as deploy
from ftwizard.deploy.request import dataset_system_prompt
from ftwizard.providers.local.job import LocalTrainingJob
from ftwizard.store import SessionStore
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from ftwizard.training import results as training_results
from tests.conftest import REPO_ROOT
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training

LABELS = {"billing", "bug", "account", "feature"}


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_train_status_and_deploy_from_the_command_line(
    store: SessionStore,
    tickets: Tickets,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = session_at_training(store, tickets)
    assert main(["train", session.id, "--json", "--interval", "0.5"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "job" and lines[0]["reattached"] is False
    assert lines[-1]["event"] == "end" and lines[-1]["status"] == "succeeded"
    saved = store.load(session.id)
    losses = [m["train_loss"] for m in saved.training.metrics if m["train_loss"] is not None]
    assert len(losses) >= 3 and losses[-1] < losses[0]
    assert any(m["valid_loss"] is not None for m in saved.training.metrics)
    assert saved.training.checkpoints and saved.training.cost_usd == 0.0
    assert saved.training.run_dir and Path(saved.training.run_dir).is_dir()
    assert training_results.training_problem(saved) is None

    assert main(["status", session.id, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "succeeded" and "train_loss" in status["latest"]
    assert status["best_by"] == "eval_loss"

    ticket = tickets.valid_rows()[0]["messages"]
    try:
        assert main(["deploy", session.id, "--json", "--prompt", ticket[-2]["content"]]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["model"] == "openai:ftwizard-tuned"
        assert result["base_url"].startswith("http://127.0.0.1:")
        assert result["test_reply"] == ticket[-1]["content"]
        assert Path(result["merged_dir"], "config.json").is_file()
        deployed = store.load(session.id)
        assert deploy.deploy_problem(deployed) is None
        # Another prompt through the same deployment: a label again.
        reply = asyncio.run(
            deploy.try_model(
                deployed,
                tickets.valid_rows()[1]["messages"][-2]["content"],
                system=dataset_system_prompt(deployed),
            )
        )
        assert reply in LABELS
    finally:
        deploy.stop_local_server(store.load(session.id))


def test_a_fresh_process_reattaches_to_the_running_worker(
    store: SessionStore, tickets: Tickets, tiny_model: Path
) -> None:
    session = session_at_training(store, tickets)
    training_plan.set_hyperparameter(session, "max_steps", "40")
    training_plan.confirm_training(session, store)
    job_id, reattached = asyncio.run(
        training_jobs.start_or_attach(session, store, allow_spend=False)
    )
    assert not reattached and job_id == session.training.run_dir
    job = LocalTrainingJob(job_id)
    try:
        # A new process (the app restarted) finds the job by the session alone.
        out = subprocess.run(
            [sys.executable, "-m", "ftwizard", "train", session.id, "--json", "--interval", "0.5"],
            capture_output=True,
            text=True,
            timeout=400,
            cwd=REPO_ROOT,
            env=dict(os.environ),
            check=False,
        )
        assert out.returncode == 0, out.stderr
        lines = _json_lines(out.stdout)
        assert lines[0] == {"event": "job", "job_id": job_id, "reattached": True}
        assert lines[-1]["status"] == "succeeded"
    finally:
        if job.is_alive():
            job.cancel(timeout_s=10)
    runs = [p for p in training_plan.runs_root(session, store).iterdir() if p.is_dir()]
    assert runs == [Path(job_id)]  # one worker, one run folder: never a second job
    saved = store.load(session.id)
    assert saved.training.status == "succeeded"
    assert saved.training.metrics[-1]["step"] <= 40


REPLAY = """\
version: 1
resume: {session}
actions:
  - screen: training
  - set: {{hp-max_steps: "60"}}
  - press: start-training
  - wait: {{for: training-finished, timeout: 400}}
  - expect:
      training.status: succeeded
      training.hyperparameters.max_steps: 60
  - press: choose-best
  - press: next
  - screen: deploy
  - press: deploy-model
  - wait: {{for: deployed, timeout: 300}}
  - set: {{deploy-prompt: "{prompt}"}}
  - press: deploy-send
  - wait: {{for: model-answered, timeout: 120}}
  - expect:
      deployment.model: openai:ftwizard-tuned
      deployment.test_reply: [billing, bug, account, feature]
"""


def test_a_replay_trains_locally_and_deploys(
    store: SessionStore, tickets: Tickets, tiny_model: Path, tmp_path: Path
) -> None:
    import io

    from ftwizard.autopilot import run_replay
    from ftwizard.replay import parse_replay_text

    session = session_at_training(store, tickets)
    prompt = tickets.valid_rows()[5]["messages"][-2]["content"].replace('"', "'")
    path = tmp_path / "train.yaml"
    path.write_text(REPLAY.format(session=session.id, prompt=prompt))
    out = io.StringIO()
    try:
        result = run_replay(parse_replay_text(path.read_text(), path), store=store, out=out)
    finally:
        deploy.stop_local_server(store.load(session.id))
    assert result.exit_code == 0, out.getvalue()
    saved = store.load(session.id)
    assert saved.training.chosen_checkpoint is not None
    assert saved.deployment.test_reply in LABELS
