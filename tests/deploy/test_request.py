"""Try the model: the request shown is the request sent, and curl and the openai SDK send it too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from ftwizard.deploy import engine as deploy
from ftwizard.deploy.request import (
    curl_snippet,
    dataset_system_prompt,
    sdk_snippet,
    try_request,
)
from ftwizard.errors import InputError
from ftwizard.store import SessionStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training

PROMPT = "My invoice is wrong"


def test_no_system_prompt_is_sent_unless_one_is_given(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets)
    session.deployment.model = "openai:ftwizard-tuned"
    session.deployment.base_url = "http://127.0.0.1:9/v1"
    system = dataset_system_prompt(session)
    assert system == tickets.valid_rows()[0]["messages"][0]["content"]
    alone = try_request(session, PROMPT, system="")
    assert alone.body["messages"] == [{"role": "user", "content": PROMPT}]
    both = try_request(session, PROMPT, system=system)
    assert both.body["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": PROMPT},
    ]
    assert both.url == "http://127.0.0.1:9/v1/chat/completions"
    with pytest.raises(InputError, match="type a prompt"):
        try_request(session, "  ")


def test_the_request_shown_is_what_try_curl_and_the_sdk_send(
    store: SessionStore, tickets: Tickets, openai_env: FakeOpenAIServer
) -> None:
    openai_env.models = None  # the fine-tuned model's id is callable on the fake
    session = session_at_training(store, tickets)
    session.deployment.model = "openai:ft:gpt-4.1-mini-2025-04-14:acme::abc123"
    system = dataset_system_prompt(session)
    request = try_request(session, PROMPT, system=system)
    assert request.url == f"{openai_env.v1_url}/chat/completions"

    reply = asyncio.run(deploy.try_model(session, PROMPT, system=system))
    assert reply and session.deployment.test_system == system
    assert openai_env.chat_bodies()[-1] == request.body

    code = sdk_snippet(request)
    assert code is not None and 'os.environ["OPENAI_API_KEY"]' in code
    env = {**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}  # the snippet names its URL
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert openai_env.chat_bodies()[-1] == request.body

    curl = curl_snippet(request)
    assert curl is not None and "Bearer $OPENAI_API_KEY" in curl
    done = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert openai_env.chat_bodies()[-1] == request.body
    assert len(openai_env.chat_bodies()) == 3
