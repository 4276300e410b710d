"""Creating a hosted training job without its key fails at once, naming the variable and how
to set it, before any price is asked of the provider or any question of the user."""

from __future__ import annotations

import pytest
from textual.widgets import Button

from ftwizard.app import make_app
from ftwizard.cli import main
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training


def test_cli_train_on_together_without_the_key_names_it(
    store: SessionStore, tickets: Tickets, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets, backend=Backend.together)
    code = main(["train", session.id, "--allow-spend"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TOGETHER_API_KEY is not set" in err and "export TOGETHER_API_KEY=" in err
    assert store.load(session.id).training.intent is None  # nothing was started


async def test_the_wizard_names_the_fireworks_account_before_the_confirmation(
    store: SessionStore, tickets: Tickets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-key-for-a-test-0000")
    session = session_at_training(store, tickets, backend=Backend.fireworks)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.pause()
        app.screen.query_one("#start-training", Button).press()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        messages = [str(n.message) for n in app._notifications]
        assert any("FIREWORKS_ACCOUNT_ID is not set" in m for m in messages), messages
    assert store.load(session.id).training.intent is None
