"""The evaluate screen's grader comparison, and a replay driving both comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from ftwizard.app import make_app
from ftwizard.evaluate.ab import PairwiseReport
from ftwizard.screens.evaluate.screen import EvaluateScreen
from ftwizard.store import SessionStore
from tests.evaluate.screen_setup import (
    SIZE,
    N,
    base_correct,
    label,
    press,
    session_at_evaluate,
    text_of,
    tuned_correct,
)
from tests.fakes.openai_server import FakeOpenAIServer


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
