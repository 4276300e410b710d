"""Group dry run (K answers per prompt): exact figures on a fake with known per-prompt odds."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path

import pytest

from ftwizard.dryrun.engine import DryRun
from ftwizard.dryrun.groups import drop_prompts, group_stats
from ftwizard.dryrun.report import DryRunConfig, DryRunProgress
from ftwizard.errors import InputError
from ftwizard.providers.batch_journal import Journal
from tests.dryrun.helpers import EXACT, config, provider_for, row_of, write_data
from tests.dryrun.test_batch import Crash, NoSleep
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply
from tests.fakes.openai_server import FakeOpenAIServer

K = 4
N = 40


class KnownOdds:
    """Answers prompt i right on exactly ``right(i)`` of its K calls: a known probability."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.calls: Counter[int] = Counter()
        self.lock = threading.Lock()

    def right(self, i: int) -> int:
        return i % (self.k + 1)

    def answer(self, i: int) -> str:
        with self.lock:
            seen = self.calls[i]
            self.calls[i] += 1
        return f"A{i}" if seen < self.right(i) else "wrong"


def expected_std(k: int) -> float:
    # Sample std (ddof=1) of c ones and k-c zeros, averaged over c = 0..k.
    stds = [math.sqrt(c * (k - c) / (k * (k - 1))) for c in range(k + 1)]
    return math.fsum(stds) / len(stds)


async def test_group_figures_are_exact_overall_and_per_topic(
    openai_env: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = write_data(tmp_path / "data.jsonl", N)
    odds = KnownOdds(K)
    openai_env.reply_fn = lambda body: odds.answer(row_of(body))
    cfg = config(data, openai_env, samples=N, samples_per_prompt=K)
    report = await DryRun(cfg, EXACT, provider=provider_for(openai_env)).run()
    bodies = openai_env.chat_bodies()
    assert len(bodies) == N * K and set(odds.calls.values()) == {K}
    # No temperature given: the training temperature, so the K answers can differ.
    assert {b["temperature"] for b in bodies} == {1.0}
    g = report.groups
    assert g is not None and (g.k, g.groups) == (K, N)
    # right(i) = i % 5: 0 (all fail) and 4 (all pass) are 2 prompts in 5.
    assert (g.zero_variance_pct, g.all_fail_pct, g.all_pass_pct) == (40.0, 20.0, 20.0)
    assert g.mean_within_std == pytest.approx(expected_std(K))
    assert (g.pass_at_1_pct, g.pass_at_k_pct) == (50.0, 80.0)
    assert g.never_solved == [i + 1 for i in range(N) if i % 5 == 0]
    assert g.always_solved == [i + 1 for i in range(N) if i % 5 == 4]
    # Each topic (i % 4) holds every residue of i % 5 twice: the same figures.
    assert set(report.groups_per_topic) == {"math", "geo", "bio", "art"}
    for topic in report.groups_per_topic.values():
        assert topic.groups == 10 and topic.zero_variance_pct == 40.0
    assert report.stats.n == N * K
    assert report.to_cli_json()["groups"] == {
        "k": K,
        "zero_variance_pct": 40.0,
        "all_fail_pct": 20.0,
        "all_pass_pct": 20.0,
        "mean_within_std": pytest.approx(expected_std(K)),
        "pass_at_1_pct": 50.0,
        "pass_at_k_pct": 80.0,
    }
    rules = {r.rule: r.level for r in report.verdict.reasons}
    assert rules["G1"] == "note"


def test_k_defaults_to_four_for_rft_and_one_for_sft(tmp_path: Path) -> None:
    rft = DryRunConfig(data="d.jsonl", model="local:builtin-tiny")
    sft = DryRunConfig(data="d.jsonl", model="local:builtin-tiny", method="sft")
    assert (rft.k, sft.k) == (4, 1)
    assert (rft.sampling_temperature, sft.sampling_temperature) == (1.0, None)
    assert DryRunConfig(data="d", model="local:x", temperature=0.3).sampling_temperature == 0.3


def test_group_stats_leave_out_incomplete_groups_and_k1() -> None:
    assert group_stats([(1, [1.0])], 1, binary=True) is None
    g = group_stats([(1, [1.0, 1.0]), (2, [0.0]), (3, [0.5, 0.5])], 2, binary=False)
    assert g is not None and g.groups == 2
    # A constant 0.5 is flat but neither a failure nor a pass.
    assert (g.zero_variance_pct, g.all_fail_pct, g.all_pass_pct) == (100.0, 0.0, 50.0)
    assert g.pass_at_k_pct is None and g.always_solved == [1] and g.never_solved == []


def test_dropping_flat_prompts_writes_a_new_file_and_keeps_the_original(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.jsonl", 6)
    before = data.read_text()
    out = tmp_path / "signal.jsonl"
    assert drop_prompts(data, [1, 4], out) == 4
    assert data.read_text() == before
    kept = [json.loads(line)["answer"] for line in out.read_text().splitlines()]
    assert kept == ["A1", "A2", "A4", "A5"]
    with pytest.raises(InputError, match="already exists"):
        drop_prompts(data, [1], out)
    with pytest.raises(InputError, match="JSONL"):
        drop_prompts(tmp_path / "data.csv", [1], tmp_path / "x.csv")


# --- batch mode with K > 1 ------------------------------------------------------------------


async def test_k_answers_in_batch_mode_survive_a_crash_after_submission(
    anthropic_env: FakeAnthropicServer, tmp_path: Path
) -> None:
    k, n = 2, 30
    data = write_data(tmp_path / "data.jsonl", n)
    odds = KnownOdds(k)
    anthropic_env.reply_fn = lambda params: MessageReply(
        odds.answer(row_of(params)), input_tokens=10, output_tokens=2
    )
    anthropic_env.batch_polls_to_end = 3
    journal = tmp_path / "journal.jsonl"

    def build() -> DryRun:
        cfg = DryRunConfig(
            data=str(data),
            model="anthropic:claude-haiku-4-5",
            base_url=anthropic_env.base_url,
            samples=n,
            samples_per_prompt=k,
            batch=True,
            poll_interval_s=60.0,
        )
        return DryRun(cfg, EXACT, journal=journal, sleep=NoSleep())

    def die_once_submitted(progress: DryRunProgress) -> None:
        if progress.batch_id is not None:
            raise Crash(progress.batch_id)

    with pytest.raises(Crash):
        await build().run(on_progress=die_once_submitted)
    created = anthropic_env.requests_to("/v1/messages/batches", "POST")
    assert len(created) == 1 and len(created[0].json()["requests"]) == n * k
    report = await build().run()
    assert len(anthropic_env.requests_to("/v1/messages/batches", "POST")) == 1
    assert len(Journal(journal).load().generations) == n * k
    g = report.groups
    assert g is not None and (g.k, g.groups) == (2, n)
    # right(i) = i % 3 of 2: 0 all fail, 2 all pass, 1 split.
    assert (g.all_fail_pct, g.all_pass_pct) == pytest.approx((100 / 3, 100 / 3))
    assert g.pass_at_k_pct == pytest.approx(200 / 3)
