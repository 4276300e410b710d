"""The training and deploy screens on the local backend, for real: start the tiny model's SFT
from the screen, quit, reopen the session in a fresh app that re-attaches to the running worker,
follow it to the end, deploy, and ask the served model a ticket."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Button, Input, Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.deploy import engine as deploy
from ftwizard.screens.deploy import DeployScreen
from ftwizard.screens.training.screen import TrainingScreen
from ftwizard.store import SessionStore
from ftwizard.training import follow as training_follow
from ftwizard.training import plan as training_plan
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training

SIZE = (120, 60)
TRAINING_WAIT_S = 400


@pytest.fixture(autouse=True)
def manual_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingScreen, "POLL_S", 3600.0)


async def _settle(app: FtwizardApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()  # a press is handled (and its worker started) on the next turn
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_local_training_from_the_screen_survives_a_restart_and_deploys(
    store: SessionStore, tickets: Tickets, tiny_model: Path
) -> None:
    session = session_at_training(store, tickets)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        screen.query_one("#hp-max_steps", Input).value = "60"
        await pilot.pause()
        screen.query_one("#start-training", Button).press()
        await _settle(app, pilot)
        assert app.session is not None
        job_id = training_follow.job_id_of(app.session)
        assert job_id is not None and job_id == app.session.training.run_dir
    # The app quit while the worker trains; a fresh app opens the same session.
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert app.session is not None and training_follow.job_id_of(app.session) == job_id
        deadline = time.monotonic() + TRAINING_WAIT_S
        while app.session.training.status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, "training did not finish in time"
            await pilot.pause(0.5)
            screen.poll_now()
            await _settle(app, pilot)
        assert app.session.training.status == "succeeded", app.session.training.error
        losses = screen.chart_series["loss-chart"]["train"][1]
        assert len(losses) >= 3 and losses[-1] < losses[0]
        assert screen.chart_series["loss-chart"].get("valid")
        assert "Job succeeded" in str(screen.query_one("#training-summary", Static).render())
        screen.query_one("#next", Button).press()
        for _ in range(40):
            if isinstance(app.screen, DeployScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, DeployScreen)
        await pilot.pause()
        try:
            app.screen.query_one("#deploy-model", Button).press()
            await _settle(app, pilot)
            deployment = app.session.deployment
            assert deployment.model == "openai:ftwizard-tuned", app.screen.query_one(
                "#deploy-status", Static
            ).render()
            assert deployment.base_url and deployment.base_url.startswith("http://127.0.0.1:")
            ticket = tickets.valid_rows()[3]["messages"]
            app.screen.query_one("#deploy-prompt", Input).value = ticket[-2]["content"]
            app.screen.query_one("#deploy-send", Button).press()
            await _settle(app, pilot)
            assert deployment.test_reply == ticket[-1]["content"]
            assert app.screen.query_one("#next", Button).disabled is False
        finally:
            deploy.stop_local_server(app.session)
    runs = [p for p in training_plan.runs_root(session, store).iterdir() if p.is_dir()]
    assert runs == [Path(job_id)]
