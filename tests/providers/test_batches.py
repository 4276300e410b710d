"""AnthropicBatchRunner against the fake Message Batches endpoints."""

from __future__ import annotations

import pytest

from ftwizard.providers.anthropic.batches import AnthropicBatchRunner, BatchStatus
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply

FAST = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02)
MODEL = "claude-haiku-4-5"


def ask(text: str, **fields: object) -> GenerationRequest:
    return GenerationRequest(
        model=MODEL,
        messages=[
            ChatMessage(role="system", content="Relabel."),
            ChatMessage(role="user", content=text),
        ],
        **fields,  # type: ignore[arg-type]
    )


async def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def runner(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AnthropicBatchRunner:
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    provider = AnthropicChatProvider(base_url=anthropic_server.base_url, retry=FAST)
    return AnthropicBatchRunner(provider, poll_interval_s=0.0)


async def test_run_submits_polls_and_returns_results_by_custom_id(
    runner: AnthropicBatchRunner,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.batch_polls_to_end = 3
    anthropic_server.batch_item_errors["row-2"] = "prompt is too long"
    anthropic_server.reply_fn = lambda params: MessageReply(
        params["messages"][-1]["content"].upper(), input_tokens=7, output_tokens=1
    )
    statuses: list[BatchStatus] = []
    results = await runner.run(
        [("row-1", ask("cat", temperature=0.0)), ("row-2", ask("dog")), ("row-3", ask("eel"))],
        on_status=statuses.append,
        sleep=no_sleep,
    )
    assert [s.processing_status for s in statuses] == ["in_progress", "in_progress", "ended"]
    assert statuses[-1].succeeded == 2 and statuses[-1].errored == 1
    assert results["row-1"].generation is not None
    assert results["row-1"].generation.text == "CAT"
    assert results["row-1"].generation.input_tokens == 7
    assert results["row-3"].status == "succeeded"
    assert results["row-2"].status == "errored"
    assert results["row-2"].error == "invalid_request_error: prompt is too long"
    sent = anthropic_server.batches[statuses[-1].id].requests
    assert sent[0]["params"]["system"] == "Relabel."
    assert sent[0]["params"]["temperature"] == 0.0
    assert "extra_body" not in sent[0]["params"]


async def test_submit_is_retried_only_when_the_server_refused_it(
    runner: AnthropicBatchRunner,
    anthropic_server: FakeAnthropicServer,
) -> None:
    path = "/v1/messages/batches"
    anthropic_server.fail_next(529, path=path)
    batch_id = await runner.submit([("a", ask("x"))])
    assert batch_id in anthropic_server.batches
    anthropic_server.fail_next(500, path=path)
    with pytest.raises(ProviderError, match="may have been created") as caught:
        await runner.submit([("b", ask("y"))])
    assert caught.value.attempts == 1
    assert len(anthropic_server.requests_to(path, "POST")) == 3


async def test_bad_custom_ids_and_empty_submissions_are_refused_before_sending(
    runner: AnthropicBatchRunner,
    anthropic_server: FakeAnthropicServer,
) -> None:
    with pytest.raises(ValueError, match="1-64 letters"):
        await runner.submit([("has space", ask("x"))])
    with pytest.raises(ValueError, match="appears twice"):
        await runner.submit([("a", ask("x")), ("a", ask("y"))])
    with pytest.raises(ValueError, match="at least one"):
        await runner.submit([])
    assert anthropic_server.requests == []


async def test_wait_gives_up_after_max_wait(
    runner: AnthropicBatchRunner,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.batch_polls_to_end = 10_000
    runner.max_wait_s = 0.0
    batch_id = await runner.submit([("a", ask("x"))])
    with pytest.raises(ProviderError, match="has not ended"):
        await runner.wait(batch_id, sleep=no_sleep)
    canceled = await runner.cancel(batch_id)
    assert canceled.processing_status == "canceling"
