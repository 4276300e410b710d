"""The training step's core on every backend: plan, guards, start once, re-attach, poll.

OpenAI runs against the fake API on 127.0.0.1 with its simulated clock; local runs the real
worker on the tiny model (CPU). Every test that can create jobs counts them.
"""

from __future__ import annotations

import asyncio

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.workbench import spec_digest
from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import JobState
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from ftwizard.training import results as training_results
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer
from tests.tiny_local import Tickets
from tests.training.sessions import TODAY, openai_provider, run, session_at_training

# -- plan, hyperparameters and guards --------------------------------------------------------


def test_the_local_plan_is_free_with_a_measured_time_and_editable_settings(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets)
    plan = training_plan.plan_training(session, store)
    assert plan.train_examples == 480 and plan.valid_examples == 120
    assert plan.estimate.usd == 0.0
    assert (
        plan.estimate.seconds is not None and plan.estimate.seconds > training_plan.LOCAL_STARTUP_S
    )
    assert "tokens/s measured" in plan.estimate.time_basis
    # builtin-tiny's own defaults (random weights want a high learning rate).
    assert plan.hyperparameters["learning_rate"] == 5e-3
    assert training_plan.set_hyperparameter(session, "epochs", "2")
    assert session.training.hyperparameters == {"epochs": 2}
    assert training_plan.estimate_training(session).epochs == 2
    with pytest.raises(InputError) as err:
        training_plan.set_hyperparameter(session, "lora_dropout", "1.5")
    assert err.value.field == "lora_dropout"
    with pytest.raises(InputError):
        training_plan.set_hyperparameter(session, "n_epochs", "3")  # an OpenAI setting
    # Back to the default: nothing recorded as changed.
    assert training_plan.set_hyperparameter(session, "epochs", "6")
    assert session.training.hyperparameters == {}


