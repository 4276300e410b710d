"""The deploy screen's export panel, driven by keys at 80x24 and at a larger size."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input, Select, Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.screens.deploy import DeployScreen
from ftwizard.screens.deploy_export import ExportPanel
from ftwizard.session import Session, StepId
from ftwizard.store import SessionStore
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.slow


async def _on_deploy(app: FtwizardApp, pilot) -> DeployScreen:  # type: ignore[no-untyped-def]
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, DeployScreen)
    return screen


async def _press_by_key(app: FtwizardApp, pilot, selector: str) -> None:  # type: ignore[no-untyped-def]
    button = app.screen.query_one(selector, Button)
    button.focus()
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def _status(app: FtwizardApp) -> str:
    return str(app.screen.query_one("#export-status", Static).render())


@pytest.mark.parametrize("size", [(80, 24), (120, 50)])
async def test_export_vllm_scripts_from_the_deploy_screen(
    store: SessionStore, trained_session: Session, size: tuple[int, int]
) -> None:
    trained_session.step = StepId.deploy
    store.save(trained_session)
    app = make_app(store=store, session_id=trained_session.id)
    async with app.run_test(size=size) as pilot:
        screen = await _on_deploy(app, pilot)
        # Where llama.cpp's quantizer is absent, the panel says so before anyone picks Q4_K_M.
        assert "Q4_K_M needs llama.cpp's quantizer" in _status(app)
        screen.query_one("#export-target", Select).value = "vllm"
        await _press_by_key(app, pilot, "#export-run")
        status = _status(app)
        assert "Exported vllm to" in status and "Run: vllm serve" in status
        assert "--max-lora-rank 16" in status
        assert screen.query_one(ExportPanel).last_result.target == "vllm"
        assert app.session is not None
        assert {"press": "export-run"} in [e.action for e in app.session.journal]


async def test_a_running_server_becomes_the_deployment_from_the_screen(
    store: SessionStore, trained_session: Session
) -> None:
    trained_session.step = StepId.deploy
    store.save(trained_session)
    with FakeOpenAIServer(api_key=None, models=["ftwizard-tuned"]) as server:
        server.route("GET", "/health", lambda request, params: FakeResponse(200, ""))
        app = make_app(store=store, session_id=trained_session.id)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await _on_deploy(app, pilot)
            screen.query_one("#deploy-server", Input).value = server.v1_url
            await _press_by_key(app, pilot, "#deploy-server-use")
            assert app.session is not None
            deployment = app.session.deployment
            assert deployment.model == "openai:ftwizard-tuned"
            assert deployment.base_url == server.v1_url
            assert deployment.test_reply and deployment.test_reply.startswith("echo: ")
            assert "Using openai:ftwizard-tuned" in _status(app)
            assert not screen.query_one("#next", Button).disabled
    assert store.load(trained_session.id).deployment.model == "openai:ftwizard-tuned"
