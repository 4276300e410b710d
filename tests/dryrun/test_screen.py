"""The dry-run step as a user drives it: run, read the verdict, acknowledge or override."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Static, Switch

from ftwizard.app import FtwizardApp, make_app
from ftwizard.dryrun.session import dryrun_problem
from ftwizard.screens.dryrun.screen import DryRunScreen
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.steps import EXACT_GRADER, confirm_grader, session_with_data
from tests.view import in_view
from tests.waiting import asked, confirm, step_opened, until

SIZE = (120, 60)
EXACT = EXACT_GRADER


def _session_at_dryrun(
    store: SessionStore,
    tmp_path: Path,
    *,
    backend: Backend,
    method: Method,
    k: int | None = 1,
) -> str:
    """A session whose task, dataset and grader steps are done."""
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Say the word number {i}."},
                {"role": "assistant", "content": f"word{i}"},
            ]
        }
        for i in range(30)
    ]
    session = session_with_data(store, tmp_path, backend=backend, method=method, rows=rows)
    confirm_grader(store, session)
    session.dryrun.samples = 12
    session.dryrun.samples_per_prompt = k
    store.save(session)
    return session.id


async def _run(app: FtwizardApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.click("#dryrun-run")
    await pilot.pause()


async def _finish(app: FtwizardApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_paid_dry_run_asks_first_then_gives_a_no_go_that_needs_a_reason(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # The base model never says the right word: every score is 0, no signal for RFT.
    openai_env.reply_fn = lambda body: "I do not know."
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.rft)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DryRunScreen)
        assert "12 prompts x 1 answer = 12 answers on openai:o4-mini-2025-04-16" in _text(
            app, "#dryrun-estimate"
        )
        await _run(app, pilot)
        assert "costs" in str((await asked(pilot)).question)
        await confirm(pilot)
        await _finish(app, pilot)
        assert app.session is not None
        section = app.session.dryrun
        assert section.verdict == "NO-GO"
        assert (section.n, section.mean, section.pct_gt0) == (12, 0.0, 0.0)
        assert "NO-GO" in _text(app, "#dryrun-verdict")
        lowest = app.screen.query_one("#dryrun-lowest", DataTable)
        assert lowest.row_count == 12
        assert app.screen.query_one("#next", Button).disabled
        # Overriding a NO-GO needs a written reason.
        app.screen.query_one("#dryrun-proceed", Button).press()
        await pilot.pause()
        assert not section.acknowledged
        app.screen.query_one("#dryrun-override-reason", Input).value = "testing the pipeline"
        app.screen.query_one("#dryrun-proceed", Button).press()
        await pilot.pause()
        assert dryrun_problem(app.session) is None
    saved = store.load(session_id)
    assert saved.dryrun.override_reason == "testing the pipeline"
    assert {"set": {"dryrun-override-reason": "testing the pipeline"}} in [
        e.action for e in saved.journal
    ]
    assert len(openai_env.chat_bodies()) == 12


async def test_a_replay_never_starts_a_paid_dry_run_without_allow_spend(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.rft)
    app = make_app(store=store, session_id=session_id, allow_spend=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _run(app, pilot)
        assert isinstance(app.screen, DryRunScreen)
        assert app.session is not None and app.session.dryrun.verdict is None
    assert openai_env.chat_bodies() == []


async def test_a_warning_is_acknowledged_and_a_grader_change_asks_for_a_new_run(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # Half the answers right: a healthy signal for the mean, but SFT makes it a baseline.
    openai_env.reply_fn = lambda body: (
        body["messages"][-1]["content"].split()[-1].rstrip(".").replace("number", "")
    )
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.sft)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await _run(app, pilot)
        await confirm(pilot)
        await _finish(app, pilot)
        assert app.session is not None
        verdict = app.session.dryrun.verdict
        assert verdict in ("GO", "WARNING")
        if verdict == "WARNING":
            app.screen.query_one("#dryrun-proceed", Button).press()
            await pilot.pause()
        assert dryrun_problem(app.session) is None
        app.session.grader.spec_text = EXACT.replace("eq", "ilike")
        assert "changed since the dry run" in (dryrun_problem(app.session) or "")


async def test_a_batch_dry_run_costs_half_and_is_journaled(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    openai_env.reply_fn = lambda body: "I do not know."
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.rft)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        direct = _text(app, "#dryrun-estimate")
        app.screen.query_one("#dryrun-batch", Switch).value = True
        await pilot.pause()
        assert _text(app, "#dryrun-estimate") != direct
        await _run(app, pilot)
        await confirm(pilot)
        await _finish(app, pilot)
        assert app.session is not None
        assert app.session.dryrun.verdict == "NO-GO"
        assert app.session.dryrun.batch
    journal = store.artifacts_dir(session_id) / "dryrun-batch.journal.jsonl"
    assert journal.is_file()
    assert openai_env.chat_bodies() == []  # no direct calls: everything went through the batch
    assert len(openai_env.requests_to("/v1/batches", "POST")) == 1


async def test_a_non_ascii_digit_in_a_count_gives_a_message_not_a_traceback(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # "²".isdigit() is True but int("²") raises ValueError: that used to crash the screen.
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.rft)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DryRunScreen)
        app.screen.query_one("#dryrun-samples", Input).value = "²"
        await pilot.pause()
        assert "Prompts must be a whole number of at least 1, not '²'" in _text(
            app, "#dryrun-estimate"
        )
        assert app.session is not None and app.session.dryrun.samples == 12


async def test_groups_show_k_with_its_cost_their_figures_and_the_drop_action(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # Never right: every prompt's 4 answers fail, all groups are flat.
    openai_env.reply_fn = lambda body: "I do not know."
    session_id = _session_at_dryrun(
        store, tmp_path, backend=Backend.openai, method=Method.rft, k=None
    )
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#dryrun-k", Input).value == "4"
        assert "12 prompts x 4 answers = 48 answers on openai:o4-mini-2025-04-16" in _text(
            app, "#dryrun-estimate"
        )
        await _run(app, pilot)
        await confirm(pilot)
        await _finish(app, pilot)
        assert len(openai_env.chat_bodies()) == 48
        metrics = app.screen.query_one("#dryrun-metrics", DataTable)
        names = [str(metrics.get_row_at(i)[1]) for i in range(metrics.row_count)]
        assert "all 4 answers equal" in names and "pass@1 / pass@4" in names
        values = [str(metrics.get_row_at(i)[2]) for i in range(metrics.row_count)]
        assert values[names.index("  all fail / all pass")] == "100.0% / 0.0%"
        for column in ("value", "healthy range"):
            index = list(metrics.columns).index(column)
            cells = [str(metrics.get_row_at(i)[index]) for i in range(metrics.row_count)]
            width = metrics.columns[column].width
            assert all(len(c) <= width for c in cells), f"a cell is cut off in {column}"
        assert "100%" in _text(app, "#dryrun-verdict")
        assert isinstance(app.screen, DryRunScreen) and app.screen.report is not None
        source = Path(app.screen.report.data)
        rows_before = len(source.read_text().splitlines())
        drop = app.screen.query_one("#dryrun-drop-flat", Button)
        assert drop.display
        drop.press()
        await pilot.pause()
        assert "without 12 always/never-solved prompts" in _text(app, "#dryrun-live")
    saved = store.load(session_id)
    assert {"press": "dryrun-drop-flat"} in [e.action for e in saved.journal]
    written = list(store.artifacts_dir(session_id).glob("*.signal.jsonl"))
    assert len(written) == 1 and len(written[0].read_text().splitlines()) == rows_before - 12
    assert len(source.read_text().splitlines()) == rows_before  # the original is untouched


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_when_the_run_ends_its_verdict_and_the_answer_it_needs_are_in_view(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer, size: tuple[int, int]
) -> None:
    """By keys alone: ctrl+r runs, the cost question is answered, and the NO-GO that comes
    back is on screen with the focus in its reason field; Enter overrides it, then Next."""
    openai_env.reply_fn = lambda body: "I do not know."
    session_id = _session_at_dryrun(store, tmp_path, backend=Backend.openai, method=Method.rft)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=size) as pilot:
        await step_opened(pilot)
        await pilot.press("ctrl+r")
        await asked(pilot)
        await pilot.press("tab", "enter")  # from Cancel to the yes button
        await _finish(app, pilot)
        screen = app.screen
        reason = screen.query_one("#dryrun-override-reason", Input)
        await until(pilot, lambda: app.focused is reason, "focus on the override reason")
        assert app.session is not None and app.session.dryrun.verdict == "NO-GO"
        await pilot.pause()
        assert in_view(screen, screen.query_one("#dryrun-verdict"))
        assert in_view(screen, reason)
        await pilot.press(*"the grader is new", "enter")
        nxt = screen.query_one("#next", Button)
        await until(pilot, lambda: app.focused is nxt, "focus on Next")
        assert app.session.dryrun.acknowledged
        assert app.session.dryrun.override_reason == "the grader is new"
