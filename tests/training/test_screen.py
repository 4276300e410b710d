"""The training and deploy screens as a user drives them, against the OpenAI fake and its clock.

Polls are triggered by the test (the screen's timer is set far out), and the fake's clock only
moves when the test says so: no test waits for simulated time.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from textual.widgets import Button, DataTable, Input, Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.screens.deploy import DeployScreen
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.training.screen import TrainingScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import jobs as training_jobs
from ftwizard.training import plan as training_plan
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training
from tests.view import in_view
from tests.waiting import asked, until

SIZE = (120, 60)


@pytest.fixture(autouse=True)
def manual_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingScreen, "POLL_S", 3600.0)
    monkeypatch.setattr(TrainingScreen, "TODAY", lambda: date(2026, 11, 22))


async def _press(app: FtwizardApp, pilot, selector: str) -> None:  # type: ignore[no-untyped-def]
    app.screen.query_one(selector, Button).press()
    await pilot.pause()


async def _answer(app: FtwizardApp, pilot, yes: bool) -> None:  # type: ignore[no-untyped-def]
    await asked(pilot)
    await _press(app, pilot, "#confirm-yes" if yes else "#confirm-no")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _poll(app: FtwizardApp, pilot) -> None:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, TrainingScreen)
    screen.poll_now()
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_confirm_start_watch_pause_resume_and_cancel(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    tuning = openai_env.tuning
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert "gpt-4.1-mini" in _text(app, "#training-plan")
        assert "GO" in _text(app, "#training-plan")
        assert "Estimated cost $" in _text(app, "#training-estimate")
        epochs = screen.query_one("#hp-n_epochs", Input)
        assert epochs.value == "auto"
        epochs.value = "2"
        await pilot.pause()
        assert app.session is not None
        assert app.session.training.hyperparameters == {"n_epochs": 2}
        screen.query_one("#hp-batch_size", Input).value = "999"
        await pilot.pause()
        assert "batch_size" in _text(app, "#hp-error")
        assert "batch_size" not in app.session.training.hyperparameters

        # Start asks first; saying no creates nothing.
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=False)
        assert tuning.job_count == 0 and app.session.training.intent is None
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=True)
        assert tuning.job_count == 1
        job_id = training_follow.job_id_of(app.session)
        assert job_id is not None
        assert store.load(session.id).training.intent.job_id == job_id  # type: ignore[union-attr]
        assert screen.query_one("#training-live").display

        tuning.advance(45)  # files validated, queued, then two steps
        await _poll(app, pilot)
        assert app.session.training.status == "running"
        assert screen.chart_series["loss-chart"]["train"][0] == [1, 2]
        assert screen.chart_series["loss-chart"]["valid"][0] == [1, 2]
        assert screen.query_one("#training-steps", DataTable).row_count == 2
        assert "step 2/6" in _text(app, "#training-status")
        assert "ETA" in _text(app, "#training-status")

        await _press(app, pilot, "#pause-training")
        await _answer(app, pilot, yes=True)
        assert app.session.training.status == "paused"
        tuning.advance(100)  # a paused job stands still
        await _poll(app, pilot)
        assert [m["step"] for m in app.session.training.metrics] == [1, 2]
        await _press(app, pilot, "#resume-training")
        await _answer(app, pilot, yes=True)
        assert app.session.training.status == "running"

        await _press(app, pilot, "#cancel-training")
        await _answer(app, pilot, yes=False)
        assert app.session.training.status == "running"
        await _press(app, pilot, "#cancel-training")
        await _answer(app, pilot, yes=True)
        assert app.session.training.status == "cancelled"
        assert tuning.jobs[job_id].status == "cancelled"
        assert screen.query_one("#new-attempt", Button).display
        assert screen.query_one("#next", Button).disabled
    assert tuning.job_count == 1
    journal = [e.action for e in store.load(session.id).journal if e.screen == "training"]
    assert {"set": {"hp-n_epochs": "2"}} in journal
    assert {"press": "cancel-training"} in journal
    # The dialog's answer follows each press that asked, as a replay repeats it.
    entries = [(e.screen, e.action) for e in store.load(session.id).journal]
    asked = [i for i, e in enumerate(entries) if e == ("training", {"press": "start-training"})]
    assert [entries[i + 1] for i in asked] == [
        ("confirm", {"press": "confirm-no"}),
        ("confirm", {"press": "confirm-yes"}),
    ]


async def test_a_replay_without_allow_spend_never_creates_a_job(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    app = make_app(store=store, session_id=session.id, allow_spend=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _press(app, pilot, "#start-training")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert app.session is not None and app.session.training.intent is None
    assert openai_env.tuning.job_count == 0


async def test_completion_checkpoints_then_deploy_and_try_the_model(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    openai_env.models = None  # the fine-tuned model's id is callable on the fake
    session = session_at_training(store, tickets, backend=Backend.openai)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=True)
        openai_env.tuning.run_to_end()
        await _poll(app, pilot)
        screen = app.screen
        assert app.session is not None and app.session.training.status == "succeeded"
        # The end of the run is shown, and Enter goes on to deploy.
        nxt = screen.query_one("#next", Button)
        await until(pilot, lambda: app.focused is nxt, "focus on Next when the job ends")
        assert in_view(screen, screen.query_one("#training-status"))
        table = screen.query_one("#training-checkpoints", DataTable)
        assert table.row_count == 3
        marks = [str(table.get_row_at(i)[3]) for i in range(3)]
        assert marks == ["", "", "best"]
        summary = _text(app, "#training-summary")
        assert "Final metrics" in summary and "Best checkpoint by full_valid_loss" in summary
        assert "last one is not always the best" in _text(app, "#training-lesson")
        # Choose the first checkpoint instead of the final model.
        first = str(table.get_row_at(0)[0])
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.training.chosen_checkpoint.endswith("ckpt-step-2")  # type: ignore[union-attr]
        assert "chosen" in str(table.get_row_at(0)[3])
        # The replay's way: move to a row, press the button.
        table.move_cursor(row=1)
        await _press(app, pilot, "#choose-checkpoint")
        assert app.session.training.chosen_checkpoint.endswith("ckpt-step-4")  # type: ignore[union-attr]
        await _press(app, pilot, "#choose-best")
        assert app.session.training.chosen_checkpoint.endswith("ckpt-step-6")  # type: ignore[union-attr]
        assert first.startswith("ftckpt")
        assert not screen.query_one("#next", Button).disabled

        await _press(app, pilot, "#next")
        for _ in range(40):  # the switch happens after the press is handled
            if isinstance(app.screen, DeployScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, DeployScreen)
        assert "ckpt-step-6" in _text(app, "#deploy-results")
        await _press(app, pilot, "#deploy-model")
        await app.workers.wait_for_complete()
        await pilot.pause()
        deployed = app.session.deployment.model
        assert deployed is not None and deployed.startswith("openai:ft:")
        assert deployed in _text(app, "#deploy-info")
        prompt = app.screen.query_one("#deploy-prompt", Input)
        # Deployed: what was deployed is in view and typing goes to the prompt box.
        await until(pilot, lambda: app.focused is prompt, "focus on the prompt box")
        assert in_view(app.screen, app.screen.query_one("#deploy-info"))
        prompt.value = "My invoice is wrong"
        # The system prompt is shown, not added silently: the data's own, in its field.
        system = app.screen.query_one("#deploy-system", Input)
        assert system.value == tickets.valid_rows()[0]["messages"][0]["content"]
        system.value = ""  # the prompt alone
        await pilot.pause()
        shown = _text(app, "#deploy-request")
        snippets = _text(app, "#deploy-snippets")
        await _press(app, pilot, "#deploy-send")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.deployment.test_reply == "echo: My invoice is wrong"
        assert "echo: My invoice is wrong" in _text(app, "#deploy-reply")
        sent = openai_env.chat_bodies()[-1]
        assert sent["messages"] == [{"role": "user", "content": "My invoice is wrong"}]
        body = json.loads(shown[shown.index("{") :])
        assert body == sent  # what the screen showed is what the endpoint got
        assert "curl " in snippets and "client.chat.completions.create(" in snippets
        assert "Bearer $OPENAI_API_KEY" in snippets
    saved = store.load(session.id)
    assert saved.deployment.test_prompt == "My invoice is wrong"
    journal = [e.action for e in saved.journal if e.screen == "training"]
    assert {"set": {"training-checkpoints": first}} in journal
    assert {"press": "choose-checkpoint"} in journal
    deploy_journal = [e.action for e in saved.journal if e.screen == "deploy"]
    assert deploy_journal[-4:] == [
        {"set": {"deploy-system": ""}},
        {"set": {"deploy-prompt": "My invoice is wrong"}},
        {"press": "deploy-send"},
        {"outcome": {"model-call": "done"}},
    ]
    assert openai_env.tuning.job_count == 1


async def test_the_screen_reattaches_to_a_job_whose_id_was_never_recorded(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    provider = training_jobs.training_provider(session, store, today=lambda: date(2026, 11, 22))
    job_id, _ = await training_jobs.create_or_find_job(
        provider, training_jobs.build_spec(session, store, key)
    )
    await training_jobs.close_training_provider(provider)
    # Killed here: the session file has the intent, not the id.
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)
        assert app.session is not None
        assert training_follow.job_id_of(app.session) == job_id
        assert app.screen.query_one("#start-training", Button).disabled
    assert openai_env.tuning.job_count == 1
    assert store.load(session.id).training.intent.job_id == job_id  # type: ignore[union-attr]


async def test_an_intent_whose_job_was_never_created_starts_it_once_with_its_key(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    training_plan.confirm_training(session, store)
    key = training_jobs.prepare_attempt(session, store, allow_spend=True)
    # Killed before the create: the intent is saved, nothing exists remotely.
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        start = app.screen.query_one("#start-training", Button)
        assert not start.disabled
        assert "never created" in _text(app, "#start-hint")
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=True)
        assert app.session is not None and app.session.training.intent is not None
        assert app.session.training.intent.key == key
        assert training_follow.job_id_of(app.session) is not None
    assert openai_env.tuning.job_count == 1


async def test_rft_charts_the_reward(
    store: SessionStore,
    tickets: Tickets,
    openai_env: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ftwizard.session import Method

    # o4-mini, the RFT base, shut down on 2026-10-23: the job is started on a day before.
    monkeypatch.setattr(TrainingScreen, "TODAY", lambda: date(2026, 10, 1))
    session = session_at_training(
        store, tickets, backend=Backend.openai, method=Method.rft, convert=True
    )
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert screen.query_one("#reward-chart").display
        assert screen.query_one("#hp-compute_multiplier", Input).value == "auto"
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=True)
        openai_env.tuning.advance(55)
        await _poll(app, pilot)
        steps, rewards = screen.chart_series["reward-chart"]["train"]
        assert steps == [1, 2, 3] and rewards == sorted(rewards)
        assert screen.chart_series["reward-chart"]["valid"][0] == [1, 2, 3]
        assert screen.chart_series["loss-chart"] == {}
    job = next(iter(openai_env.tuning.jobs.values()))
    assert job.body["method"]["reinforcement"]["grader"]["type"] == "string_check"


async def test_vertex_trains_through_the_same_screen(
    store: SessionStore,
    tickets: Tickets,
    vertex_env: FakeVertexServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # google-cloud-storage reads the emulator host itself; the bucket comes from the env.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", vertex_env.base_url)
    monkeypatch.setenv("FTWIZARD_GCS_BUCKET", "ftw-screen-test")
    session = session_at_training(store, tickets, backend=Backend.vertex, convert=True)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert not screen.query_one("#pause-training", Button).display  # Vertex cannot pause
        assert screen.query_one("#hp-adapter_size", Input).value == ""
        await _press(app, pilot, "#start-training")
        await _answer(app, pilot, yes=True)
        assert app.session is not None
        assert training_follow.job_id_of(app.session) is not None, _text(app, "#training-status")
        # The poll the start triggered must end first: a poll still in flight when the clock
        # moves would read the old state, and the next poll_now would be skipped behind it.
        await app.workers.wait_for_complete()
        await pilot.pause()
        vertex_env.tuning.advance(100_000)
        await _poll(app, pilot)
        assert app.session.training.status == "succeeded", _text(app, "#training-status")
        assert "/endpoints/" in _text(app, "#chosen-model")
    assert vertex_env.tuning.job_count == 1