def test_the_openai_plan_prices_tokens_and_warns_of_the_cutoff(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    plan = training_plan.plan_training(session, store, today=TODAY)
    assert plan.hyperparameters["n_epochs"] == "auto"
    assert plan.estimate.usd is not None and plan.estimate.usd > 0
    assert "3 assumed" in plan.estimate.basis
    assert any("2027-01-06" in n for n in plan.notices)
    training_plan.set_hyperparameter(session, "n_epochs", "2")
    cheaper = training_plan.estimate_training(session)
    assert cheaper.usd is not None and cheaper.usd < plan.estimate.usd
    with pytest.raises(InputError) as err:
        training_plan.set_hyperparameter(session, "batch_size", "1000")
    assert err.value.field == "batch_size"


def test_no_training_without_a_dry_run_unless_a_reason_is_recorded(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets, verdict=None)
    assert "dry run" in (training_plan.training_blocker(session, store) or "")
    with pytest.raises(training_plan.TrainingBlocked):
        training_plan.confirm_training(session, store)
    session.dryrun.verdict = "WARNING"
    session.dryrun.grader_digest = spec_digest(session.grader.spec_text or "")
    session.dryrun.data_file = session.dataset.result.training_file  # type: ignore[union-attr]
    assert "acknowledge" in (training_plan.training_blocker(session, store) or "")
    with pytest.raises(InputError):
        training_plan.record_dryrun_override(session, "  ")
    training_plan.record_dryrun_override(session, "baseline only; SFT teaches the labels")
    assert training_plan.training_blocker(session, store) is None
    training_plan.confirm_training(session, store)
    assert session.training.confirmed_at is not None


# -- OpenAI: spend guard, kill-and-resume, polling ------------------------------------------


def test_nothing_is_created_without_confirmation_and_permission_to_spend(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    provider = openai_provider(session, store)
    with pytest.raises(training_plan.TrainingBlocked):
        run(training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider))
    training_plan.confirm_training(session, store)
    with pytest.raises(training_plan.SpendNotAllowed):
        run(training_jobs.start_or_attach(session, store, allow_spend=False, provider=provider))
    assert openai_env.tuning.job_count == 0
    assert store.load(session.id).training.intent is None
    # An intent saved by a process that had the permission does not lend it to another.
    training_jobs.prepare_attempt(session, store, allow_spend=True)
    with pytest.raises(training_plan.SpendNotAllowed):
        run(training_jobs.start_or_attach(session, store, allow_spend=False, provider=provider))
    assert openai_env.tuning.job_count == 0


def test_a_crash_between_create_and_record_reattaches_to_the_same_job(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    provider = openai_provider(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    # The intent is on disk before anything remote exists.
    assert store.load(session.id).training.intent.key == key  # type: ignore[union-attr]
    spec = training_jobs.build_spec(session, store, key)
    job_id, reattached = run(training_jobs.create_or_find_job(provider, spec))
    assert not reattached and openai_env.tuning.job_count == 1
    # The process dies here: the id never reaches the session file.
    resumed = store.load(session.id)
    assert resumed.training.intent is not None and resumed.training.intent.job_id is None
    again, was_there = run(
        training_jobs.start_or_attach(
            resumed, store, allow_spend=True, provider=openai_provider(resumed, store)
        )
    )
    assert (again, was_there) == (job_id, True)
    assert openai_env.tuning.job_count == 1
    assert store.load(session.id).training.intent.job_id == job_id  # type: ignore[union-attr]
    # And once more after the id was recorded: still the same job.
    third = store.load(session.id)
    assert run(
        training_jobs.start_or_attach(
            third, store, allow_spend=True, provider=openai_provider(third, store)
        )
    ) == (job_id, True)
    assert openai_env.tuning.job_count == 1


def test_polling_records_metrics_events_and_checkpoints_once_each(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    provider = openai_provider(session, store)
    job_id, _ = run(
        training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider)
    )
    tuning = openai_env.tuning
    tuning.advance(45)  # validating 10 s + queued 10 s, then 2 steps of 10 s
    run(training_follow.poll(session, store, provider))
    assert session.training.status == JobState.running.value
    assert [m["step"] for m in session.training.metrics] == [1, 2]
    run(training_follow.poll(session, store, provider))
    assert [m["step"] for m in session.training.metrics] == [1, 2]  # nothing twice
    tuning.run_to_end()
    status = run(training_follow.poll(session, store, provider))
    assert status.status.state is JobState.succeeded
    saved = store.load(session.id)
    assert [m["step"] for m in saved.training.metrics] == [1, 2, 3, 4, 5, 6]
    assert saved.training.metrics[0]["valid_loss"] is not None
    assert any("successfully completed" in e["message"] for e in saved.training.events)
    assert len(saved.training.checkpoints) == 3
    assert saved.training.fine_tuned_model and saved.training.fine_tuned_model.startswith("ft:")
    assert saved.training.cost_usd is not None and saved.training.trained_tokens
    best = training_results.best_checkpoint_of(saved)
    assert best is not None and best[1] == "full_valid_loss" and best[0].step == 6
    assert training_results.training_problem(saved) is None
    summary = training_results.training_summary(saved)
    assert summary["job_id"] == job_id and summary["step"] == 6
    # Timed on the provider's clock: created at 0 s, six 10 s steps after 20 s of set-up.
    assert summary["duration_s"] == 80
    assert tuning.job_count == 1


def test_pause_resume_and_cancel_reach_the_job(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    provider = openai_provider(session, store)
    run(training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider))
    openai_env.tuning.advance(30)
    assert run(training_follow.pause_job(session, store, provider)).state is JobState.paused
    assert store.load(session.id).training.status == "paused"
    assert run(training_follow.resume_job(session, store, provider)).state is JobState.running
    assert run(training_follow.cancel_job(session, store, provider)).state is JobState.cancelled
    assert "cancelled" in (training_results.training_problem(session) or "")
    training_jobs.new_attempt(session)
    assert session.training.intent is None and session.training.metrics == []


# -- Vertex and the command line -------------------------------------------------------------


def test_vertex_trains_through_the_same_loop_and_deploys_its_endpoint(
    store: SessionStore, tickets: Tickets, vertex_env: FakeVertexServer
) -> None:
    from ftwizard.deploy import engine as deploy
    from ftwizard.providers.vertex.training import VertexTrainingProvider

    session = session_at_training(store, tickets, backend=Backend.vertex, convert=True)
    training_plan.confirm_training(session, store)

    async def steps() -> None:
        provider = VertexTrainingProvider(storage_base_url=vertex_env.base_url, bucket="ftw-test")
        try:
            job_id, reattached = await training_jobs.start_or_attach(
                session, store, allow_spend=True, provider=provider
            )
            assert not reattached
            resumed = store.load(session.id)
            again = await training_jobs.start_or_attach(
                resumed, store, allow_spend=True, provider=provider
            )
            assert again == (job_id, True)
            vertex_env.tuning.advance(100_000)
            update = await training_follow.poll(resumed, store, provider)
            assert update.status.state is JobState.succeeded
        finally:
            await training_jobs.close_training_provider(provider)

    asyncio.run(steps())
    resumed = store.load(session.id)
    assert resumed.training.endpoint and "/endpoints/" in resumed.training.endpoint
    assert training_results.training_problem(resumed) is None
    section = deploy.deploy(resumed, store)
    assert section.model == f"vertex:{resumed.training.endpoint}"
    assert vertex_env.tuning.job_count == 1


def test_cli_train_refuses_a_paid_job_without_allow_spend_and_status_reports(
    store: SessionStore,
    tickets: Tickets,
    openai_env: FakeOpenAIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from ftwizard.cli import main

    session = session_at_training(store, tickets, backend=Backend.openai)
    assert main(["train", session.id, "--json"]) == 2
    assert "--allow-spend" in capsys.readouterr().err
    assert openai_env.tuning.job_count == 0
    assert main(["status", session.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] is None
    # Started elsewhere (the screen); status re-attaches by the key and reports the metrics.
    training_plan.confirm_training(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    run(
        training_jobs.create_or_find_job(
            openai_provider(session, store), training_jobs.build_spec(session, store, key)
        )
    )
    openai_env.tuning.advance(45)
    assert main(["status", session.id, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["status"] == "running" and status["step"] == 2
    assert status["job_id"] is not None and "train_loss" in status["latest"]
    assert openai_env.tuning.job_count == 1


def test_a_crashed_local_worker_is_a_failed_job_with_its_log_tail(
    store: SessionStore, tickets: Tickets
) -> None:
    import subprocess
    import sys
    import time

    from ftwizard.providers.local.job import WorkerRecord
    from ftwizard.training.local import LocalTrainingProvider

    session = session_at_training(store, tickets)
    config = training_jobs.build_local_config(session, store)
    run_dir = training_plan.runs_root(session, store) / "crashed-0001"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(
        config.model_copy(update={"run_dir": run_dir}).model_dump_json()
    )
    # A worker that died without a final event (kill -9, out of memory): its pid is gone.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = WorkerRecord(pid=dead.pid, command=["worker"], started_at=time.time())
    (run_dir / "worker.json").write_text(record.model_dump_json())
    (run_dir / "worker.log").write_text("loading model\nKilled: out of memory\n")
    provider = LocalTrainingProvider(training_plan.runs_root(session, store))
    assert run(provider.find_job("crashed-0001")) == str(run_dir)
    status = run(provider.get_job(str(run_dir)))
    assert status.state is JobState.failed and status.raw_status == "crashed"
    assert status.error is not None and "Killed: out of memory" in status.error
    with pytest.raises(ProviderError):
        run(provider.pause(str(run_dir)))


def test_follow_rides_out_network_faults_and_stops_when_the_job_ends(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    from ftwizard.providers.openai.training import OpenAITrainingProvider
    from ftwizard.providers.retry import RetryPolicy

    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    no_retry = RetryPolicy(max_attempts=1, initial_delay_s=0.0, max_delay_s=0.0, jitter=0.0)
    provider = OpenAITrainingProvider(today=lambda: TODAY, retry=no_retry)
    errors: list[str] = []
    states: list[str] = []

    async def sim_sleep(seconds: float) -> None:
        openai_env.tuning.advance(seconds)  # waiting moves the fake's clock, not ours

    async def steps() -> JobState:
        try:
            await training_jobs.start_or_attach(session, store, allow_spend=True, provider=provider)
            openai_env.fail_next(503, times=2)
            status = await training_follow.follow(
                session,
                store,
                provider,
                interval_s=15,
                sleep=sim_sleep,
                on_update=lambda u: states.append(u.status.state.value),
                on_error=lambda e: errors.append(str(e)),
            )
            return status.state
        finally:
            await provider.aclose()

    assert run(steps()) is JobState.succeeded
    assert len(errors) == 2 and states[-1] == "succeeded"
    assert [m["step"] for m in store.load(session.id).training.metrics] == [1, 2, 3, 4, 5, 6]
    assert openai_env.tuning.job_count == 1
    # The finished run is in the ledger practitioners keep.
    from ftwizard.ledger.store import current_runs, read_lines

    runs = current_runs(read_lines(store))
    assert [r.session_id for r in runs] == [session.id]
