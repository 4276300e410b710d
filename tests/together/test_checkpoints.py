"""Together's checkpoints through its checkpoints API: priced first, the final model scored,
the intermediate ones listed as JOB:STEP with why they cannot be called."""

from __future__ import annotations

import json

import pytest

from ftwizard.cli import main
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from tests.fakes.together_server import FakeTogetherServer
from tests.tiny_local import Tickets
from tests.training.sessions import run, session_at_training


def test_together_checkpoints_are_priced_and_only_the_served_one_is_scored(
    store: SessionStore,
    tickets: Tickets,
    together_env: FakeTogetherServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = session_at_training(store, tickets, backend=Backend.together)
    training_plan.set_hyperparameter(session, "n_epochs", "3")
    training_plan.confirm_training(session, store)
    provider = training_jobs.training_provider(session, store)
    job_id, _ = run(
        training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider)
    )
    together_env.advance(10_000)
    run(training_follow.poll(session, store, provider))
    assert session.training.status == "succeeded" and len(session.training.checkpoints) == 3
    calls_before = len(together_env.chat_bodies())
    # A paid run: the price first, and nothing without --allow-spend.
    assert main(["checkpoints", session.id, "--eval", "--rows", "5"]) == 2
    err = capsys.readouterr().err
    assert "5 calls to together:" in err and "--allow-spend" in err
    assert len(together_env.chat_bodies()) == calls_before
    assert (
        main(["checkpoints", session.id, "--eval", "--rows", "5", "--allow-spend", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    rows = data["checkpoints"]
    assert [r["model"] for r in rows[:2]] == [f"{job_id}:{r['step']}" for r in rows[:2]]
    assert all(r["score"] is None and "from_checkpoint" in r["error"] for r in rows[:2])
    assert rows[2]["model"] == f"together:{session.training.fine_tuned_model}"
    assert rows[2]["score"] is not None and rows[2]["n"] == 5
    # The deployment names the hosted model it serves; the ledger's run entry carries it.
    assert main(["deploy", session.id, "--json"]) == 0
    deployed = json.loads(capsys.readouterr().out)
    assert deployed["identity"]["model"] == rows[2]["model"]
