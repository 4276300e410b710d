"""Servers for the evaluate screen's tests: the base, the tuned model and a free judge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.evaluate.screen_setup import answer_by, base_correct, tuned_correct
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.pairwise_judges import fair_judge


@pytest.fixture
def tuned_server() -> Iterator[FakeOpenAIServer]:
    """A keyless OpenAI-compatible server serving the tuned model (like vLLM would)."""
    server = FakeOpenAIServer(api_key=None, models=None)
    server.reply_fn = answer_by(tuned_correct)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def base_server(openai_env: FakeOpenAIServer) -> FakeOpenAIServer:
    openai_env.models = None
    openai_env.reply_fn = answer_by(base_correct)
    return openai_env


@pytest.fixture
def judge_server() -> Iterator[FakeOpenAIServer]:
    """A keyless OpenAI-compatible server whose model judges fairly (free: self-hosted)."""
    server = FakeOpenAIServer(api_key=None, models=None)
    server.reply_fn = fair_judge
    server.start()
    try:
        yield server
    finally:
        server.stop()
