"""The training and deploy steps on Together, through the engine and the CLI, against the fake."""

from __future__ import annotations

import json

import pytest

from ftwizard.ledger.store import current_runs, read_lines
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from tests.fakes.together_server import FakeTogetherServer
from tests.tiny_local import Tickets
from tests.training.sessions import run, session_at_training


def test_the_plan_and_the_quote_come_before_any_job(
    store: SessionStore, tickets: Tickets, together_env: FakeTogetherServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.together)
    plan = training_plan.plan_training(session, store)
    assert plan.base_model == "Qwen/Qwen3.5-9B"
    assert "lora_r" in plan.editable and "training_type" in plan.editable
    assert any("Together's own price estimate" in n for n in plan.notices)
    assert plan.estimate.usd is None  # Together's rates are not published in a form we hold
    assert training_plan.set_hyperparameter(session, "n_epochs", "2")
    provider = training_jobs.training_provider(session, store)
    quote = run(training_jobs.quote_training(session, store, provider))
    assert quote is not None and quote.allowed and quote.usd is not None
    assert "Together's estimate" in quote.summary
    assert session.training.estimated_cost_usd == quote.usd
    assert together_env.job_count == 0
    body = together_env.requests_to("/v1/fine-tunes/estimate-price")[0].json()
    assert body["n_epochs"] == 2 and body["model"] == "Qwen/Qwen3.5-9B"


def test_rft_is_not_offered_on_together(store: SessionStore) -> None:
    from ftwizard.catalog import check_base_model, default_model

    assert default_model(Backend.together, Method.rft) is None
    problem = check_base_model(Backend.together, Method.rft, "Qwen/Qwen3.5-9B")
    assert problem is not None and "does not offer RFT" in problem
    assert check_base_model(Backend.together, Method.sft, "my-org/my-model") is None


def test_killed_between_create_and_record_resumes_onto_the_one_job(
    store: SessionStore, tickets: Tickets, together_env: FakeTogetherServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.together)
    training_plan.confirm_training(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    provider = training_jobs.training_provider(session, store)
    # The job is created, then the app dies before the id is saved.
    job_id, reattached = run(
        training_jobs.create_or_find_job(provider, training_jobs.build_spec(session, store, key))
    )
    assert not reattached and together_env.job_count == 1
    resumed = store.load(session.id)
    assert resumed.training.intent is not None and resumed.training.intent.job_id is None
    again, reattached = run(
        training_jobs.start_or_attach(resumed, store, allow_spend=True, provider=provider)
    )
    assert reattached and again == job_id
    assert together_env.job_count == 1 and len(together_env.creates()) == 1


def test_train_follow_deploy_and_call_the_tuned_model(
    store: SessionStore, tickets: Tickets, together_env: FakeTogetherServer
) -> None:
    from ftwizard.deploy import engine as deploy

    session = session_at_training(store, tickets, backend=Backend.together)
    training_plan.confirm_training(session, store)
    provider = training_jobs.training_provider(session, store)
    job_id, _ = run(
        training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider)
    )
    together_env.advance(20 + 30)
    update = run(training_follow.poll(session, store, provider))
    assert update.status.state.value == "running" and [m.step for m in update.metrics] == [1, 2, 3]
    together_env.advance(100)
    update = run(training_follow.poll(session, store, provider))
    assert session.training.status == "succeeded"
    assert session.training.fine_tuned_model == together_env.output_name(together_env.jobs[job_id])
    assert len(session.training.checkpoints) == 1  # one epoch ("auto" leaves Together's default)
    section = deploy.deploy(session, store)
    assert section.model == f"together:{session.training.fine_tuned_model}"
    reply = run(deploy.try_model(session, "Printer on fire"))
    assert reply.startswith("echo:")
    assert together_env.chat_bodies()[-1]["model"] == session.training.fine_tuned_model
    entries = current_runs(read_lines(store))
    assert any(e.session_id == session.id and e.backend == "together" for e in entries)


def test_cli_new_train_status_and_deploy(
    store: SessionStore,
    tickets: Tickets,
    together_env: FakeTogetherServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ftwizard.cli import main

    assert main(["new", "--backend", "together", "--name", "cli"]) == 0
    new_id = capsys.readouterr().out.strip().splitlines()[-1]
    created = store.load(store.resolve(new_id.split()[-1]))
    assert created.task.backend is Backend.together
    assert created.task.base_model == "Qwen/Qwen3.5-9B"

    session = session_at_training(store, tickets, backend=Backend.together)
    assert main(["train", session.id, "--json"]) == 2  # a paid job needs --allow-spend
    assert together_env.job_count == 0
    capsys.readouterr()
    together_env.advance_per_poll = 20.0
    assert main(["train", session.id, "--allow-spend", "--json", "--interval", "0"]) == 0
    captured = capsys.readouterr()
    assert "Together's estimate" in captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[0]["event"] == "job" and lines[-1]["event"] == "end"
    assert lines[-1]["status"] == "succeeded"
    assert main(["status", session.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert main(["deploy", session.id, "--json"]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert deployed["model"].startswith("together:ftwizard-test/")
    assert deployed["test_reply"].startswith("echo:")
    assert together_env.job_count == 1
