""" "Import an OpenAI fine-tune" on the welcome screen, against the OpenAI fake."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from ftwizard.app import make_app
from ftwizard.screens.welcome import WelcomeScreen
from ftwizard.session import Backend
from ftwizard.store import SessionStore
from tests.waiting import until

SIZE = (120, 40)


async def test_import_opens_the_new_session(
    store: SessionStore, finished_job: dict[str, Any]
) -> None:
    job = finished_job["job"]
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WelcomeScreen)
        app.screen.query_one("#import-job-id", Input).value = job.id
        await pilot.click("#import-openai")
        await until(pilot, lambda: app.session is not None, "the imported session opening")
        assert app.session is not None
        assert app.session.task.backend is Backend.fireworks
        assert app.session.evaluation.compare_model == f"openai:{job.fine_tuned_model}"


async def test_unknown_job_says_so_and_creates_nothing(
    store: SessionStore, openai_env: None
) -> None:
    app = make_app(store=store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#import-job-id", Input).value = "ftjob-missing"
        await pilot.click("#import-openai")
        await until(
            pilot,
            lambda: not app.screen.query_one("#import-openai").disabled,
            "the import button enabled",
        )
        assert isinstance(app.screen, WelcomeScreen)
        assert store.list()[0] == []
