"""VertexChatProvider (google-genai generate_content) against the fake Vertex server."""

from __future__ import annotations

import json

import pytest

from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.concurrency import generate_many
from ftwizard.providers.retry import RetryPolicy
from ftwizard.providers.vertex.chat import VertexChatProvider
from tests.fakes.http_server import FakeResponse
from tests.fakes.vertex_server import FakeVertexServer, GeminiReply

FAST = RetryPolicy(initial_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


def _request(text: str = "hello there", **kwargs: object) -> GenerationRequest:
    return GenerationRequest(
        model="gemini-2.5-flash",
        messages=[ChatMessage(role="user", content=text)],
        **kwargs,  # type: ignore[arg-type]
    )


def _provider(**kwargs: object) -> VertexChatProvider:
    return VertexChatProvider(retry=FAST, timeout_s=5, **kwargs)  # type: ignore[arg-type]


async def test_generate_sends_vertex_wire_format(vertex_env: FakeVertexServer) -> None:
    vertex_env.reply_with(GeminiReply("Paris", prompt_tokens=11, output_tokens=2))
    provider = _provider()
    request = GenerationRequest(
        model="gemini-2.5-flash",
        messages=[
            ChatMessage(role="system", content="Answer briefly."),
            ChatMessage(role="user", content="Capital of France?"),
            ChatMessage(role="assistant", content="Paris."),
            ChatMessage(role="user", content="Again?"),
        ],
        max_tokens=20,
        temperature=0.0,
    )
    reply = await provider.generate(request)
    await provider.aclose()
    assert (reply.text, reply.input_tokens, reply.output_tokens) == ("Paris", 11, 2)
    assert reply.finish_reason == "stop"
    [sent] = vertex_env.generate_requests()
    assert sent.path == (
        "/v1/projects/ftwizard-test/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    assert sent.bearer_token() == vertex_env.token
    body = sent.json()
    assert body["systemInstruction"]["parts"] == [{"text": "Answer briefly."}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {"temperature": 0.0, "maxOutputTokens": 20}


async def test_structured_output_uses_json_schema(vertex_env: FakeVertexServer) -> None:
    schema = {
        "type": "object",
        "properties": {"score": {"type": "number", "minimum": 0}},
        "required": ["score"],
    }
    provider = _provider()
    reply = await provider.generate(_request(json_schema=schema))
    await provider.aclose()
    assert json.loads(reply.text) == {"score": 0}
    config = vertex_env.generate_bodies()[0]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == schema


async def test_429_retry_after_then_success(vertex_env: FakeVertexServer) -> None:
    vertex_env.fail_next(429, headers={"retry-after": "0.05"}, times=2)
    retries: list[float] = []
    provider = _provider(on_retry=lambda e: retries.append(e.delay_s))
    reply = await provider.generate(_request("again"))
    await provider.aclose()
    assert reply.text == "echo: again"
    assert retries == [0.05, 0.05]
    assert len(vertex_env.generate_requests()) == 3


async def test_5xx_dropped_connection_and_malformed_body_are_retried(
    vertex_env: FakeVertexServer,
) -> None:
    vertex_env.fail_next(503)
    vertex_env.drop_next()
    vertex_env.inject(FakeResponse(200, "<html>gateway</html>"))
    provider = _provider()
    reply = await provider.generate(_request("survive"))
    await provider.aclose()
    assert reply.text == "echo: survive"
    assert len(vertex_env.generate_requests()) == 4


async def test_timeout_is_retried(vertex_env: FakeVertexServer) -> None:
    vertex_env.delay_s = 0.6
    provider = VertexChatProvider(
        retry=RetryPolicy(max_attempts=2, initial_delay_s=0.0), timeout_s=0.3
    )
    with pytest.raises(ProviderError) as info:
        await provider.generate(_request())
    await provider.aclose()
    assert info.value.attempts == 2
    assert "timed out" in str(info.value)


async def test_unknown_model_fails_at_once_with_a_hint(vertex_env: FakeVertexServer) -> None:
    provider = _provider()
    with pytest.raises(ProviderError) as info:
        await provider.generate(_request().model_copy(update={"model": "gemini-0"}))
    await provider.aclose()
    assert info.value.status_code == 404
    assert info.value.attempts == 1
    assert "Check the model name" in str(info.value)


async def test_bad_token_is_401_and_never_echoed(
    vertex_server: FakeVertexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "ya29.wrong-token-that-must-not-leak-0123456789"
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", secret)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    provider = _provider(base_url=vertex_server.base_url)
    vertex_server.fail_next(401, message=f"token {secret} rejected")
    with pytest.raises(ProviderError) as info:
        await provider.generate(_request())
    await provider.aclose()
    assert info.value.status_code == 401
    assert secret not in str(info.value)


async def test_missing_project_is_reported_before_any_call(vertex_server: FakeVertexServer) -> None:
    provider = _provider()
    with pytest.raises(ProviderError) as info:
        await provider.generate(_request())
    assert "GOOGLE_CLOUD_PROJECT" in str(info.value)
    assert vertex_server.requests == []


async def test_many_requests_in_order_with_bounded_concurrency(
    vertex_env: FakeVertexServer,
) -> None:
    vertex_env.delay_s = 0.02
    provider = _provider()
    requests = [_request(f"q{i}") for i in range(24)]
    results = await generate_many(provider, requests, concurrency=6)
    await provider.aclose()
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(24)]
    assert 1 < vertex_env.max_in_flight <= 6
