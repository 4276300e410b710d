"""The training and deploy steps on Fireworks: ``ftwizard train/status/deploy``, RFT with the
grader as an evaluator, and a kill between "create" and "record" that creates no second job."""

from __future__ import annotations

import asyncio
import json

import pytest

from ftwizard.cli import main
from ftwizard.providers.fireworks.shapes import evaluator_id_for, job_id_for
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from tests.fakes.fireworks_server import FakeFireworksServer
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_train_status_and_deploy_from_the_command_line(
    store: SessionStore,
    tickets: Tickets,
    fireworks: FakeFireworksServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = session_at_training(store, tickets, backend=Backend.fireworks)
    assert main(["train", session.id, "--json"]) == 2  # paid: needs --allow-spend
    assert fireworks.job_count == 0
    capsys.readouterr()
    fireworks.advance_per_get = 15.0
    assert main(["train", session.id, "--json", "--allow-spend", "--interval", "0.01"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "job" and lines[0]["reattached"] is False
    assert lines[-1]["event"] == "end" and lines[-1]["status"] == "succeeded"
    saved = store.load(session.id)
    assert saved.training.intent is not None
    model = f"accounts/acme/models/{job_id_for(saved.training.intent.key)}"
    assert saved.training.fine_tuned_model == model
    assert [m["step"] for m in saved.training.metrics][-1] == 100

    assert main(["status", session.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert main(["deploy", session.id, "--json", "--prompt", "My invoice is wrong"]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert json.dumps(deployed).count(f"fireworks:{model}") >= 1
    assert fireworks.chat_reply in json.dumps(deployed)
    # The request printed is the one sent, with the data's system prompt shown in it.
    sent = fireworks.requests_to("/inference/v1/chat/completions", "POST")[-1].json()
    assert deployed["request"] == sent
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert main(["deploy", session.id, "--system", "", "--prompt", "Printer on fire"]) == 0
    printed = capsys.readouterr().out
    sent = fireworks.requests_to("/inference/v1/chat/completions", "POST")[-1].json()
    assert sent["messages"] == [{"role": "user", "content": "Printer on fire"}]
    assert "request      POST http" in printed and '"content": "Printer on fire"' in printed
    assert '"role": "system"' not in printed
    assert fireworks.job_count == 1


def test_rft_trains_with_the_grader_as_an_evaluator_for_free(
    store: SessionStore, tickets: Tickets, fireworks: FakeFireworksServer
) -> None:
    session = session_at_training(
        store, tickets, backend=Backend.fireworks, method=Method.rft, convert=True
    )
    estimate = training_plan.confirm_training(session, store)
    assert estimate.usd == 0.0 and "free" in estimate.basis
    job_id, reattached = asyncio.run(
        training_jobs.start_or_attach(session, store, allow_spend=True)
    )
    assert "/reinforcementFineTuningJobs/" in job_id and not reattached
    key = store.load(session.id).training.intent.key  # type: ignore[union-attr]
    body = fireworks.jobs[job_id_for(key)].body
    assert body["evaluator"] == f"accounts/acme/evaluators/{evaluator_id_for(key)}"
    source = fireworks.evaluator_source(evaluator_id_for(key))
    namespace: dict[str, object] = {}
    exec(compile(source, "main.py", "exec"), namespace)
    evaluate = namespace["evaluate"]
    assert callable(evaluate)
    rollout = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "bug"}]
    assert evaluate(rollout, reference_answer="bug")["score"] == 1.0
    assert evaluate(rollout, reference_answer="billing")["score"] == 0.0


def test_killed_between_create_and_record_makes_no_second_job(
    store: SessionStore, tickets: Tickets, fireworks: FakeFireworksServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.fireworks)
    training_plan.confirm_training(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    provider = training_jobs.training_provider(session, store)
    # The job is created, then the app dies before record_job saves its id.
    created, _ = asyncio.run(
        training_jobs.create_or_find_job(provider, training_jobs.build_spec(session, store, key))
    )
    resumed = store.load(session.id)
    assert resumed.training.intent is not None and resumed.training.intent.job_id is None
    job_id, reattached = asyncio.run(
        training_jobs.start_or_attach(resumed, store, allow_spend=True)
    )
    assert reattached and job_id == created
    assert fireworks.job_count == 1
    assert store.load(session.id).training.intent.job_id == created  # type: ignore[union-attr]
