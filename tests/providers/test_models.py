"""Model strings (provider:NAME) and the providers they build."""

from __future__ import annotations

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.models import (
    build_generation_provider,
    close_provider,
    credential_problem,
    parse_model,
)
from ftwizard.providers.openai.http import LeanOpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from ftwizard.providers.vertex.chat import VertexChatProvider
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer

FAST = RetryPolicy(initial_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


@pytest.mark.parametrize(
    ("spec", "provider", "name"),
    [
        ("openai:gpt-4.1-mini", "openai", "gpt-4.1-mini"),
        ("openai:ft:gpt-4o-mini:org::abc123", "openai", "ft:gpt-4o-mini:org::abc123"),
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("vertex:gemini-2.5-flash", "vertex", "gemini-2.5-flash"),
        ("local:builtin-tiny", "local", "builtin-tiny"),
        (" local:/models/my model ", "local", "/models/my model"),
    ],
)
def test_parse_model(spec: str, provider: str, name: str) -> None:
    ref = parse_model(spec)
    assert (ref.provider, ref.name) == (provider, name)
    assert ref.spec == f"{provider}:{name}"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gpt-4o", "did you mean openai:gpt-4o?"),
        ("claude-sonnet-4", "did you mean anthropic:claude-sonnet-4?"),
        ("gemini-2.5-pro", "did you mean vertex:gemini-2.5-pro?"),
        ("azure:gpt-4o", "must be one of openai:NAME | anthropic:NAME"),
        ("openai:", "has no name"),
        ("", "must be one of"),
    ],
)
def test_parse_model_rejects_with_a_hint(spec: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        parse_model(spec)
    assert expected in str(info.value)
    assert info.value.field == "--model"
    assert info.value.exit_code == 2


def test_base_url_checks() -> None:
    assert parse_model("openai:m", base_url="http://127.0.0.1:8000/v1").base_url is not None
    with pytest.raises(InputError, match="http:// or https://"):
        parse_model("openai:m", base_url="127.0.0.1:8000")
    with pytest.raises(InputError, match="does not apply to local"):
        parse_model("local:builtin-tiny", base_url="http://127.0.0.1:8000/v1")


def test_builds_the_right_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    openai = build_generation_provider(parse_model("openai:gpt-4.1-mini"))
    assert isinstance(openai, LeanOpenAIChatProvider)
    assert (openai.name, openai.compatible) == ("openai", False)
    vllm = build_generation_provider(parse_model("openai:qwen", base_url="http://h:8000/v1"))
    assert isinstance(vllm, LeanOpenAIChatProvider)
    assert (vllm.name, vllm.compatible, vllm.endpoint()) == (
        "openai-compatible",
        True,
        "http://h:8000/v1",
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    assert not build_generation_provider(parse_model("openai:gpt-4o")).compatible  # type: ignore[attr-defined]
    assert isinstance(
        build_generation_provider(parse_model("anthropic:claude-haiku-4-5")), AnthropicChatProvider
    )
    assert isinstance(
        build_generation_provider(parse_model("vertex:gemini-2.5-flash")), VertexChatProvider
    )
    assert isinstance(
        build_generation_provider(parse_model("local:builtin-tiny")), LocalChatProvider
    )


def test_credential_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "OPENAI_API_KEY" in str(credential_problem(parse_model("openai:gpt-4o")))
    assert credential_problem(parse_model("openai:q", base_url="http://127.0.0.1:1/v1")) is None
    assert "ANTHROPIC_API_KEY" in str(credential_problem(parse_model("anthropic:claude-x")))
    assert "GOOGLE_CLOUD_PROJECT" in str(credential_problem(parse_model("vertex:gemini-x")))
    assert credential_problem(parse_model("local:builtin-tiny")) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    assert credential_problem(parse_model("openai:gpt-4o")) is None
    # A project alone is not enough: Vertex needs Google credentials too (ADC or a token).
    adc = credential_problem(parse_model("vertex:gemini-x"))
    assert adc is not None and "(ADC)" in adc and "gcloud auth application-default login" in adc
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.token-for-tests")
    assert credential_problem(parse_model("vertex:gemini-x")) is None


def _ask(text: str, model: str) -> GenerationRequest:
    return GenerationRequest(
        model=model, messages=[ChatMessage(role="user", content=text)], max_tokens=50
    )


async def test_openai_string_reaches_the_fake(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key or "")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.v1_url)
    ref = parse_model("openai:gpt-4.1-mini-2025-04-14")
    provider = build_generation_provider(ref, retry=FAST)
    reply = await provider.generate(_ask("hi", ref.name))
    await close_provider(provider)
    assert reply.text == "echo: hi"
    assert (reply.input_tokens, reply.output_tokens) == (1, 2)
    body = openai_server.chat_bodies()[0]
    # A compatible server (any base URL but OpenAI's) gets the portable max_tokens.
    assert body["max_tokens"] == 50
    assert openai_server.requests[0].bearer_token() == openai_server.api_key


async def test_keyless_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(api_key=None, models=None) as server:
        assert isinstance(server, FakeOpenAIServer)
        ref = parse_model("openai:llama3", base_url=server.v1_url)
        provider = build_generation_provider(ref, retry=FAST)
        reply = await provider.generate(_ask("ping", "llama3"))
        await close_provider(provider)
        assert reply.text == "echo: ping"
        assert "authorization" not in server.requests[0].headers


async def test_lean_openai_survives_faults_and_learns_quirks(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key or "")
    # Five faults in a row, then the answer: one attempt more than the default policy allows.
    policy = RetryPolicy(max_attempts=6, initial_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
    provider = LeanOpenAIChatProvider(base_url=openai_server.v1_url, retry=policy)
    openai_server.fail_next(429, headers={"retry-after": "0.01"})
    openai_server.fail_next(500)
    openai_server.drop_next()
    openai_server.inject(FakeResponse(200, "{not json"))
    openai_server.inject(FakeResponse(200, {"object": "chat.completion"}))
    openai_server.unsupported_params["o4-mini-2025-04-16"] = {"temperature"}
    request = _ask("x", "o4-mini-2025-04-16").model_copy(update={"temperature": 0.5})
    reply = await provider.generate(request)
    assert reply.text == "echo: x"
    bodies = openai_server.chat_bodies()
    assert "temperature" not in bodies[-1]
    assert bodies[-1]["max_completion_tokens"] == 50
    await provider.aclose()


async def test_lean_openai_errors_are_redacted_provider_errors(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-0123456789abcdefghijklmnop"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    provider = LeanOpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    with pytest.raises(ProviderError) as info:
        await provider.generate(_ask("x", "gpt-4.1-mini-2025-04-14"))
    await provider.aclose()
    assert info.value.status_code == 401
    assert wrong not in str(info.value)
    assert "OPENAI_API_KEY" in str(info.value)


async def test_anthropic_and_vertex_strings_reach_their_fakes(
    anthropic_env: FakeAnthropicServer, vertex_env: FakeVertexServer
) -> None:
    for spec in ("anthropic:claude-haiku-4-5", "vertex:gemini-2.5-flash"):
        ref = parse_model(spec)
        provider = build_generation_provider(ref, retry=FAST)
        reply = await provider.generate(_ask("hello", ref.name))
        await close_provider(provider)
        assert reply.text == "echo: hello", spec
    assert len(anthropic_env.message_bodies()) == 1
    assert len(vertex_env.generate_bodies()) == 1


async def test_short_429s_do_not_stall_other_requests(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftwizard.providers.concurrency import generate_many

    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key or "")
    openai_server.delay_s = 0.05
    provider = LeanOpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    openai_server.fail_next(429, headers={"retry-after": "0.5"})
    requests = [_ask(f"q{i}", "gpt-4.1-mini-2025-04-14") for i in range(8)]
    finished: list[float] = []
    loop_time = __import__("time").monotonic
    start = loop_time()
    await generate_many(
        provider, requests, concurrency=4, on_result=lambda i, r: finished.append(loop_time())
    )
    await provider.aclose()
    # Seven answers come back long before the rate-limited request's 0.5 s wait is over.
    assert sorted(finished)[6] - start < 0.45
    assert len(openai_server.chat_bodies()) == 9


def test_the_first_retry_after_is_honoured_as_given_and_a_repeat_is_spread() -> None:
    from ftwizard.providers.openai.http import spread_retry_after

    assert spread_retry_after(None, 1) is None
    first = [spread_retry_after(0.4, 1) for _ in range(200)]
    later = [spread_retry_after(0.4, 2) for _ in range(200)]
    assert first == [0.4] * 200  # the first wait is the server's, nothing added
    assert all(0.4 <= w <= 0.8 for w in later)  # type: ignore[operator]
    assert max(later) > 0.5  # type: ignore[type-var]
    # A long wait is never stretched by more than a second.
    assert all(30.0 <= spread_retry_after(30.0, 3) <= 31.0 for _ in range(50))  # type: ignore[operator]


def test_plain_http_endpoints_skip_the_ca_bundle_and_https_keeps_it() -> None:
    import ssl

    from ftwizard.providers.openai.http import tls_verification

    assert tls_verification("https://api.openai.com/v1") is True
    local = tls_verification("http://127.0.0.1:8000/v1")
    assert isinstance(local, ssl.SSLContext)
    # Fail-closed: it verifies, and trusts no certificate.
    assert local.verify_mode is ssl.CERT_REQUIRED and local.check_hostname
    assert local.get_ca_certs() == []
