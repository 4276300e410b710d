"""A replay, offline against the Fireworks fake: task -> dataset -> grader -> dry run -> RFT
training (the grader as an evaluator) -> deploy -> evaluate (base vs tuned, graded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.store import SessionStore
from tests.fakes.fireworks_server import FakeFireworksServer
from tests.replay_steps import label_grader_step
from tests.tiny_local import Tickets

BASE = "accounts/fireworks/models/qwen3-8b"


def _rft_rows(source: Path, target: Path) -> dict[str, str]:
    """Tickets as RFT rows (prompt + reference_answer); returns {ticket text: label}."""
    labels: dict[str, str] = {}
    out = []
    for line in source.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        label = messages[-1]["content"]
        labels[messages[-2]["content"]] = label
        # The system prompt stays: Fireworks reads it (only OpenAI's RFT refuses "system").
        prompt = messages[:-1]
        out.append(json.dumps({"messages": prompt, "reference_answer": label}))
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return labels


def test_fireworks_rft_replay_end_to_end(
    store: SessionStore,
    tickets: Tickets,
    fireworks: FakeFireworksServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = _rft_rows(tickets.train, tmp_path / "train.jsonl")
    labels |= _rft_rows(tickets.valid, tmp_path / "valid.jsonl")
    seen: list[str] = []

    def reply(body: dict[str, Any]) -> str:
        label = labels.get(body["messages"][-1]["content"], "billing")
        if body["model"] != BASE:
            return label  # the tuned model learned the labels
        seen.append(label)
        return label if len(seen) % 3 == 0 else "no idea"  # the base model: a third right

    fireworks.reply_fn = reply
    fireworks.advance_per_get = 20.0
    replay = tmp_path / "fireworks-rft.yaml"
    replay.write_text(
        f"""version: 1
session: {{name: fw-rft, method: rft, backend: fireworks, base_model: {BASE}}}
actions:
  - screen: task
  - press: next
  - screen: dataset
  - set: {{train-path: {tmp_path / "train.jsonl"}, valid-path: {tmp_path / "valid.jsonl"}}}
  - press: check-dataset
  - wait: {{for: dataset-checked, timeout: 120}}
  - expect: {{dataset.result.errors: 0, dataset.result.format: rft}}
  - press: next
{label_grader_step()}  - screen: dryrun
  - set: {{dryrun-samples: 24}}
  - press: dryrun-run
  - screen: confirm
  - press: confirm-yes
  - wait: {{for: dryrun-finished, timeout: 120}}
  - expect: {{dryrun.mean: {{min: 0.1, max: 0.6}}}}
  - press: dryrun-proceed
  - press: next
  - screen: training
  - wait: workers
  - press: start-training
  - screen: confirm
  - press: confirm-yes
  - wait: {{for: training-finished, timeout: 120}}
  - expect: {{training.status: succeeded, training.estimated_cost_usd: 0.0}}
  - press: next
  - screen: deploy
  - press: deploy-model
  - wait: {{for: deployed, timeout: 60}}
  - set: {{deploy-prompt: "I was charged twice for my Pro plan last week."}}
  - press: deploy-send
  - wait: {{for: model-answered, timeout: 60}}
  - press: next
  - screen: evaluate
  - wait: workers
  - press: run-grader-eval
  - screen: confirm
  - press: confirm-yes
  - wait: {{for: evaluation-graded, timeout: 120}}
  - expect:
      evaluation.base_mean: {{max: 0.5}}
      evaluation.tuned_mean: {{min: 0.99}}
""",
        encoding="utf-8",
    )
    code = main(["--replay", str(replay), "--allow-spend"])
    out = capsys.readouterr()
    if code != 0:  # say where it stopped: the transcript, the training section, the requests
        summaries, _ = store.list()
        from ftwizard.training.plan import training_blocker

        loaded = store.load(summaries[0].id) if summaries else None
        training = (loaded.training, training_blocker(loaded, store)) if loaded else None
        calls = [f"{r.method} {r.path}" for r in fireworks.requests[-8:]]
        pytest.fail(f"{out.out[-1500:]}\n{out.err[-1500:]}\n{training}\n{calls}")
    assert fireworks.job_count == 1 and len(fireworks.evaluators) == 1
    job = next(iter(fireworks.jobs.values()))
    assert job.collection == "reinforcementFineTuningJobs"
    assert job.body["evaluator"].endswith(next(iter(fireworks.evaluators)))
