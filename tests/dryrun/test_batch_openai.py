"""Batch mode of the dry run on the OpenAI Batch API (``/v1/files`` + ``/v1/batches`` on the
fake): the same figures as direct calls, half the price, one batch across a crash, item errors
and cancellation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftwizard.dryrun.engine import DryRun
from ftwizard.dryrun.report import DryRunConfig, DryRunProgress
from ftwizard.providers.batch_journal import Journal
from ftwizard.providers.openai.batches import OpenAIBatchRunner
from ftwizard.providers.openai.http import LeanOpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.dryrun.helpers import EXACT, row_of, write_data
from tests.dryrun.test_batch import Crash, NoSleep, figures
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer

MODEL = "gpt-4.1-mini-2025-04-14"
N = 40
BATCHES = "/v1/batches"


def student(body: dict[str, Any]) -> ChatReply:
    # Every fourth row right; fixed token counts make usage and cost exact.
    i = row_of(body)
    return ChatReply(f"A{i}" if i % 4 == 0 else "no", prompt_tokens=12, completion_tokens=3)


def config(data: Path, server: FakeOpenAIServer, **fields: Any) -> DryRunConfig:
    return DryRunConfig(
        data=str(data),
        model=f"openai:{MODEL}",
        base_url=server.v1_url,
        samples=N,
        poll_interval_s=30.0,
        **{"samples_per_prompt": 1, **fields},
    )


def batch_run(data: Path, server: FakeOpenAIServer, journal: Path | None, sleep: NoSleep) -> DryRun:
    return DryRun(config(data, server, batch=True), EXACT, journal=journal, sleep=sleep)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 100)


async def test_openai_batch_gives_the_figures_of_direct_calls_at_half_the_price(
    openai_env: FakeOpenAIServer, data: Path, tmp_path: Path
) -> None:
    openai_env.reply_fn = student
    openai_env.openai_batch_polls_to_end = 3
    direct = await DryRun(config(data, openai_env), EXACT).run()
    assert len(openai_env.chat_bodies()) == N

    sleep = NoSleep()
    seen: list[DryRunProgress] = []
    report = await batch_run(data, openai_env, tmp_path / "j.jsonl", sleep).run(
        on_progress=seen.append
    )
    assert len(openai_env.chat_bodies()) == N  # no direct call on top of the direct run's
    created = openai_env.requests_to(BATCHES, "POST")
    assert len(created) == 1
    body = created[0].json()
    assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"
    uploaded = openai_env.tuning.files[body["input_file_id"]]
    assert uploaded.purpose == "batch" and len(uploaded.data.splitlines()) == N
    assert figures(report) == figures(direct)
    assert report.stats.n == N and report.stats.mean == pytest.approx(0.25)
    assert report.batch_ids == list(openai_env.openai_batches)
    assert sleep.pauses == [30.0, 30.0]
    statuses = [(p.batch_status, p.batch_finished) for p in seen if p.batch_id is not None]
    assert statuses[0] == ("in_progress", 0) and statuses[-1] == ("ended", N)
    assert direct.cost.generation_usd is not None and report.cost.generation_usd is not None
    assert report.cost.generation_usd == pytest.approx(direct.cost.generation_usd / 2)


async def test_openai_restart_reattaches_and_errored_items_are_asked_again(
    openai_env: FakeOpenAIServer, data: Path, tmp_path: Path
) -> None:
    openai_env.reply_fn = student
    openai_env.openai_batch_polls_to_end = 3
    journal = tmp_path / "dryrun.journal.jsonl"

    def die_once_submitted(progress: DryRunProgress) -> None:
        if progress.batch_id is not None:
            raise Crash(progress.batch_id)

    with pytest.raises(Crash):
        await batch_run(data, openai_env, journal, NoSleep()).run(on_progress=die_once_submitted)
    ids = next(iter(Journal(journal).load().open_batches.values())).request_ids
    openai_env.openai_batch_item_errors[ids[7]] = "This model's maximum context length is 8"

    report = await batch_run(data, openai_env, journal, NoSleep()).run()
    assert len(openai_env.requests_to(BATCHES, "POST")) == 1
    assert report.stats.n == N - 1 and report.generation_failures == 1
    assert "maximum context length" in report.errors[0].message
    assert openai_env.chat_bodies() == []

    openai_env.openai_batch_item_errors.clear()
    again = await batch_run(data, openai_env, journal, NoSleep()).run()
    created = openai_env.requests_to(BATCHES, "POST")
    assert len(created) == 2 and again.reused == N - 1
    resent = openai_env.tuning.files[created[1].json()["input_file_id"]].data.splitlines()
    assert len(resent) == 1 and ids[7].encode() in resent[0]
    assert again.stats.n == N and again.errors == []


async def test_openai_cancel_while_waiting_cancels_the_batch(
    openai_env: FakeOpenAIServer, data: Path
) -> None:
    openai_env.reply_fn = student
    openai_env.openai_batch_polls_to_end = 5
    holder: list[DryRun] = []

    class CancelOnFirstPause(NoSleep):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            holder[0].cancel()

    dry = batch_run(data, openai_env, None, CancelOnFirstPause())
    holder.append(dry)
    report = await dry.run()
    (batch_id,) = openai_env.openai_batches
    assert len(openai_env.requests_to(f"{BATCHES}/{batch_id}/cancel", "POST")) == 1
    assert openai_env.openai_batches[batch_id].status == "cancelled"
    assert report.cancelled and report.stats.n == 0 and report.errors == []


async def test_a_batch_that_fails_validation_errors_every_item(
    openai_env: FakeOpenAIServer,
) -> None:
    from ftwizard.providers.base import ChatMessage, GenerationRequest

    provider = LeanOpenAIChatProvider(
        base_url=openai_env.v1_url, compatible=True, retry=RetryPolicy(max_attempts=1)
    )
    runner = OpenAIBatchRunner(provider, poll_interval_s=0.0)
    ask = [ChatMessage(role="user", content="Q1")]
    # Two models in one file: the fake (like OpenAI) fails the batch at validation.
    batch_id = await runner.submit(
        [
            ("a", GenerationRequest(model=MODEL, messages=ask)),
            ("b", GenerationRequest(model="gpt-4.1-2025-04-14", messages=ask)),
        ]
    )
    status = await runner.wait(batch_id)
    # Like OpenAI's, a batch failed at validation counts no requests: it ran none.
    assert status.ended and status.succeeded == 0
    results = await runner.results(batch_id)
    assert {k: v.status for k, v in results.items()} == {"a": "errored", "b": "errored"}
    assert "same model" in (results["a"].error or "")
    await provider.aclose()
