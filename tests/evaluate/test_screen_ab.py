"""The evaluate screen's blind A/B: counts, a position-biased judge, two judges, Stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Static

from ftwizard.app import make_app
from ftwizard.evaluate.ab import PairwiseReport
from ftwizard.flow import evaluate_problem
from ftwizard.ledger.store import read_lines
from ftwizard.screens.evaluate.screen import EvaluateScreen
from ftwizard.store import SessionStore
from tests.evaluate.screen_setup import (
    SIZE,
    TUNED,
    N,
    answer_by,
    confirm_and_wait,
    expected_counts,
    press,
    session_at_evaluate,
    text_of,
    tuned_correct,
)
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.pairwise_judges import fair_judge, first_position_judge
from tests.view import in_view
from tests.waiting import asked, step_opened, until


async def test_a_fair_judge_gives_exact_counts_and_the_step_is_done(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
) -> None:
    anthropic_env.reply_fn = fair_judge
    judge = "anthropic:claude-haiku-4-5"
    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, judges=[judge])
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, EvaluateScreen)
        assert "Compare the models" in text_of(app, "#next-hint")
        await press(app, pilot, "run-ab")
        # The judge is paid: an estimate and a question come first.
        await asked(pilot)
        question = str(app.screen.query_one("#confirm-question", Static).render())
        assert judge in question and "costs about $" in question
        await confirm_and_wait(app, pilot)
        assert isinstance(app.screen, EvaluateScreen)
        summary = text_of(app, "#ab-summary")
        a, b, ties = expected_counts()
        assert f"tuned wins {b}, ties {ties}, base wins {a}" in summary
        assert "the tuned model is better" in summary
        assert "BIASED" not in summary
        assert "This is the last step." in text_of(app, "#next-hint")
        # A fair judge agrees with itself in both orders: nothing to browse.
        assert app.screen.query_one("#ab-disagreements", DataTable).row_count == 0
    saved = store.load(session_id)
    ev = saved.evaluation
    assert ev.ab_verdict == "tuned"
    assert ev.n == N
    assert ev.tuned_win_rate == pytest.approx((b + ties / 2) / N)
    assert ev.first_position_rate == pytest.approx(0.5)
    assert evaluate_problem(saved) is None
    report = PairwiseReport.model_validate_json(Path(ev.ab_report_file or "").read_text())
    assert (report.counts.a_wins, report.counts.b_wins, report.counts.ties) == (a, b, ties)
    # Each answer came from its own server: the tuned model never ran on the base's server.
    assert {r.json()["model"] for r in tuned_server.requests_to("/v1/chat/completions")} == {
        TUNED.removeprefix("openai:")
    }
    # Every item judged in both orders by the one judge.
    assert len(anthropic_env.requests_to("/v1/messages", "POST")) == 2 * N
    # The run is in the ledger.
    runs = [line for line in read_lines(store) if line.kind == "run"]
    assert runs and runs[-1].evaluation is not None
    assert runs[-1].evaluation.ab_verdict == "tuned"


async def test_a_judge_that_always_picks_the_first_answer_is_flagged_and_decides_nothing(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
) -> None:
    anthropic_env.reply_fn = first_position_judge
    session_id = session_at_evaluate(
        store, tmp_path, tuned_server.v1_url, judges=["anthropic:claude-haiku-4-5"]
    )
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await press(app, pilot, "run-ab")
        await confirm_and_wait(app, pilot)
        summary = text_of(app, "#ab-summary")
        assert "undecided" in summary
        assert "BIASED" in summary
        assert "position-biased" in summary
        # It changed its verdict with the order on every item: all of them are to browse.
        table = app.screen.query_one("#ab-disagreements", DataTable)
        assert table.row_count == N
        table.move_cursor(row=0)
        await pilot.pause()
        detail = text_of(app, "#ab-disagreement-detail")
        assert "order 1" in detail and "order 2" in detail
        assert "the answer shown first" in detail
    ev = store.load(session_id).evaluation
    assert ev.ab_verdict == "undecided"
    assert ev.first_position_rate == 1.0


async def test_two_judges_give_kappa_and_a_bar_per_judge(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
) -> None:
    def by_model(params: dict[str, Any]) -> str:
        judge = fair_judge if params["model"] == "claude-haiku-4-5" else first_position_judge
        return judge(params)

    anthropic_env.reply_fn = by_model
    judges = ["anthropic:claude-haiku-4-5", "anthropic:claude-sonnet-4-6"]
    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, n=12, judges=judges)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await press(app, pilot, "run-ab")
        await confirm_and_wait(app, pilot)
        summary = text_of(app, "#ab-summary")
        assert "Cohen's kappa between judges:" in summary
        assert "only 12 items" in summary  # the n < 30 warning
        screen = app.screen
        assert isinstance(screen, EvaluateScreen)
        assert screen.pairwise_report is not None
        assert set(screen.pairwise_report.per_judge) == set(judges)
        assert screen.query_one("#ab-win-rates").display
    assert store.load(session_id).evaluation.judges == judges


async def test_stop_cancels_a_running_ab_and_records_nothing(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    judge_server: FakeOpenAIServer,
) -> None:
    import threading

    answer = answer_by(tuned_correct)
    # Answers are held until the stop has been pressed, so the stop lands while they are under
    # way however slow the machine is; the first requests are in flight, the rest never start.
    stopped = threading.Event()

    def slow(body: dict[str, Any]) -> str:
        stopped.wait(timeout=30)
        return answer(body)

    tuned_server.reply_fn = slow
    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, judges=[])
    session = store.load(session_id)
    session.evaluation.judges = ["openai:fair-judge"]
    session.evaluation.judge_base_url = judge_server.v1_url
    store.save(session)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await press(app, pilot, "run-ab")
        assert app.screen.query_one("#eval-stop", Button).display
        await press(app, pilot, "eval-stop")
        stopped.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Stopped; nothing was recorded." in text_of(app, "#eval-status")
        assert not app.screen.query_one("#run-ab", Button).disabled
    assert store.load(session_id).evaluation.ab_report_file is None
    assert judge_server.requests_to("/v1/chat/completions") == []
    assert len(tuned_server.requests_to("/v1/chat/completions")) < N


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_by_keys_the_ab_result_comes_into_view_under_its_button(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
    size: tuple[int, int],
) -> None:
    """The A/B run from its button by keys: when it ends, its summary is on screen (not below
    the fold of a short terminal) right under the button that keeps the focus."""
    anthropic_env.reply_fn = fair_judge
    session_id = session_at_evaluate(
        store, tmp_path, tuned_server.v1_url, judges=["anthropic:claude-haiku-4-5"]
    )
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=size) as pilot:
        await step_opened(pilot)
        screen = app.screen
        screen.query_one("#run-ab", Button).focus()
        await pilot.press("enter")
        await asked(pilot)
        await pilot.press("tab", "enter")  # from Cancel to the yes button
        await until(pilot, lambda: "tuned wins" in text_of(app, "#ab-summary"), "the A/B", 60)
        await pilot.pause()
        assert in_view(screen, screen.query_one("#ab-summary"))
        assert app.focused is screen.query_one("#run-ab") and in_view(screen, app.focused)
