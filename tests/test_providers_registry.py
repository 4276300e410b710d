"""ChatProviderConfig and build_chat_provider: secret-free config, keys read at call time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ftwizard.providers.anthropic_chat import AnthropicChatProvider
from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.openai_chat import OpenAIChatProvider
from ftwizard.providers.registry import ChatProviderConfig, build_chat_provider
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer


def hello(model: str) -> GenerationRequest:
    return GenerationRequest(model=model, messages=[ChatMessage(role="user", content="hello")])


def test_each_kind_builds_its_provider() -> None:
    openai = build_chat_provider(ChatProviderConfig(kind="openai", model="gpt-4.1"))
    claude = build_chat_provider(ChatProviderConfig(kind="anthropic", model="claude-opus-4-7"))
    local = build_chat_provider(
        ChatProviderConfig(
            kind="openai_compatible", model="qwen", base_url="http://127.0.0.1:8000/v1"
        )
    )
    assert isinstance(openai, OpenAIChatProvider) and openai.api_key_env == "OPENAI_API_KEY"
    assert isinstance(claude, AnthropicChatProvider) and claude.api_key_env == "ANTHROPIC_API_KEY"
    assert isinstance(local, OpenAIChatProvider)
    assert (local.compatible, local.api_key_env, local.name) == (True, None, "openai-compatible")


def test_a_key_in_place_of_a_variable_name_is_refused_without_echoing_it() -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"
    with pytest.raises(ValidationError) as caught:
        ChatProviderConfig(kind="openai", model="gpt-4.1", api_key_env=key)
    assert "NAME of an environment variable" in str(caught.value)
    assert key not in str(caught.value)


def test_config_rejects_bad_urls_and_missing_compatible_url() -> None:
    with pytest.raises(ValidationError, match="http:// or https://"):
        ChatProviderConfig(kind="openai", model="m", base_url="localhost:8000")
    with pytest.raises(ValidationError, match="needs base_url"):
        ChatProviderConfig(kind="openai_compatible", model="m")
    with pytest.raises(ValidationError):
        ChatProviderConfig(kind="gemini", model="m")  # type: ignore[arg-type]


def test_key_problem_reports_the_missing_variable() -> None:
    config = ChatProviderConfig(kind="anthropic", model="claude", api_key_env="TEAM_KEY")
    assert config.key_problem({}) == "the environment variable TEAM_KEY is not set"
    assert config.key_problem({"TEAM_KEY": "  "}) == "the environment variable TEAM_KEY is not set"
    assert config.key_problem({"TEAM_KEY": "sk-ant-something"}) is None
    keyless = ChatProviderConfig(
        kind="openai_compatible", model="m", base_url="http://127.0.0.1:1/v1"
    )
    assert keyless.key_problem({}) is None


def test_config_round_trips_through_json_without_any_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-be-serialised-0123456789")
    config = ChatProviderConfig(kind="openai", model="gpt-4.1", api_key_env="OPENAI_API_KEY")
    dumped = config.model_dump_json()
    assert "sk-should-never" not in dumped
    assert ChatProviderConfig.model_validate_json(dumped) == config


async def test_built_providers_call_the_fakes(
    openai_server: FakeOpenAIServer,
    anthropic_server: FakeAnthropicServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert openai_server.api_key and anthropic_server.api_key
    monkeypatch.setenv("OPENAI_KEY_FOR_TEST", openai_server.api_key)
    monkeypatch.setenv("CLAUDE_KEY_FOR_TEST", anthropic_server.api_key)
    openai = build_chat_provider(
        ChatProviderConfig(
            kind="openai",
            model="gpt-4.1-mini-2025-04-14",
            base_url=openai_server.v1_url,
            api_key_env="OPENAI_KEY_FOR_TEST",
        )
    )
    claude = build_chat_provider(
        ChatProviderConfig(
            kind="anthropic",
            model="claude-haiku-4-5",
            base_url=anthropic_server.base_url,
            api_key_env="CLAUDE_KEY_FOR_TEST",
        )
    )
    assert (await openai.generate(hello("gpt-4.1-mini-2025-04-14"))).text == "echo: hello"
    assert (await claude.generate(hello("claude-haiku-4-5"))).text == "echo: hello"


async def test_keyless_compatible_server_and_configured_but_missing_key(
    openai_server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openai_server.api_key = None
    keyless = build_chat_provider(
        ChatProviderConfig(kind="openai_compatible", model="qwen", base_url=openai_server.v1_url)
    )
    openai_server.models = None
    assert (await keyless.generate(hello("qwen"))).text == "echo: hello"
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    together = build_chat_provider(
        ChatProviderConfig(
            kind="openai_compatible",
            model="qwen",
            base_url=openai_server.v1_url,
            api_key_env="TOGETHER_API_KEY",
        )
    )
    with pytest.raises(ProviderError, match="TOGETHER_API_KEY is not set"):
        await together.generate(hello("qwen"))
