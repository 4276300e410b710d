"""The evaluate screen's settings: spend, estimates, default judges, invalidated results."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from ftwizard.app import make_app
from ftwizard.evaluate.session import estimate_spend, make_plan
from ftwizard.flow import evaluate_problem, start_session
from ftwizard.screens.evaluate.screen import EvaluateScreen
from ftwizard.session import Backend, Session
from ftwizard.store import SessionStore
from tests.evaluate.screen_setup import (
    SIZE,
    TUNED,
    press,
    session_at_evaluate,
    text_of,
)
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.pairwise_judges import fair_judge


async def test_a_paid_judge_is_refused_without_allow_spend(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
) -> None:
    anthropic_env.reply_fn = fair_judge
    session_id = session_at_evaluate(
        store, tmp_path, tuned_server.v1_url, judges=["anthropic:claude-haiku-4-5"]
    )
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await press(app, pilot, "run-ab")
        await app.workers.wait_for_complete()
        assert isinstance(app.screen, EvaluateScreen)
        assert "--allow-spend" in text_of(app, "#eval-status")
    assert anthropic_env.requests_to("/v1/messages", "POST") == []
    assert base_server.requests_to("/v1/chat/completions") == []
    assert store.load(session_id).evaluation.ab_report_file is None


def test_the_estimate_counts_every_call_and_prices_the_paid_ones(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "fake-anthropic-key-for-a-paid-judge-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    session_id = session_at_evaluate(
        store, tmp_path, "http://127.0.0.1:9/v1", n=10, judges=["anthropic:claude-haiku-4-5"]
    )
    session = store.load(session_id)
    plan = make_plan(session, with_judges=True)
    one = estimate_spend(plan, both_orders=False)
    two = estimate_spend(plan, both_orders=True)
    # 10 base + 10 tuned answers, then 10 or 20 judgments (40 when judged twice).
    assert (one.calls, two.calls) == (30, 40)
    assert estimate_spend(plan, both_orders=True, runs=2).calls == 60
    assert one.paid == ["anthropic:claude-haiku-4-5"]
    assert one.usd is not None and two.usd is not None
    assert 0 < one.usd < two.usd
    session.evaluation.judges = ["anthropic:some-unpriced-model"]
    unknown = estimate_spend(make_plan(session, with_judges=True), both_orders=False)
    assert unknown.usd is None and unknown.describe() == "an unknown amount"


@pytest.fixture
def recorded_session(store: SessionStore, tmp_path: Path) -> Session:
    """A session with a grader comparison and an A/B already recorded (built outside the
    test's event loop: recording runs a real judging loop of its own)."""
    from datetime import UTC, datetime

    from tests.test_ledger import finished_session

    session = finished_session(
        store, tmp_path, "settings", finished=datetime(2026, 11, 9, tzinfo=UTC)
    )
    session.evaluation.held_out_file = None  # the default: the dataset's validation file
    store.save(session)
    return session


async def test_changed_settings_discard_only_the_results_they_invalidate(
    store: SessionStore, tmp_path: Path, recorded_session: Session
) -> None:
    session = recorded_session
    validation = session.dataset.result.validation_file if session.dataset.result else None
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.screen.query_one("#eval-data", Input).value == validation
        assert "tuned wins 28" in text_of(app, "#ab-summary")
        app.screen.query_one("#eval-seed", Input).value = "9"
        await pilot.pause()
        assert app.session is not None
        ev = app.session.evaluation
        assert ev.seed == 9 and ev.ab_report_file is None and ev.tuned_win_rate is None
        assert text_of(app, "#ab-summary") == ""
        # The grader comparison does not depend on the judges' settings.
        assert ev.tuned_mean is not None and "flips:" in text_of(app, "#grader-eval-summary")
        app.screen.query_one("#eval-data", Input).value = str(tmp_path / "other.jsonl")
        await pilot.pause()
        assert ev.tuned_mean is None and ev.grader_report_file is None
        assert evaluate_problem(app.session) == (
            "Compare the models: with the grader, in a blind A/B, or both."
        )
    journal = [e.action for e in store.load(session.id).journal if e.screen == "evaluate"]
    assert journal == [
        {"screen": "evaluate"},
        {"set": {"eval-seed": "9"}},
        {"set": {"eval-data": str(tmp_path / "other.jsonl")}},
    ]


def test_the_default_judge_has_a_key_and_prefers_another_family_than_the_tuned_model(
    store: SessionStore,
) -> None:
    from ftwizard.evaluate.session import default_judges, split_judges

    session = start_session(store, "defaults", backend=Backend.openai)
    both = {"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}
    session.deployment.model = TUNED
    assert default_judges(session, both) == ["anthropic:claude-sonnet-4-6"]
    session.deployment.model = "anthropic:some-tuned-claude"
    assert default_judges(session, both) == ["openai:gpt-4.1-2025-04-14"]
    assert default_judges(session, {"OPENAI_API_KEY": "k"}) == ["openai:gpt-4.1-2025-04-14"]
    assert default_judges(session, {}) == []
    assert split_judges(" openai:a, anthropic:b  openai:a,") == ["openai:a", "anthropic:b"]
