"""The training screen on Together: its estimate is shown before the job, and honoured."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.screens.training.screen import TrainingScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from tests.fakes.together_server import FakeTogetherServer
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training
from tests.waiting import asked

SIZE = (120, 60)


@pytest.fixture(autouse=True)
def manual_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainingScreen, "POLL_S", 3600.0)


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_the_confirmation_shows_togethers_estimate_before_the_job(
    store: SessionStore, tickets: Tickets, together_env: FakeTogetherServer
) -> None:
    session = session_at_training(store, tickets, backend=Backend.together)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert not screen.query_one("#pause-training", Button).display  # Together cannot pause
        assert "Together's own price estimate" in _text(app, "#training-plan")
        screen.query_one("#start-training", Button).press()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await asked(pilot)
        question = _text(app, "#confirm-question")
        assert "Together's estimate: $" in question and "training tokens" in question
        assert together_env.job_count == 0  # nothing exists while the user decides
        await pilot.click("#confirm-no")
        await pilot.pause()
        assert "Together's estimate" in _text(app, "#provider-quote")
    assert together_env.job_count == 0


async def test_over_the_account_limit_no_job_is_created(
    store: SessionStore, tickets: Tickets, together_env: FakeTogetherServer
) -> None:
    together_env.user_limit = 0.0
    session = session_at_training(store, tickets, backend=Backend.together)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#start-training", Button).press()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, TrainingScreen)  # no confirmation offered
        assert "will not start it" in _text(app, "#provider-quote")
    assert together_env.job_count == 0
    assert store.load(session.id).training.intent is None
