"""The evaluate step as a user drives it, against the HTTP fakes.

The base model is the task's OpenAI model on one fake (``OPENAI_BASE_URL``), the tuned model is
the deployed model on another fake (a keyless OpenAI-compatible server at
``deployment.base_url``), and the judges are Claude models on the Anthropic fake, scripted
with known behaviour. Answers are right or wrong by a rule on the item number, so the counts a
fair judge must give follow from the data alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input, Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.evaluate.ab import PairwiseReport
from ftwizard.evaluate.session import estimate_spend, make_plan
from ftwizard.flow import evaluate_problem, start_session
from ftwizard.ledger.store import read_lines
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.evaluate import EvaluateScreen
from ftwizard.session import Backend, Session, StepId
from ftwizard.store import SessionStore
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.pairwise_judges import fair_judge, first_position_judge, judge_prompt

SIZE = (120, 60)
N = 40
TUNED = "openai:ft:gpt-4.1-mini-2025-04-14:acme::tuned1"
EXACT_GRADER = """\
type: string_check
name: contains the label
input: "{{sample.output_text}}"
reference: "{{item.reference_answer}}"
operation: like
"""


def label(i: int) -> str:
    return f"<label-{i:03d}>"


def base_correct(i: int) -> bool:
    return i % 4 == 0


def tuned_correct(i: int) -> bool:
    return i % 10 != 0


def expected_counts(n: int = N) -> tuple[int, int, int]:
    """(base wins, tuned wins, ties) a fair judge must give, from the rules above."""
    a = sum(1 for i in range(n) if base_correct(i) and not tuned_correct(i))
    b = sum(1 for i in range(n) if tuned_correct(i) and not base_correct(i))
    return a, b, n - a - b


def answer_by(rule: Any) -> Any:
    def reply(body: dict[str, Any]) -> str:
        i = int(judge_prompt(body).rsplit("Classify item ", 1)[1].split()[0])
        return f"It is {label(i)}." if rule(i) else "It is something else."

    return reply


@pytest.fixture
def tuned_server() -> Iterator[FakeOpenAIServer]:
    """A keyless OpenAI-compatible server serving the tuned model (like vLLM would)."""
    server = FakeOpenAIServer(api_key=None, models=None)
    server.reply_fn = answer_by(tuned_correct)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def base_server(openai_env: FakeOpenAIServer) -> FakeOpenAIServer:
    openai_env.models = None
    openai_env.reply_fn = answer_by(base_correct)
    return openai_env


def session_at_evaluate(
    store: SessionStore, tmp_path: Path, tuned_url: str, *, n: int = N, judges: list[str]
) -> str:
    rows = [
        {
            "id": f"q{i}",
            "messages": [
                {"role": "user", "content": f"Classify item {i}"},
                {"role": "assistant", "content": label(i)},
            ],
            "domain": "in" if i < n // 2 else "out",
        }
        for i in range(n)
    ]
    held_out = tmp_path / "heldout.jsonl"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    session = start_session(store, "evaluation", backend=Backend.openai)
    session.grader.spec_text = EXACT_GRADER
    session.deployment.model = TUNED
    session.deployment.base_url = tuned_url
    session.evaluation.held_out_file = str(held_out)
    session.evaluation.judges = judges
    session.step = StepId.evaluate
    store.save(session)
    return session.id


async def press(app: FtwizardApp, pilot: Any, button: str) -> None:
    app.screen.query_one(f"#{button}", Button).press()
    await pilot.pause()


async def confirm_and_wait(app: FtwizardApp, pilot: Any) -> None:
    assert isinstance(app.screen, ConfirmScreen)
    await pilot.click("#confirm-yes")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


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
        assert isinstance(app.screen, ConfirmScreen)
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


async def test_the_grader_comparison_counts_flips_both_ways(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
) -> None:
    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, judges=[])
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # Both models are on OpenAI-compatible fakes and the grader is a string check:
        # nothing is paid, so it runs without a question even without allow_spend.
        await press(app, pilot, "run-grader-eval")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, EvaluateScreen)
        gained = [i for i in range(N) if tuned_correct(i) and not base_correct(i)]
        lost = [i for i in range(N) if base_correct(i) and not tuned_correct(i)]
        summary = text_of(app, "#grader-eval-summary")
        assert f"flips: {len(gained)} fail -> pass, {len(lost)} pass -> fail" in summary
        table = app.screen.query_one("#eval-flips", DataTable)
        assert table.row_count == len(gained) + len(lost)
        row = table.get_row_index(f"q{lost[0]}")
        table.move_cursor(row=row)
        await pilot.pause()
        detail = text_of(app, "#eval-flip-detail")
        assert f"Base (1.00): It is {label(lost[0])}." in detail
        assert "Tuned (0.00): It is something else." in detail
    ev = store.load(session_id).evaluation
    assert ev.base_mean == pytest.approx(sum(map(base_correct, range(N))) / N)
    assert ev.tuned_mean == pytest.approx(sum(map(tuned_correct, range(N))) / N)
    assert (ev.fail_to_pass, ev.pass_to_fail, ev.grader_n) == (len(gained), len(lost), N)
    assert Path(ev.grader_report_file or "").is_file()


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
def judge_server() -> Iterator[FakeOpenAIServer]:
    """A keyless OpenAI-compatible server whose model judges fairly (free: self-hosted)."""
    server = FakeOpenAIServer(api_key=None, models=None)
    server.reply_fn = fair_judge
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_replay_drives_both_comparisons_by_their_documented_ids(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    judge_server: FakeOpenAIServer,
) -> None:
    import io

    from ftwizard.autopilot import run_replay
    from ftwizard.replay import parse_replay_text

    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, judges=[])
    text = f"""\
