"""How the welcome and task screens look (SVG snapshots; update with --snapshot-update)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ftwizard import session as session_module
from ftwizard.app import make_app
from ftwizard.flow import start_session
from ftwizard.session import Method, SessionStore

SIZE = (120, 40)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Sessions stamped by a clock that ticks a minute per reading from a fixed start, in UTC,
    so the session table renders the same rows in the same order every time."""
    ticks = itertools.count()
    start = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    monkeypatch.setattr(session_module, "_now", lambda: start + timedelta(minutes=next(ticks)))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_welcome_screen(snap_compare, store: SessionStore, frozen_clock: None) -> None:
    start_session(store, "support bot distillation", method=Method.sft)
    start_session(store, "rft math grader", method=Method.rft)

    async def loaded(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(store=store), terminal_size=SIZE, run_before=loaded)


def test_task_screen(snap_compare, store: SessionStore, frozen_clock: None) -> None:
    session = start_session(store, "support bot distillation")
    assert snap_compare(make_app(store=store, session_id=session.id), terminal_size=SIZE)
