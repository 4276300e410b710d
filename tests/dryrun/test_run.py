"""The dry-run engine end to end, against the HTTP fakes: exact figures, sampling, estimates."""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from ftwizard.dryrun.cost import estimate_dryrun_cost
from ftwizard.dryrun.engine import DryRun, run_dryrun
from ftwizard.dryrun.report import DryRunConfig
from ftwizard.dryrun.sampling import sample_rows
from ftwizard.errors import InputError
from ftwizard.graders.loading import parse_grader
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from tests.dryrun.helpers import (
    EXACT,
    FAST,
    MODEL,
    config,
    row_of,
)
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer

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
        DryRunConfig(data=str(data), model=f"openai:{MODEL}", samples=20, samples_per_prompt=1),
        EXACT,
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
