"""A replay, offline against the Together fake: task -> dataset -> grader -> dry run -> SFT
training (Together's estimate first) -> deploy -> evaluate (base vs tuned, graded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.store import SessionStore
from tests.fakes.together_server import FakeTogetherServer
from tests.replay_steps import label_grader_step
from tests.tiny_local import Tickets

BASE = "Qwen/Qwen3.5-9B"


def _labels(*sources: Path) -> dict[str, str]:
    """{ticket text: label} from chat JSONL files."""
    labels: dict[str, str] = {}
    for source in sources:
        for line in source.read_text(encoding="utf-8").splitlines():
            messages = json.loads(line)["messages"]
            labels[messages[-2]["content"]] = messages[-1]["content"]
    return labels


def test_together_sft_replay_end_to_end(
    store: SessionStore,
    tickets: Tickets,
    together_env: FakeTogetherServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    labels = _labels(tickets.train, tickets.valid)
    seen: list[str] = []

    def reply(body: dict[str, Any]) -> str:
        label = labels.get(body["messages"][-1]["content"], "billing")
        if body["model"] != BASE:
            return label  # the tuned model learned the labels
        seen.append(label)
        return label if len(seen) % 3 == 0 else "no idea"  # the base model: a third right

    together_env.reply_fn = reply
    together_env.advance_per_poll = 20.0
    replay = tmp_path / "together-sft.yaml"
    replay.write_text(
        f"""version: 1
session: {{name: tg-sft, method: sft, backend: together, base_model: {BASE}}}
actions:
  - screen: task
  - press: next
  - screen: dataset
  - set: {{train-path: {tickets.train}, valid-path: {tickets.valid}}}
  - press: check-dataset
  - wait: {{for: dataset-checked, timeout: 300}}
  - expect: {{dataset.result.errors: 0, dataset.result.format: chat}}
  - press: next
{label_grader_step(300)}  - screen: dryrun
  - set: {{dryrun-samples: 24}}
  - press: dryrun-run
  - press: confirm-yes
  - wait: {{for: dryrun-finished, timeout: 300}}
  - expect: {{dryrun.mean: {{min: 0.1, max: 0.6}}}}
  - press: dryrun-proceed
  - press: next
  - screen: training
  - set: {{hp-n_epochs: "2"}}
  - press: start-training
  - wait: {{for: workers, timeout: 300}}
  - screen: confirm
  - press: confirm-yes
  - wait: {{for: training-finished, timeout: 300}}
  - expect: {{training.status: succeeded}}
  - press: next
  - screen: deploy
  - press: deploy-model
  - wait: {{for: deployed, timeout: 60}}
  - set: {{deploy-prompt: "I was charged twice for my Pro plan last week."}}
  - press: deploy-send
  - wait: {{for: model-answered, timeout: 60}}
  - press: next
  - screen: evaluate
  - press: run-grader-eval
  - screen: confirm
  - press: confirm-yes
  - wait: {{for: evaluation-graded, timeout: 300}}
  - expect:
      evaluation.base_mean: {{max: 0.5}}
      evaluation.tuned_mean: {{min: 0.99}}
""",
        encoding="utf-8",
    )
    code = main(["--replay", str(replay), "--allow-spend"])
    out = capsys.readouterr()
    if code != 0:  # say where it stopped: the transcript and the last requests
        calls = [f"{r.method} {r.path}" for r in together_env.requests[-8:]]
        pytest.fail(f"{out.out[-2000:]}\n{out.err[-1500:]}\n{calls}")
    assert together_env.job_count == 1
    (job,) = together_env.jobs.values()
    assert job.body["model"] == BASE and job.body["n_epochs"] == 2
    # The estimate was asked before the job was created, and recorded as the session's cost.
    paths = [r.path for r in together_env.requests]
    assert paths.index("/v1/fine-tunes/estimate-price") < paths.index("/v1/fine-tunes")
    summaries, _ = store.list()
    session = store.load(summaries[0].id)
    assert session.training.estimated_cost_usd is not None
    assert session.deployment.model == f"together:{together_env.output_name(job)}"
    models = {b["model"] for b in together_env.chat_bodies()}
    assert models == {BASE, together_env.output_name(job)}  # dry run on the base the job tunes
