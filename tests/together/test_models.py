"""``together:NAME`` and ``fireworks:NAME`` model strings: parsed, checked, and served by the
vendor's OpenAI-compatible chat completions (or any server given with ``--base-url``)."""

from __future__ import annotations

import asyncio

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.models import (
    build_generation_provider,
    close_provider,
    credential_problem,
    parse_model,
)
from tests.fakes.together_server import FakeTogetherServer


@pytest.mark.parametrize(
    ("spec", "url", "key"),
    [
        ("together:Qwen/Qwen3.5-9B", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        (
            "fireworks:accounts/fireworks/models/qwen3-8b",
            "https://api.fireworks.ai/inference/v1",
            "FIREWORKS_API_KEY",
        ),
    ],
)
def test_vendor_model_strings(spec: str, url: str, key: str) -> None:
    ref = parse_model(spec)
    assert ref.spec == spec and ref.is_paid
    assert ref.vendor_base_url({}) == url
    problem = credential_problem(ref, {})
    assert problem is not None and problem.startswith(f"the environment variable {key} is not set")
    assert f"export {key}=" in problem
    assert credential_problem(ref, {key: "k"}) is None
    # Another server speaking the same API needs no key.
    other = parse_model(spec, base_url="http://127.0.0.1:9/v1")
    assert other.vendor_base_url({}) == "http://127.0.0.1:9/v1"
    assert credential_problem(other, {}) is None


def test_a_fireworks_resource_name_is_suggested_its_prefix() -> None:
    with pytest.raises(InputError, match="fireworks:accounts/"):
        parse_model("accounts/fireworks/models/qwen3-8b")


def test_together_chat_goes_to_the_vendor_endpoint(together_env: FakeTogetherServer) -> None:
    ref = parse_model("together:Qwen/Qwen3.5-9B")

    async def ask() -> str:
        provider = build_generation_provider(ref)
        try:
            reply = await provider.generate(
                GenerationRequest(
                    model=ref.name,
                    messages=[ChatMessage(role="user", content="hello")],
                    max_tokens=8,
                )
            )
        finally:
            await close_provider(provider)
        return reply.text

    assert asyncio.run(ask()) == "echo: hello"
    (request,) = together_env.requests_to("/v1/chat/completions", "POST")
    assert request.bearer_token() == together_env.api_key
    assert request.json()["max_tokens"] == 8 and request.json()["model"] == "Qwen/Qwen3.5-9B"
