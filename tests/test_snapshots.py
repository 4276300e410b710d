"""How the welcome and task screens look (SVG snapshots; update with --snapshot-update)."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from textual.widgets import Input

from ftwizard import session as session_module
from ftwizard import store as store_module
from ftwizard.app import make_app
from ftwizard.flow import start_session
from ftwizard.session import Backend, Method, StepId
from ftwizard.store import SessionStore
from tests.steps import confirm_grader, session_with_data, walked_session
from tests.waiting import confirm

SIZE = (120, 40)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Sessions stamped by a clock that ticks a minute per reading from a fixed start, in UTC,
    so the session table renders the same rows in the same order every time."""
    ticks = itertools.count()
    start = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

    def clock() -> datetime:
        return start + timedelta(minutes=next(ticks))

    # The store stamps saves and the session stamps its journal; both read this one clock.
    monkeypatch.setattr(session_module, "now_utc", clock)
    monkeypatch.setattr(store_module, "now_utc", clock)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot, *tables: str) -> None:
    """Wait until background work is done, the named tables have rows, and the screen stops
    changing (tables size their columns, a pressed button's highlight fades): on a loaded
    machine that takes longer than any fixed pause."""
    await pilot.app.workers.wait_for_complete()
    # A blinking cursor makes the picture depend on the moment it is taken.
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False
    for table in tables:
        for _ in range(100):
            if pilot.app.screen.query_one(f"#{table}").row_count:
                break
            await pilot.pause(0.05)
    previous = None
    for _ in range(30):
        await pilot.pause(0.25)
        current = re.sub(r"terminal-\d+", "", pilot.app.export_screenshot())
        if current == previous:
            break
        previous = current


def test_welcome_screen(snap_compare, store: SessionStore, frozen_clock: None) -> None:
    start_session(store, "support bot distillation", method=Method.sft)
    start_session(store, "rft math grader", method=Method.rft)

    async def loaded(pilot) -> None:
        await settle(pilot, "sessions")

    assert snap_compare(make_app(store=store), terminal_size=SIZE, run_before=loaded)


def test_task_screen(snap_compare, store: SessionStore, frozen_clock: None) -> None:
    session = start_session(store, "support bot distillation")
    assert snap_compare(make_app(store=store, session_id=session.id), terminal_size=SIZE)


def test_dataset_screen_after_a_check(
    snap_compare, store: SessionStore, frozen_clock: None, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Is {n} even?"},
                    {"role": "assistant", "content": "yes" if n % 2 == 0 else "no"},
                ]
            }
        )
        for n in range(20)
    ]
    rows[5] = '{"messages": [broken'
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    session = start_session(store, "even or odd")
    session.step = StepId.dataset
    store.save(session)

    async def checked(pilot) -> None:
        pilot.app.screen.query_one("#train-path").value = "train.jsonl"
        await pilot.click("#check-dataset")
        await settle(pilot, "problems")

    app = make_app(store=store, session_id=session.id)
    assert snap_compare(app, terminal_size=(120, 50), run_before=checked)


def test_grader_screen_after_a_test(
    snap_compare, store: SessionStore, frozen_clock: None, tmp_path
) -> None:
    session = session_with_data(store, tmp_path, backend=Backend.openai)

    async def tested(pilot) -> None:
        await pilot.click("#grader-style-builtin")
        await pilot.pause()
        pilot.app.screen.query_one("#grader-test").press()
        await settle(pilot, "grader-results")

    app = make_app(store=store, session_id=session.id)
    assert snap_compare(app, terminal_size=(120, 60), run_before=tested)


def test_dry_run_screen_with_a_no_go(
    snap_compare, store: SessionStore, frozen_clock: None, tmp_path, openai_env
) -> None:
    openai_env.reply_fn = lambda body: "I do not know."
    session = session_with_data(store, tmp_path, backend=Backend.openai, method=Method.rft)
    confirm_grader(store, session)
    session.dryrun.samples = 10
    store.save(session)

    async def ran(pilot) -> None:
        pilot.app.screen.query_one("#dryrun-run").press()
        await confirm(pilot)
        await settle(pilot, "dryrun-lowest", "dryrun-metrics")

    app = make_app(store=store, session_id=session.id, allow_spend=True)
    assert snap_compare(app, terminal_size=(120, 70), run_before=ran)


def test_evaluate_screen_after_a_run(
    snap_compare, store: SessionStore, frozen_clock: None, tmp_path, monkeypatch
) -> None:
    """The evaluate step showing a recorded grader comparison and blind A/B (real figures,
    computed from scripted answers and a scripted fair judge), scrolled to the A/B."""
    from tests.test_ledger import finished_session

    monkeypatch.chdir(tmp_path)
    session = finished_session(
        store, tmp_path, "eval bot", finished=datetime(2026, 11, 2, 9, tzinfo=UTC)
    )
    # Relative, so the screen shows the same path wherever the test runs.
    session.evaluation.held_out_file = "heldout.jsonl"
    store.save(session)

    async def scrolled(pilot) -> None:
        await settle(pilot)
        pilot.app.screen.query_one("#ab-summary").scroll_visible(animate=False, top=True)
        await pilot.pause(0.3)

    app = make_app(store=store, session_id=session.id)
    assert snap_compare(app, terminal_size=(120, 50), run_before=scrolled)


def test_training_confirmation_screen(
    snap_compare, store: SessionStore, frozen_clock: None, tickets
) -> None:
    """The training step before the job: plan, editable settings, estimate, Start."""
    from tests.training.sessions import session_at_training

    session = session_at_training(store, tickets, name="ticket triage")

    async def shown(pilot) -> None:
        await settle(pilot)

    app = make_app(store=store, session_id=session.id)
    assert snap_compare(app, terminal_size=(120, 50), run_before=shown)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("step", list(StepId), ids=lambda s: s.value)
def test_every_step_at_the_smallest_and_a_common_size(
    snap_compare, store: SessionStore, frozen_clock: None, tmp_path, monkeypatch, step, size
) -> None:
    """Each step of a session that did them all, as it opens: at 80x24 the sidebar shows
    step marks and wide rows stack; nothing is cut off at either size."""
    monkeypatch.chdir(tmp_path)
    session = walked_session(store, tmp_path, step)

    async def shown(pilot) -> None:
        await settle(pilot)

    app = make_app(store=store, session_id=session.id)
    assert snap_compare(app, terminal_size=size, run_before=shown)


def test_welcome_screen_at_80x24(snap_compare, store: SessionStore, frozen_clock: None) -> None:
    """Resume and Delete stay on screen at 80x24."""
    start_session(store, "support bot distillation", method=Method.sft)

    async def loaded(pilot) -> None:
        await settle(pilot, "sessions")

    assert snap_compare(make_app(store=store), terminal_size=(80, 24), run_before=loaded)
