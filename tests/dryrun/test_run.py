"""The dry-run engine end to end, against the HTTP fakes: exact figures, faults, cancellation."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ftwizard.dryrun.engine import (
    DryRun,
    DryRunConfig,
    DryRunProgress,
    estimate_dryrun_cost,
    run_dryrun,
)
from ftwizard.dryrun.sampling import sample_rows
from ftwizard.errors import InputError
from ftwizard.graders.loading import parse_grader
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.openai.http import LeanOpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer

MODEL = "gpt-4.1-mini-2025-04-14"
FAST = RetryPolicy(initial_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
TOPICS = ("math", "geo", "bio", "art")
EXACT = parse_grader(
    {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    }
)


def write_data(path: Path, n: int, topics: tuple[str, ...] = TOPICS) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            row = {
                "messages": [
                    {"role": "system", "content": "Answer with the code only."},
                    {"role": "user", "content": f"Q{i}"},
                    {"role": "assistant", "content": f"A{i}"},
                ],
                "answer": f"A{i}",
                "topic": topics[i % len(topics)],
            }
            fh.write(json.dumps(row) + "\n")
    return path


def row_of(body: dict[str, Any]) -> int:
    match = re.search(r"Q(\d+)", body["messages"][-1]["content"])
    assert match is not None
    return int(match.group(1))


def config(data: Path, server: FakeOpenAIServer, **kwargs: Any) -> DryRunConfig:
    return DryRunConfig(data=str(data), model=f"openai:{MODEL}", base_url=server.v1_url, **kwargs)


def provider_for(server: FakeOpenAIServer, **kwargs: Any) -> LeanOpenAIChatProvider:
    kwargs.setdefault("retry", FAST)
    return LeanOpenAIChatProvider(base_url=server.v1_url, compatible=True, **kwargs)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 40)


# --- exact figures ----------------------------------------------------------------------------


async def test_binary_metrics_are_exact(openai_env: FakeOpenAIServer, data: Path) -> None:
    # Rows 0, 4, 8, ... (every "math" row) and rows 1, 5 (two "geo" rows) are answered right.
    right = {i for i in range(40) if i % 4 == 0} | {1, 5}
    openai_env.reply_fn = lambda body: f"A{row_of(body)}" if row_of(body) in right else "no"
    report = await run_dryrun(config(data, openai_env, samples=40), EXACT)
    assert report.sampled == report.stats.n == 40
    assert report.stats.mean == pytest.approx(12 / 40)
    assert report.stats.std == pytest.approx(math.sqrt(0.3 * 0.7))
    assert (report.stats.pct_gt0, report.stats.pct_eq1) == (30.0, 30.0)
    assert report.stats.binary
    assert report.stats.histogram.counts == [28, 0, 0, 0, 0, 0, 0, 0, 0, 12]
    assert {k: (v.n, v.mean) for k, v in report.per_topic.items()} == {
        "art": (10, 0.0),
        "bio": (10, 0.0),
        "geo": (10, pytest.approx(0.2)),
        "math": (10, 1.0),
    }
    assert report.topic_source == "field:topic"
    assert report.errors == []
    assert report.verdict.verdict == "GO"
    # Word counts: "Answer with the code only." + "Q7" = 6 prompt words, 1 output word each.
    assert (report.usage.input_tokens, report.usage.output_tokens) == (240, 40)
    assert report.cost.total_usd == pytest.approx((240 * 0.40 + 40 * 1.60) / 1e6)
    lowest = report.lowest(3)
    assert [s.score for s in lowest] == [0.0, 0.0, 0.0]
    assert lowest[0].output == "no" and "Q" in lowest[0].prompt
    assert len(openai_env.chat_bodies()) == 40


async def test_continuous_metrics_from_a_python_grader(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    spec = parse_grader(
        {
            "type": "python",
            "name": "number",
            "source": "def grade(sample, item):\n    return float(sample['output_text'])\n",
        }
    )
    values = [0.0, 0.25, 0.5, 0.75]
    openai_env.reply_fn = lambda body: str(values[row_of(body) % 4])
    report = await run_dryrun(config(data, openai_env, samples=40), spec)
    assert report.stats.mean == pytest.approx(0.375)
    assert report.stats.std == pytest.approx(math.sqrt(0.078125))
    assert (report.stats.pct_gt0, report.stats.pct_eq1) == (75.0, 0.0)
    assert not report.stats.binary
    assert report.per_topic["bio"].mean == pytest.approx(0.5)
    assert report.verdict.verdict == "GO"


async def test_score_model_range_is_normalised_and_judge_noise_measured(
    openai_env: FakeOpenAIServer, anthropic_env: FakeAnthropicServer, data: Path
) -> None:
    spec = parse_grader(
        {
            "type": "score_model",
            "name": "judge",
            "model": "claude-haiku-4-5",
            "range": [1, 5],
            "input": [{"role": "user", "content": "Grade {{sample.output_text}}"}],
        }
    )
    openai_env.reply_fn = lambda body: f"out{row_of(body)}"
    calls: dict[int, int] = {}
    lock = threading.Lock()

    def judge(params: dict[str, Any]) -> str:
        row = int(re.search(r"out(\d+)", json.dumps(params["messages"])).group(1))  # type: ignore[union-attr]
        with lock:
            calls[row] = calls.get(row, 0) + 1
            first = calls[row] == 1
        score = [1, 2, 3, 4, 5][row % 5]
        # A re-grade moves every score by 0.8 on the 1-5 scale: 0.2 on the 0-1 scale.
        again = score + 0.8 if score <= 3 else score - 0.8
        return json.dumps({"steps": [], "result": score if first else again})

    anthropic_env.reply_fn = judge
    judge_provider = AnthropicChatProvider(base_url=anthropic_env.base_url, retry=FAST)
    dry = DryRun(config(data, openai_env, samples=40, regrade=10), spec, judge=judge_provider)
    report = await dry.run()
    assert report.scale == (1.0, 5.0)
    assert report.stats.mean == pytest.approx(0.5)
    assert {s.raw_score for s in report.samples} == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert report.grader_noise is not None
    assert report.grader_noise.samples == 10
    assert report.grader_noise.mean_abs_diff == pytest.approx(0.2)
    assert report.verdict.verdict == "WARNING"
    assert [r.rule for r in report.verdict.reasons if r.level == "warning"] == ["M2"]
    assert report.usage.judge_input_tokens > 0 and report.usage.judge_output_tokens > 0
    assert len(anthropic_env.message_bodies()) == 50


async def test_outputs_failing_to_parse_are_diagnosed(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    spec = parse_grader(
        {
            "type": "string_check",
            "name": "label",
            "input": "{{sample.output_json.label}}",
            "reference": "{{item.answer}}",
            "operation": "eq",
        }
    )
    openai_env.reply_fn = lambda body: "plain words, not JSON"
    report = await run_dryrun(config(data, openai_env, samples=40), spec)
    assert report.parse_failures == 40
    assert report.verdict.verdict == "NO-GO"
    assert "outputs_fail_to_parse" in [str(d) for d in report.verdict.diagnosis]


# --- sampling ---------------------------------------------------------------------------------


def test_sampling_is_seeded_and_stratified(tmp_path: Path) -> None:
    # 100 rows, topics 70 / 20 / 10: a 20-row sample keeps the proportions exactly.
    path = tmp_path / "d.jsonl"
    with path.open("w") as fh:
        for i in range(100):
            topic = "a" if i < 70 else "b" if i < 90 else "c"
            fh.write(json.dumps({"prompt": f"Q{i}", "topic": topic}) + "\n")
        fh.write(json.dumps({"messages": [{"role": "assistant", "content": "x"}]}) + "\n")
    first = sample_rows(path, 20, seed=7)
    assert first.topic_counts == {"a": 14, "b": 4, "c": 2}
    assert [r.line for r in first.rows] == sorted(r.line for r in first.rows)
    assert [r.line for r in sample_rows(path, 20, seed=7).rows] == [r.line for r in first.rows]
    assert [r.line for r in sample_rows(path, 20, seed=8).rows] != [r.line for r in first.rows]
    assert first.skipped_no_prompt == [101]
    everything = sample_rows(path, 500)
    assert len(everything.rows) == everything.eligible == 100


def test_sampling_rejects_unusable_data(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{not json\n')
    with pytest.raises(InputError) as info:
        sample_rows(bad, 10)
    assert info.value.line == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"messages": [{"role": "assistant", "content": "x"}]}\n')
    with pytest.raises(InputError, match="no row has a prompt"):
        sample_rows(empty, 10)
    with pytest.raises(InputError, match="topic field 'kind'"):
        sample_rows(
            bad.with_name("ok.jsonl") if False else _one_row(tmp_path), 5, topic_field="kind"
        )


def _one_row(tmp_path: Path) -> Path:
    path = tmp_path / "one.jsonl"
    path.write_text('{"prompt": "hello"}\n')
    return path


def test_estimate_before_running(data: Path, openai_env: FakeOpenAIServer) -> None:
    estimate = estimate_dryrun_cost(
        DryRunConfig(data=str(data), model=f"openai:{MODEL}", samples=20), EXACT
    )
    assert estimate.samples == 20 and estimate.paid
    # "Answer with the code only." (26 chars -> 7) + "Q12" (1) + 4 per message = 16 per row.
    assert estimate.input_tokens == sum(7 + 4 + (1 + 4) for _ in range(20))
    assert estimate.output_tokens == 20  # the rows' own answers, "A12": one token each
    assert estimate.cost.total_usd == pytest.approx((estimate.input_tokens * 0.4 + 20 * 1.6) / 1e6)
    assert openai_env.requests == []
    local = estimate_dryrun_cost(DryRunConfig(data=str(data), model="local:builtin-tiny"), EXACT)
    assert not local.paid and local.cost.total_usd == 0.0


# --- grading overlaps generation --------------------------------------------------------------


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
