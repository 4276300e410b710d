"""The shared fake servers themselves: wire format, auth, scripting, batches.

These are driven with the real SDKs (no ftwizard code), so other tests can trust that what
passes against the fakes speaks the real protocols.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.schema_sample import sample_for_schema

USER = [{"role": "user", "content": "hi"}]


def claude(server: FakeAnthropicServer, **kwargs: object) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=server.base_url,
        api_key=kwargs.pop("api_key", server.api_key),  # type: ignore[arg-type]
        max_retries=0,
        **kwargs,  # type: ignore[arg-type]
    )


def gpt(server: FakeOpenAIServer, api_key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=server.v1_url, api_key=api_key or server.api_key, max_retries=0
    )


# OpenAI


async def test_openai_models_and_chat_with_the_sdk(
    openai_server: FakeOpenAIServer,
) -> None:
    client = gpt(openai_server)
    models = [m.id async for m in client.models.list()]
    assert models == list(openai_server.models or [])
    completion = await client.chat.completions.create(model=models[0], messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "echo: hi"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert openai_server.requests[-1].bearer_token() == openai_server.api_key


async def test_openai_auth_and_unknown_model(
    openai_server: FakeOpenAIServer,
) -> None:
    with pytest.raises(openai.AuthenticationError):
        await gpt(openai_server, "sk-wrong-0123456789abcdefghij").models.list()
    with pytest.raises(openai.NotFoundError) as caught:
        await gpt(openai_server).chat.completions.create(model="nope", messages=USER)  # type: ignore[arg-type]
    assert caught.value.code == "model_not_found"


async def test_openai_validates_requests(openai_server: FakeOpenAIServer) -> None:
    client = gpt(openai_server)
    model = "gpt-4.1-2025-04-14"
    with pytest.raises(openai.BadRequestError, match="not both"):
        await client.chat.completions.create(
            model=model,
            messages=USER,  # type: ignore[arg-type]
            max_tokens=5,
            max_completion_tokens=5,
        )
    with pytest.raises(openai.BadRequestError, match="name"):
        await client.chat.completions.create(
            model=model,
            messages=USER,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"schema": {}}},  # type: ignore[typeddict-item]
        )
    openai_server.unsupported_params[model] = {"temperature"}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=model, messages=USER, temperature=1)  # type: ignore[arg-type]
    assert caught.value.param == "temperature"


async def test_scripted_failures_reach_the_sdk_in_order(
    openai_server: FakeOpenAIServer,
) -> None:
    client = gpt(openai_server)
    openai_server.fail_next(429, headers={"retry-after": "7"}, path="/v1/chat/completions")
    openai_server.drop_next(path="/v1/chat/completions")
    # The path filter leaves other endpoints alone.
    assert [m.id async for m in client.models.list()]
    with pytest.raises(openai.RateLimitError) as rate_limited:
        await client.chat.completions.create(model="o4-mini-2025-04-16", messages=USER)  # type: ignore[arg-type]
    assert rate_limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="o4-mini-2025-04-16", messages=USER)  # type: ignore[arg-type]
    ok = await client.chat.completions.create(model="o4-mini-2025-04-16", messages=USER)  # type: ignore[arg-type]
    assert ok.choices[0].message.content == "echo: hi"
    assert [r.path for r in openai_server.requests] == ["/v1/models"] + ["/v1/chat/completions"] * 3


def test_openai_env_fixture_points_the_sdk_at_the_fake(openai_env: FakeOpenAIServer) -> None:
    client = openai.OpenAI(max_retries=0)
    assert [m.id for m in client.models.list()] == list(openai_env.models or [])


def test_unknown_routes_and_methods(openai_server: FakeOpenAIServer) -> None:
    headers = {"authorization": f"Bearer {openai_server.api_key}"}
    missing = httpx.get(f"{openai_server.v1_url}/nothing", headers=headers)
    wrong_method = httpx.delete(f"{openai_server.v1_url}/chat/completions", headers=headers)
    assert (missing.status_code, wrong_method.status_code) == (404, 405)
    assert "no route" in missing.json()["error"]["message"]


def test_chunked_request_bodies_are_read(openai_server: FakeOpenAIServer) -> None:
    body = json.dumps({"model": "gpt-4.1-2025-04-14", "messages": USER}).encode()
    reply = httpx.post(
        f"{openai_server.v1_url}/chat/completions",
        content=iter([body[:10], body[10:]]),  # an iterator body is sent chunked
        headers={"authorization": f"Bearer {openai_server.api_key}"},
    )
    assert reply.status_code == 200
    assert openai_server.requests[0].headers.get("transfer-encoding") == "chunked"
    assert openai_server.chat_bodies() == [json.loads(body)]


def test_injected_raw_response_is_sent_verbatim(openai_server: FakeOpenAIServer) -> None:
    openai_server.inject(FakeResponse(202, "plain", headers={"x-extra": "1"}))
    reply = httpx.get(f"{openai_server.v1_url}/models")
    assert (reply.status_code, reply.text, reply.headers["x-extra"]) == (202, "plain", "1")


# Anthropic


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_anthropic_accepts_either_auth_header(
    anthropic_server: FakeAnthropicServer,
    header: str,
) -> None:
    key = anthropic_server.api_key
    value = key if header == "x-api-key" else f"Bearer {key}"
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": USER}
    url = f"{anthropic_server.base_url}/v1/messages"
    ok = httpx.post(url, json=body, headers={header: value, "anthropic-version": "2023-06-01"})
    no_version = httpx.post(url, json=body, headers={header: value})
    wrong = httpx.post(
        url, json=body, headers={header: "sk-ant-bad", "anthropic-version": "2023-06-01"}
    )
    assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "echo: hi"
    assert no_version.status_code == 400
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_error"


async def test_anthropic_overloaded_maps_to_the_sdk_error(
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.fail_next(529)
    with pytest.raises(anthropic.OverloadedError):
        await claude(anthropic_server).messages.create(
            model="claude-haiku-4-5",
            max_tokens=5,
            messages=USER,  # type: ignore[arg-type]
        )


async def test_batches_create_poll_and_results(
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.batch_polls_to_end = 2
    anthropic_server.batch_item_errors["b"] = "prompt too long"
    client = claude(anthropic_server)
    params = {"model": "claude-haiku-4-5", "max_tokens": 10}
    batch = await client.messages.batches.create(
        requests=[
            {"custom_id": cid, "params": {**params, "messages": [{"role": "user", "content": cid}]}}  # type: ignore[typeddict-item]
            for cid in ("a", "b", "c")
        ]
    )
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    first = await client.messages.batches.retrieve(batch.id)
    second = await client.messages.batches.retrieve(batch.id)
    assert (first.processing_status, second.processing_status) == ("in_progress", "ended")
    assert (
        second.results_url == f"{anthropic_server.base_url}/v1/messages/batches/{batch.id}/results"
    )
    assert (second.request_counts.succeeded, second.request_counts.errored) == (2, 1)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert results["a"].type == "succeeded" and results["a"].message.content[0].text == "echo: a"  # type: ignore[union-attr]
    assert results["b"].type == "errored"
    assert results["b"].error.error.message == "prompt too long"  # type: ignore[union-attr]
    listed = [b.id async for b in client.messages.batches.list()]
    assert listed == [batch.id]


async def test_batch_results_before_the_end_and_cancel(
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.batch_polls_to_end = 5
    client = claude(anthropic_server)
    batch = await client.messages.batches.create(
        requests=[
            {
                "custom_id": "only",
                "params": {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": USER},  # type: ignore[typeddict-item]
            }
        ]
    )
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        await client.messages.batches.results(batch.id)
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve("msgbatch_missing")


def test_anthropic_env_fixture_points_the_sdk_at_the_fake(
    anthropic_env: FakeAnthropicServer,
) -> None:
    reply = anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-haiku-4-5",
        max_tokens=5,
        messages=USER,  # type: ignore[arg-type]
    )
    assert reply.content[0].text == "echo: hi"  # type: ignore[union-attr]


def test_sample_for_schema_covers_structured_output_shapes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"enum": ["yes", "no"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "why": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "ok": {"type": "boolean"},
            "kind": {"const": "verdict"},
        },
        "required": ["label", "score", "why", "tags", "ok", "kind"],
        "$defs": {"tag": {"type": "string"}},
    }
    assert sample_for_schema(schema) == {
        "label": "yes",
        "score": 1,
        "why": "sample",
        "tags": ["sample"],
        "ok": True,
        "kind": "verdict",
    }
