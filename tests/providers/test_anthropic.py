"""AnthropicChatProvider against the fake Anthropic server over real HTTP."""

from __future__ import annotations

import json

import pytest

from ftwizard.providers.anthropic.chat import DEFAULT_MAX_TOKENS, AnthropicChatProvider
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError
from ftwizard.providers.retry import RetryEvent, RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply

FAST = RetryPolicy(max_attempts=3, initial_delay_s=0.01, max_delay_s=0.02)
MODEL = "claude-sonnet-4-6"


def ask(*messages: tuple[str, str], **fields: object) -> GenerationRequest:
    return GenerationRequest(
        model=str(fields.pop("model", MODEL)),
        messages=[ChatMessage(role=role, content=text) for role, text in messages],  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def events() -> list[RetryEvent]:
    return []


@pytest.fixture
def provider(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
    events: list[RetryEvent],
) -> AnthropicChatProvider:
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    return AnthropicChatProvider(
        base_url=anthropic_server.base_url, retry=FAST, on_retry=events.append
    )


def test_provider_satisfies_the_protocol(provider: AnthropicChatProvider) -> None:
    assert isinstance(provider, ChatProvider)


async def test_system_and_developer_turns_go_to_system(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_with(MessageReply("Paris", input_tokens=21, output_tokens=2))
    result = await provider.generate(
        ask(
            ("system", "You are a geography tutor."),
            ("developer", "Answer in one word."),
            ("user", "Capital of France?"),
            max_tokens=16,
        )
    )
    assert (result.text, result.input_tokens, result.output_tokens) == ("Paris", 21, 2)
    assert result.finish_reason == "end_turn"
    body = anthropic_server.message_bodies()[0]
    assert body["system"] == "You are a geography tutor.\n\nAnswer in one word."
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert body["max_tokens"] == 16


async def test_key_is_sent_as_bearer_with_the_api_version(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    await provider.generate(ask(("user", "hi")))
    request = anthropic_server.requests[0]
    assert request.bearer_token() == anthropic_server.api_key
    assert request.headers["anthropic-version"]


async def test_max_tokens_defaults_because_the_api_requires_it(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    await provider.generate(ask(("user", "hi")))
    assert anthropic_server.message_bodies()[0]["max_tokens"] == DEFAULT_MAX_TOKENS


async def test_structured_output_uses_output_config(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": ["good", "bad"]}},
        "required": ["label"],
        "additionalProperties": False,
    }
    result = await provider.generate(ask(("user", "grade this"), json_schema=schema))
    assert json.loads(result.text) == {"label": "good"}
    body = anthropic_server.message_bodies()[0]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


async def test_temperature_goes_in_the_body_until_a_model_rejects_it(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    await provider.generate(ask(("user", "a"), temperature=0.0))
    anthropic_server.temperature_rejected.add("claude-opus-4-7")
    opus = "claude-opus-4-7"
    first = await provider.generate(ask(("user", "b"), temperature=0.0, model=opus))
    second = await provider.generate(ask(("user", "c"), temperature=0.0, model=opus))
    assert (first.text, second.text) == ("echo: b", "echo: c")
    bodies = anthropic_server.message_bodies()
    assert [b.get("temperature") for b in bodies] == [0.0, 0.0, None, None]


async def test_overloaded_529_is_retried(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
    events: list[RetryEvent],
) -> None:
    anthropic_server.fail_next(529, times=2)
    result = await provider.generate(ask(("user", "busy?")))
    assert result.text == "echo: busy?"
    assert [e.status_code for e in events] == [529, 529]


async def test_rate_limit_with_retry_after_then_success(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
    events: list[RetryEvent],
) -> None:
    anthropic_server.fail_next(429, headers={"retry-after": "0.05"})
    await provider.generate(ask(("user", "x")))
    assert [(e.status_code, e.delay_s) for e in events] == [(429, 0.05)]


async def test_dropped_connection_is_retried(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.drop_next()
    assert (await provider.generate(ask(("user", "x")))).text == "echo: x"
    assert len(anthropic_server.message_bodies()) == 2


async def test_persistent_overload_raises_a_redacted_provider_error(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    key = anthropic_server.api_key
    assert key is not None
    anthropic_server.fail_next(529, times=5, message=f"Overloaded (key {key})")
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(("user", "x")))
    message = str(caught.value)
    assert key not in message
    assert "[redacted:ANTHROPIC_API_KEY]" in message
    assert caught.value.attempts == 3
    assert "anthropic model 'claude-sonnet-4-6'" in message
    assert "overloaded" in message
    assert "HTTP 529" in message


async def test_bad_request_is_not_retried(
    provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    # Only an assistant turn: the fake, like the API, wants a user/assistant conversation.
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(("system", "only a system prompt")))
    assert caught.value.status_code == 400
    assert caught.value.attempts == 1
    assert "messages" in str(caught.value)


async def test_missing_key_names_the_variable(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider = AnthropicChatProvider(base_url=anthropic_server.base_url, retry=FAST)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(("user", "x")))
    assert "ANTHROPIC_API_KEY is not set" in str(caught.value)
    assert "export ANTHROPIC_API_KEY=" in str(caught.value)
    assert anthropic_server.requests == []


async def test_wrong_key_gets_an_auth_hint(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUDGE_KEY", "fake-wrong-anthropic-key-0123456789")
    provider = AnthropicChatProvider(
        api_key_env="JUDGE_KEY", base_url=anthropic_server.base_url, retry=FAST
    )
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(("user", "x")))
    assert caught.value.status_code == 401
    assert "Check that JUDGE_KEY holds a valid key" in str(caught.value)


async def test_a_base_url_with_v1_gets_a_hint_about_it(
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    provider = AnthropicChatProvider(base_url=f"{anthropic_server.base_url}/v1", retry=FAST)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(ask(("user", "x")))
    assert caught.value.status_code == 404
    assert "has no /v1" in str(caught.value)
    assert anthropic_server.requests[0].path == "/v1/v1/messages"
