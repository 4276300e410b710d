"""Pytest fixtures that start the provider fakes on 127.0.0.1 for one test and stop them after.

tests/conftest.py imports them, so every test can ask for them by name.

``openai_env`` / ``anthropic_env`` also point the standard environment variables (key and
base URL) at the fake, for code that builds its own client from the environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A fresh fake OpenAI API; key ``server.api_key``, SDK base URL ``server.v1_url``."""
    server = FakeOpenAIServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def anthropic_server() -> Iterator[FakeAnthropicServer]:
    """A fresh fake Anthropic API; key ``server.api_key``, SDK base URL ``server.base_url``."""
    server = FakeAnthropicServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def openai_env(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAIServer:
    """The fake OpenAI server, with OPENAI_API_KEY and OPENAI_BASE_URL pointing at it."""
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.v1_url)
    return openai_server


@pytest.fixture
def anthropic_env(
    anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> FakeAnthropicServer:
    """The fake Anthropic server, with ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL pointing at it."""
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.base_url)
    return anthropic_server


@pytest.fixture
def vertex_server() -> Iterator[FakeVertexServer]:
    """A fresh fake Vertex AI generateContent; token ``server.token``, root ``server.base_url``."""
    server = FakeVertexServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vertex_env(
    vertex_server: FakeVertexServer, monkeypatch: pytest.MonkeyPatch
) -> FakeVertexServer:
    """The fake Vertex server, with GOOGLE_OAUTH_ACCESS_TOKEN, GOOGLE_CLOUD_PROJECT,
    GOOGLE_CLOUD_LOCATION and GOOGLE_VERTEX_BASE_URL pointing at it."""
    assert vertex_server.token is not None
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", vertex_server.token)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "ftwizard-test")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", vertex_server.base_url)
    return vertex_server
