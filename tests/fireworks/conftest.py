"""Fixtures for the Fireworks tests: the fake server, its environment and a provider on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftwizard.providers.fireworks.training import FireworksTrainingProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.fireworks_server import (
    DEFAULT_ACCOUNT,
    DEFAULT_FIREWORKS_KEY,
    FakeFireworksServer,
)

FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.0, max_delay_s=0.0, jitter=0.0)


@pytest.fixture
def fireworks(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFireworksServer]:
    """A started fake, with FIREWORKS_API_KEY / _ACCOUNT_ID / _BASE_URL (its chat URL, as for
    ``fireworks:`` model strings) pointing at it."""
    with FakeFireworksServer() as server:
        assert isinstance(server, FakeFireworksServer)
        monkeypatch.setenv("FIREWORKS_API_KEY", DEFAULT_FIREWORKS_KEY)
        monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", DEFAULT_ACCOUNT)
        monkeypatch.setenv("FIREWORKS_BASE_URL", f"{server.base_url}/inference/v1")
        yield server


@pytest.fixture
def provider(fireworks: FakeFireworksServer) -> FireworksTrainingProvider:
    """A provider whose waits move the fake's clock instead of sleeping."""

    async def sleep(seconds: float) -> None:
        fireworks.advance(seconds)

    return FireworksTrainingProvider(retry=FAST_RETRY, sleep=sleep, poll_s=5.0)


def write_rows(path: Path, rows: list[dict[str, object]]) -> Path:
    """Write ``rows`` as JSONL and return ``path``."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def chat_rows(n: int) -> list[dict[str, object]]:
    """Fireworks' chat format (the OpenAI messages format, as its docs say)."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} + {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(n)
    ]
