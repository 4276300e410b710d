"""generate_many: bounded in-flight requests, request order, progress, error handling."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

import pytest

from ftwizard.providers.base import ChatMessage, Generation, GenerationRequest, ProviderError
from ftwizard.providers.concurrency import BatchProgress, generate_many
from ftwizard.providers.openai.chat import OpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)
MODEL = "gpt-4.1-mini-2025-04-14"


def requests(n: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(model=MODEL, messages=[ChatMessage(role="user", content=f"q{i}")])
        for i in range(n)
    ]


@pytest.fixture
def provider(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> OpenAIChatProvider:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    return OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_in_flight_requests_never_exceed_the_bound(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
    concurrency: int,
) -> None:
    openai_server.delay_s = 0.05
    results = await generate_many(provider, requests(9), concurrency=concurrency)
    assert len(results) == 9
    assert openai_server.max_in_flight == concurrency


async def test_results_keep_request_order_when_replies_finish_out_of_order(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    rng = random.Random(7)
    delays = {f"q{i}": rng.uniform(0.0, 0.05) for i in range(12)}

    def slow_echo(body: dict[str, Any]) -> ChatReply:
        prompt = body["messages"][-1]["content"]
        # Sleeping in the handler thread makes later requests finish first.
        time.sleep(delays[prompt])
        return ChatReply(f"answer to {prompt}")

    openai_server.reply_fn = slow_echo
    finished: list[int] = []
    results = await generate_many(
        provider, requests(12), concurrency=6, on_result=lambda i, _r: finished.append(i)
    )
    assert [r.text for r in results] == [f"answer to q{i}" for i in range(12)]
    assert sorted(finished) == list(range(12))
    assert finished != list(range(12))


async def test_progress_counts_requests_and_tokens(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.reply_fn = lambda body: ChatReply("ok", prompt_tokens=10, completion_tokens=2)
    seen: list[BatchProgress] = []
    await generate_many(provider, requests(5), concurrency=2, on_progress=seen.append)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert seen[-1] == BatchProgress(done=5, total=5, failed=0, input_tokens=50, output_tokens=10)


async def test_failures_take_their_place_when_errors_are_returned(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    def fail_q2(body: dict[str, Any]) -> ChatReply | FakeResponse:
        if body["messages"][-1]["content"] == "q2":
            return openai_server.error_response(400, "bad prompt")
        return ChatReply("fine")

    openai_server.reply_fn = fail_q2
    seen: list[BatchProgress] = []
    results = await generate_many(
        provider, requests(4), concurrency=2, return_errors=True, on_progress=seen.append
    )
    assert [type(r) for r in results] == [Generation, Generation, ProviderError, Generation]
    assert seen[-1].failed == 1


async def test_first_failure_is_raised_when_errors_are_not_returned(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.reply_fn = lambda body: openai_server.error_response(400, "bad prompt")
    with pytest.raises(ProviderError, match="bad prompt"):
        await generate_many(provider, requests(6), concurrency=1)
    # The run stops at the first failure instead of sending the remaining five.
    assert len(openai_server.chat_bodies()) == 1


async def test_empty_input_and_bad_bound(provider: OpenAIChatProvider) -> None:
    assert await generate_many(provider, [], concurrency=4) == []
    with pytest.raises(ValueError, match="concurrency"):
        await generate_many(provider, requests(1), concurrency=0)


async def test_a_request_waiting_out_a_429_lends_its_slot_to_the_next(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    # One slot: q0 is told to come back in 0.5 s; q1 and q2 use the slot meanwhile.
    openai_server.fail_next(429, headers={"retry-after": "0.5"})
    finished: list[int] = []
    results = await generate_many(
        provider, requests(3), concurrency=1, on_result=lambda i, _r: finished.append(i)
    )
    assert [r.text for r in results] == ["echo: q0", "echo: q1", "echo: q2"]
    assert finished == [1, 2, 0]
    assert openai_server.max_in_flight == 1


class _CancelSwallowingProvider:
    """A provider whose client library turns a cancel into an error reply, as some do."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, request: GenerationRequest) -> Generation:
        self.calls += 1
        # Swallowed: the call ends as a failure instead.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
        raise ProviderError("Incorrect API key provided", provider="fake", status_code=401)


async def test_a_stop_asked_for_by_the_first_failure_sends_no_more_requests() -> None:
    """The dry run stops at its first 401 by cancelling the run; a library that swallows the
    cancel must not let the workers go on through every other request."""
    provider = _CancelSwallowingProvider()

    async def run() -> None:
        await generate_many(
            provider,  # type: ignore[arg-type]
            requests(40),
            concurrency=2,
            on_result=lambda index, result: run_task.cancel(),
            return_errors=True,
        )

    run_task = asyncio.create_task(run())
    with pytest.raises(asyncio.CancelledError):
        await run_task
    assert provider.calls <= 4  # the requests already under way, not 40
