"""The dry-run engine end to end, against the HTTP fakes: faults, cancellation, round trips."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ftwizard.dryrun.engine import DryRun, run_dryrun
from ftwizard.dryrun.report import DryRunProgress
from ftwizard.errors import InputError
from ftwizard.graders.loading import parse_grader
from tests.dryrun.helpers import (
    EXACT,
    config,
    provider_for,
    row_of,
)
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer


async def test_grading_starts_before_generation_ends(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    openai_env.delay_s = 0.02
    seen: list[DryRunProgress] = []
    await run_dryrun(
        config(data, openai_env, samples=40, concurrency=4), EXACT, on_progress=seen.append
    )
    assert any(p.graded > 0 and p.generated < p.total for p in seen)
    assert seen[-1].phase == "done" and seen[-1].graded == 40


# --- faults -----------------------------------------------------------------------------------


async def test_faults_are_survived_with_nothing_lost(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    openai_env.fail_next(429, headers={"retry-after": "0.02"}, times=2)
    openai_env.fail_next(500, times=2)
    openai_env.drop_next()
    openai_env.inject(FakeResponse(200, "{truncated"), FakeResponse(200, {"unexpected": True}))
    slow_once: set[int] = set()
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> str:
        row = row_of(body)
        with lock:
            first = row == 3 and row not in slow_once
            slow_once.add(row)
        if first:
            time.sleep(0.6)  # longer than the client's timeout: one timed-out attempt
        return f"A{row}"

    openai_env.reply_fn = reply
    dry = DryRun(
        config(data, openai_env, samples=40, concurrency=8),
        EXACT,
        provider=provider_for(openai_env, timeout_s=0.3),
    )
    report = await dry.run()
    assert report.errors == []
    assert report.stats.n == 40 and report.stats.mean == 1.0
    assert sorted(s.line for s in report.samples) == list(range(1, 41))
    # Seven injected faults plus one timed-out attempt, each retried.
    assert len(openai_env.chat_bodies()) == 40 + 8
    assert dry.retries == 0  # an injected provider's retries are its own business
    assert report.verdict.verdict == "NO-GO"  # every answer right: no learning signal


async def test_a_row_failing_beyond_retries_is_reported_not_lost(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    def reply(body: dict[str, Any]) -> str | FakeResponse:
        row = row_of(body)
        if row == 5:
            return openai_env.error_response(503, "overloaded")
        return f"A{row}" if row % 2 else "no"

    openai_env.reply_fn = reply
    report = await run_dryrun(
        config(data, openai_env, samples=40), EXACT, provider=provider_for(openai_env)
    )
    assert [(e.row, e.stage) for e in report.errors] == [(6, "generation")]
    assert "503" in report.errors[0].message and "5 attempts" in report.errors[0].message
    assert report.stats.n == 39
    assert report.generation_failures == 1
    assert "R2" in [r.rule for r in report.verdict.reasons]


async def test_a_bad_key_stops_the_run_early(
    openai_env: FakeOpenAIServer, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789abcdefghij")
    report = await run_dryrun(config(data, openai_env, samples=40, concurrency=2), EXACT)
    assert report.aborted is not None and "401" in report.aborted
    assert "sk-wrong-key" not in report.aborted
    assert len(openai_env.requests) < 40
    assert report.verdict.verdict == "NO-GO"


# --- cancellation -----------------------------------------------------------------------------


async def test_cancel_returns_a_report_over_completed_samples(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    openai_env.delay_s = 0.05
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) % 2 else "no"
    dry = DryRun(config(data, openai_env, samples=40, concurrency=4), EXACT)

    def on_progress(p: DryRunProgress) -> None:
        if p.generated >= 8:
            dry.cancel()

    report = await dry.run(on_progress=on_progress)
    assert report.cancelled
    generated = [s for s in report.samples if s.output is not None]
    assert 8 <= len(generated) < 40
    # Every answer that came back was graded: nothing completed is thrown away.
    assert all(s.score is not None for s in generated)
    assert report.stats.n == len(generated)
    assert any(r.rule == "P1" for r in report.verdict.reasons)
    assert report.verdict.verdict in ("WARNING", "NO-GO")


async def test_cancelling_the_task_keeps_completed_results(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    openai_env.delay_s = 0.05
    openai_env.reply_fn = lambda body: f"A{row_of(body)}"
    dry = DryRun(config(data, openai_env, samples=40, concurrency=4), EXACT)
    task = asyncio.create_task(dry.run())
    while dry.progress().graded < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = dry.report()
    assert 4 <= partial.stats.n < 40
    assert all(s.score == 1.0 for s in partial.samples if s.score is not None)


async def test_bad_grader_fails_before_any_call(openai_env: FakeOpenAIServer, data: Path) -> None:
    spec = parse_grader(
        {
            "type": "score_model",
            "name": "judge",
            "model": "gpt-4.1-mini-2025-04-14",
            "input": [{"role": "user", "content": "{{sample.output_text}}"}],
        }
    )
    with pytest.raises(InputError, match="needs a judge"):
        await run_dryrun(config(data, openai_env), spec)
    assert openai_env.requests == []


async def test_report_round_trips_through_json(openai_env: FakeOpenAIServer, data: Path) -> None:
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) % 3 else "no"
    dry = DryRun(config(data, openai_env, samples=40), EXACT)
    report = await dry.run()
    stored = json.loads(report.model_dump_json())
    assert type(report).model_validate(stored) == report
    with pytest.raises(RuntimeError, match="runs once"):
        await dry.run()


async def test_topics_from_the_dataset_step_stratify_and_label(
    openai_env: FakeOpenAIServer, tmp_path: Path
) -> None:
    from ftwizard.datasets.topics import topics_from_field

    path = tmp_path / "cats.jsonl"
    with path.open("w") as fh:
        for i in range(30):
            category = "pets / cats" if i < 20 else "garden / roses"
            row = {"messages": [{"role": "user", "content": f"Q{i}"}], "answer": f"A{i}"}
            fh.write(json.dumps({**row, "category": category}) + "\n")
    tree = topics_from_field(path, "category")
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) >= 20 else "no"
    report = await run_dryrun(config(path, openai_env, samples=15), EXACT, topics=tree)
    assert report.topic_source == "field:category"
    assert {k: (v.n, v.mean) for k, v in report.per_topic.items()} == {
        "garden": (5, 1.0),
        "pets": (10, 0.0),
    }


async def test_long_outputs_are_graded_whole_and_stored_clipped(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    spec = parse_grader({**EXACT.model_dump(), "operation": "like"})
    openai_env.reply_fn = lambda body: "x" * 5000 + f" A{row_of(body)}"
    report = await run_dryrun(config(data, openai_env, samples=10), spec)
    assert report.stats.mean == 1.0
    stored = report.samples[0].output
    assert stored is not None and len(stored) < 4100 and stored.endswith("[...]")


async def test_rows_out_of_attempts_on_rate_limits_get_a_second_pass(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def reply(body: dict[str, Any]) -> str | FakeResponse:
        row = row_of(body)
        with lock:
            seen[row] = seen.get(row, 0) + 1
            limited = row == 9 and seen[row] <= 5
        if limited:
            failure = openai_env.error_response(429, "slow down")
            failure.headers["retry-after"] = "0"
            return failure
        return f"A{row}"

    openai_env.reply_fn = reply
    report = await run_dryrun(
        config(data, openai_env, samples=40), EXACT, provider=provider_for(openai_env)
    )
    assert report.errors == [] and report.stats.n == 40
    assert seen[9] == 6
