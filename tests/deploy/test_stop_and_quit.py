"""Stopping the local server (screen button, ``ftwizard deploy ID --stop``) and what quitting
prints: how to resume, and which local servers still run."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from ftwizard.app import FtwizardApp, make_app
from ftwizard.cli import main
from ftwizard.deploy import engine as deploy
from ftwizard.flow import start_session
from ftwizard.screens.deploy import DeployScreen
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from tests.deploy.servers import standing_server
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training


def test_deploy_stop_stops_the_sessions_server_and_says_so(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    session = start_session(store, "served")
    with standing_server(store, session) as url:
        assert deploy.local_server_alive(store.load(session.id))
        assert main(["deploy", session.id, "--stop"]) == 0
        assert capsys.readouterr().out.strip() == (
            f"stopped the local server of session {session.id} ({url})"
        )
        assert not deploy.local_server_alive(store.load(session.id))
        # Nothing left to stop is no error.
        assert main(["deploy", session.id, "--stop"]) == 0
        assert "no local server is running" in capsys.readouterr().out


def test_deploy_stop_of_an_unknown_session_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "missing-0000", "--stop"]) == 2
    assert "missing-0000" in capsys.readouterr().err


def test_ctrl_q_prints_how_to_resume_and_the_servers_left_running(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session = start_session(store, "quitting")
    other = start_session(store, "serving")
    original_run = FtwizardApp.run

    async def quit_at_once(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await pilot.press("ctrl+q")

    def headless_run(self: FtwizardApp, **_: Any) -> Any:
        return original_run(self, headless=True, size=(80, 24), auto_pilot=quit_at_once)

    monkeypatch.setattr(FtwizardApp, "run", headless_run)
    with standing_server(store, other) as url:
        assert main(["resume", session.id]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert lines[-3:] == [
        f"saved; resume with ftwizard resume {session.id}",
        "local servers still running:",
        f"  {url} (session {other.id}); stop it with: ftwizard deploy {other.id} --stop",
    ]
    assert store.load(session.id).step is StepId.task  # saved where it stood


async def test_quitting_with_no_server_running_only_says_how_to_resume(
    store: SessionStore,
) -> None:
    session = start_session(store, "quiet")
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
    assert app.exit_note == [f"saved; resume with ftwizard resume {session.id}"]


async def test_the_stop_button_stops_the_local_server(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets)
    session.step = StepId.deploy
    store.save(session)
    with standing_server(store, session):
        app = make_app(store=store, session_id=session.id)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, DeployScreen)
            stop = app.screen.query_one("#deploy-stop", Button)
            assert stop.display and not stop.disabled
            stop.press()
            screen = app.screen
            for _ in range(200):  # the stop runs in a worker thread
                await pilot.pause(0.05)
                if screen.job_outcome("server-stop") is not None:
                    break
            assert screen.job_outcome("server-stop") == "done"
            assert app.session is not None and not deploy.local_server_alive(app.session)
            assert stop.disabled
            status = str(app.screen.query_one("#deploy-status").render())
            assert "not running" in str(app.screen.query_one("#deploy-info").render()), status
        journal = [e.action for e in store.load(session.id).journal if e.screen == "deploy"]
        assert journal[-2:] == [{"press": "deploy-stop"}, {"outcome": {"server-stop": "done"}}]
