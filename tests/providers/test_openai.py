"""OpenAIChatProvider against the fake OpenAI server over real HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError
from ftwizard.providers.openai.chat import (
    OpenAIChatProvider,
    is_reasoning_model,
    is_strict_schema,
    response_format_for,
)
from ftwizard.providers.retry import RetryEvent, RetryPolicy
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer

FAST = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02)
MODEL = "gpt-4.1-mini-2025-04-14"
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["score"],
    "additionalProperties": False,
}


def ask(text: str = "hello there", **fields: object) -> GenerationRequest:
    return GenerationRequest(
        model=str(fields.pop("model", MODEL)),
        messages=[ChatMessage(role="user", content=text)],
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def provider(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> OpenAIChatProvider:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    return OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)


def test_provider_satisfies_the_protocol(provider: OpenAIChatProvider) -> None:
    assert isinstance(provider, ChatProvider)


async def test_generate_returns_text_usage_and_finish_reason(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.reply_with(ChatReply("four", prompt_tokens=11, completion_tokens=3))
    result = await provider.generate(ask("what is 2+2?", max_tokens=20, temperature=0.3))
    assert result.text == "four"
    assert (result.input_tokens, result.output_tokens) == (11, 3)
    assert result.finish_reason == "stop"
    assert result.model == MODEL
    body = openai_server.chat_bodies()[0]
    assert body["messages"] == [{"role": "user", "content": "what is 2+2?"}]
    assert body["max_completion_tokens"] == 20
    assert "max_tokens" not in body
    assert body["temperature"] == 0.3


async def test_structured_output_sends_a_json_schema_response_format(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    result = await provider.generate(ask(json_schema=SCHEMA))
    assert json.loads(result.text) == {"score": 0.0}
    fmt = openai_server.chat_bodies()[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == SCHEMA
    assert fmt["json_schema"]["strict"] is True


def test_a_schema_that_allows_extra_properties_is_sent_non_strict() -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    nested = {
        "type": "object",
        "properties": {"inner": loose},
        "required": ["inner"],
        "additionalProperties": False,
    }
    assert is_strict_schema(SCHEMA)
    assert not is_strict_schema(loose)
    assert not is_strict_schema(nested)
    fmt = response_format_for({**loose, "title": "Judge verdict!"})
    assert fmt["json_schema"]["strict"] is False
    assert fmt["json_schema"]["name"] == "Judge_verdict_"


async def test_reasoning_models_get_max_completion_tokens_and_no_temperature(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    assert is_reasoning_model("o4-mini-2025-04-16")
    assert is_reasoning_model("ft:o4-mini-2025-04-16:org:x:abc")
    assert not is_reasoning_model("gpt-4.1-mini")
    await provider.generate(ask(model="o4-mini-2025-04-16", max_tokens=50, temperature=0.7))
    body = openai_server.chat_bodies()[0]
    assert body["max_completion_tokens"] == 50
    assert "temperature" not in body


async def test_a_model_that_rejects_temperature_is_retried_without_it_and_remembered(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.unsupported_params[MODEL] = {"temperature"}
    first = await provider.generate(ask("one", temperature=0.5))
    second = await provider.generate(ask("two", temperature=0.5))
    assert (first.text, second.text) == ("echo: one", "echo: two")
    bodies = openai_server.chat_bodies()
    assert [("temperature" in b) for b in bodies] == [True, False, False]


async def test_compatible_servers_get_max_tokens_and_system_for_developer(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.api_key = None  # a keyless local server, like llama.cpp
    provider = OpenAIChatProvider(
        name="local", api_key_env=None, base_url=openai_server.v1_url, compatible=True, retry=FAST
    )
    request = GenerationRequest(
        model=MODEL,
        messages=[
            ChatMessage(role="developer", content="be terse"),
            ChatMessage(role="user", content="hi"),
        ],
        max_tokens=7,
    )
    assert (await provider.generate(request)).text == "echo: hi"
    body = openai_server.chat_bodies()[0]
    assert body["max_tokens"] == 7
    assert "max_completion_tokens" not in body
    assert body["messages"][0] == {"role": "system", "content": "be terse"}
    assert openai_server.requests[0].bearer_token() == "not-needed"


async def test_refusal_is_reported_as_text_with_finish_reason_refusal(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.reply_with(ChatReply(None, refusal="I can't help with that."))
    result = await provider.generate(ask(json_schema=SCHEMA))
    assert (result.text, result.finish_reason) == ("I can't help with that.", "refusal")


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(lambda s: s.fail_next(429, headers={"retry-after": "0.01"}), id="429"),
        pytest.param(lambda s: s.fail_next(429, headers={"retry-after-ms": "10"}), id="429-ms"),
        pytest.param(lambda s: s.fail_next(500, times=2), id="500-twice"),
        pytest.param(lambda s: s.fail_next(503), id="503"),
        pytest.param(lambda s: s.fail_next(408), id="408"),
        pytest.param(lambda s: s.drop_next(), id="dropped-connection"),
    ],
)
async def test_transient_failures_are_retried_then_succeed(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    script: object,
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    events: list[RetryEvent] = []
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST, on_retry=events.append)
    script(openai_server)  # type: ignore[operator]
    result = await provider.generate(ask("again"))
    assert result.text == "echo: again"
    assert len(openai_server.chat_bodies()) == len(events) + 1
    assert events and events[0].attempt == 1


async def test_retry_after_header_sets_the_wait(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    events: list[RetryEvent] = []
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST, on_retry=events.append)
    openai_server.fail_next(429, headers={"retry-after-ms": "150"})
    await provider.generate(ask())
    assert [(e.status_code, e.delay_s) for e in events] == [(429, 0.15)]


async def test_exhausted_retries_raise_a_redacted_provider_error(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    openai_server.fail_next(
        429,
        times=3,
        headers={"retry-after": "0"},
        message=f"Rate limit reached for key {openai_server.api_key}",
    )
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask())
    error = caught.value
    assert len(openai_server.chat_bodies()) == 3
    assert (error.status_code, error.attempts, error.provider, error.model) == (
        429,
        3,
        "openai",
        MODEL,
    )
    assert openai_server.api_key not in str(error)
    assert "[redacted:OPENAI_API_KEY]" in str(error)
    assert "Rate limited" in str(error)
    assert "HTTP 429" in str(error)


async def test_a_retry_after_beyond_the_limit_fails_at_once_with_the_wait(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    openai_server.fail_next(429, headers={"retry-after": "3600"})
    with pytest.raises(ProviderError, match="wait 3600 s") as caught:
        await provider.generate(ask())
    assert caught.value.attempts == 1


async def test_wrong_key_is_not_retried_and_the_echoed_key_is_redacted(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "sk-wrong-key-ABCDEFGHIJKLMNOPQRSTUVWX"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask())
    message = str(caught.value)
    assert len(openai_server.requests) == 1
    assert caught.value.status_code == 401
    assert wrong not in message
    assert "Check that OPENAI_API_KEY holds a valid key" in message


async def test_unknown_model_says_to_check_the_model_and_base_url(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(model="gpt-nonexistent"))
    message = str(caught.value)
    assert caught.value.status_code == 404
    assert "gpt-nonexistent" in message
    assert "base URL" in message and "ends in /v1" in message
    assert len(openai_server.requests) == 1


async def test_missing_key_fails_before_any_request(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MY_TEAM_OPENAI_KEY", raising=False)
    provider = OpenAIChatProvider(
        api_key_env="MY_TEAM_OPENAI_KEY", base_url=openai_server.v1_url, retry=FAST
    )
    with pytest.raises(ProviderError, match="MY_TEAM_OPENAI_KEY is not set"):
        await provider.generate(ask())
    assert openai_server.requests == []


async def test_key_is_read_from_the_environment_at_call_time(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    with pytest.raises(ProviderError):
        await provider.generate(ask())
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    assert (await provider.generate(ask("now"))).text == "echo: now"


async def test_unreachable_server_names_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        url = server.v1_url  # a port that is free again once the server stops
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unreachable-0123456789abcdef")
    provider = OpenAIChatProvider(base_url=url, retry=FAST)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask())
    assert caught.value.attempts == 3
    assert f"Could not reach {url}" in str(caught.value)


async def test_a_non_retryable_reply_stops_at_once(
    provider: OpenAIChatProvider,
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.inject(
        FakeResponse(503, {"error": {"message": "down"}}, headers={"x-should-retry": "false"})
    )
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask())
    assert caught.value.attempts == 1
    assert not caught.value.retryable


def test_one_provider_serves_successive_event_loops(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The CLI calls asyncio.run more than once; a client bound to a closed loop would fail.
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    first = asyncio.run(provider.generate(ask("one")))
    second = asyncio.run(provider.generate(ask("two")))
    assert (first.text, second.text) == ("echo: one", "echo: two")


def test_imports_stay_light() -> None:
    # `ftwizard --help` imports the providers package; the SDKs load only on first use.
    code = (
        "import sys, ftwizard.providers.models, ftwizard.providers.concurrency, "
        "ftwizard.providers.anthropic.batches; "
        "print(sorted(m for m in ('openai', 'anthropic', 'httpx2', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_a_server_that_rejects_max_tokens_gets_max_completion_tokens(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.api_key = None
    openai_server.unsupported_params[MODEL] = {"max_tokens"}
    provider = OpenAIChatProvider(
        api_key_env=None, base_url=openai_server.v1_url, compatible=True, retry=FAST
    )
    assert (await provider.generate(ask("x", max_tokens=9))).text == "echo: x"
    bodies = openai_server.chat_bodies()
    assert [b.get("max_tokens") for b in bodies] == [9, None]
    assert bodies[1]["max_completion_tokens"] == 9