version: 1
resume: {session_id}
actions:
  - screen: evaluate
  - press: run-grader-eval
  - wait: evaluation-graded
  - expect:
      evaluation.tuned_mean: {{min: 0.89, max: 0.91}}
      evaluation.base_mean: {{min: 0.24, max: 0.26}}
  - set:
      eval-judges: openai:fair-judge
      eval-judge-base-url: {judge_server.v1_url}
      eval-both-orders: false
      eval-seed: "5"
      eval-runs: "2"
  - press: run-ab
  - wait: evaluation-judged
  - expect:
      evaluation.ab_verdict: tuned
      evaluation.n: {N}
      evaluation.seed: 5
      evaluation.runs: 2
"""
    out = io.StringIO()
    result = run_replay(parse_replay_text(text, tmp_path / "eval.yaml"), store=store, out=out)
    assert result.exit_code == 0, out.getvalue()
    # One order per item, one judge, two runs: exactly 2 N judgments.
    assert len(judge_server.requests_to("/v1/chat/completions")) == 2 * N
    report = PairwiseReport.model_validate_json(
        Path(store.load(session_id).evaluation.ab_report_file or "").read_text()
    )
    assert report.runs == 2 and report.repeats is not None
    # A fair judge decides every item the same way whatever the order: no spread.
    assert report.repeats.std == 0.0
    journal = [e.action for e in store.load(session_id).journal if e.screen == "evaluate"]
    assert {"press": "run-ab"} in journal
    assert {"set": {"eval-both-orders": False}} in journal


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


async def test_stop_cancels_a_running_ab_and_records_nothing(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
    judge_server: FakeOpenAIServer,
) -> None:
    import time

    answer = answer_by(tuned_correct)

    def slow(body: dict[str, Any]) -> str:
        time.sleep(0.1)  # long enough for the stop to land while answers are under way
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
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Stopped; nothing was recorded." in text_of(app, "#eval-status")
        assert not app.screen.query_one("#run-ab", Button).disabled
    assert store.load(session_id).evaluation.ab_report_file is None
    assert judge_server.requests_to("/v1/chat/completions") == []
    assert len(tuned_server.requests_to("/v1/chat/completions")) < N


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
