"""An SFT dry run is a baseline: its figures are shown without RFT's health ranges marked as
failures, and its advice names controls that exist."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static

from ftwizard.app import make_app
from ftwizard.dryrun.verdict_types import MOVE_TEXT, NextMove
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.steps import confirm_grader, session_with_data

SIZE = (120, 60)


async def test_an_sft_dry_run_marks_no_rft_range_as_failed(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # Every answer is wrong: for RFT that is a NO-GO with every range marked; for SFT it is
    # the baseline the tuned model has to beat.
    openai_env.reply_fn = lambda body: "I do not know."
    session = session_with_data(store, tmp_path, backend=Backend.openai, method=Method.sft)
    confirm_grader(store, session)
    session.dryrun.samples = 6
    store.save(session)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#dryrun-run").press()
        await pilot.pause()
        if isinstance(app.screen, ConfirmScreen):
            await pilot.click("#confirm-yes")
        await app.workers.wait_for_complete()
        await pilot.pause()
        verdict = str(app.screen.query_one("#dryrun-verdict", Static).render())
        assert "SFT: a baseline to beat, not a gate" in verdict
        assert "6 prompts x 1 answer = 6 answers" in verdict
        metrics = app.screen.query_one("#dryrun-metrics", DataTable)
        rows = {str(metrics.get_row_at(i)[1]): metrics.get_row_at(i) for i in range(4)}
        for name in ("mean score", "std", "> 0", "= 1.0"):
            mark, _, _, healthy = rows[name]
            assert str(mark) == "" and str(healthy) == "baseline (SFT)"


def test_every_next_move_names_a_control_or_flag() -> None:
    # Advice a person can act on: each move that asks for a change says where to make it.
    needs_a_control = set(NextMove) - {NextMove.proceed}
    for move in needs_a_control:
        text = MOVE_TEXT[move]
        assert "--" in text or "step" in text or "Adjust the grader" in text, text
    assert "--max-tokens" in MOVE_TEXT[NextMove.raise_max_tokens]
    assert "Max output tokens" in MOVE_TEXT[NextMove.raise_max_tokens]
