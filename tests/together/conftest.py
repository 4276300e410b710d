"""The fake Together server, with TOGETHER_API_KEY and TOGETHER_BASE_URL pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.together_server import FakeTogetherServer


@pytest.fixture
def together_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTogetherServer]:
    """A fresh fake Together API; fails the test if any of its replies broke the spec."""
    server = FakeTogetherServer()
    server.start()
    assert server.api_key is not None
    monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
    monkeypatch.setenv("TOGETHER_BASE_URL", f"{server.base_url}/v1")
    try:
        yield server
    finally:
        server.stop()
    assert not server.spec_errors, "\n".join(server.spec_errors)
