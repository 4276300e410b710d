"""OpenAI's own grader check, used when OPENAI_API_KEY is set (against the HTTP fake)."""

from __future__ import annotations

import asyncio

import pytest

from ftwizard.graders.export_openai import to_openai_grader
from ftwizard.graders.loading import parse_grader
from ftwizard.providers.base import ProviderError
from ftwizard.providers.openai.graders import can_validate_online, validate_grader_online
from tests.fakes.openai_server import FakeOpenAIServer

JUDGE = {
    "type": "score_model",
    "name": "judge",
    "model": "gpt-4.1-mini-2025-04-14",
    "input": [{"role": "user", "content": "Score {{sample.output_text}}"}],
}


def test_an_exported_grader_passes_openais_check(
    openai_env: FakeOpenAIServer,
) -> None:
    assert can_validate_online()
    exported = to_openai_grader(parse_grader(JUDGE))
    assert asyncio.run(validate_grader_online(exported)) == []
    sent = openai_env.requests_to("/v1/fine_tuning/alpha/graders/validate", "POST")
    assert sent[0].json()["grader"]["model"] == "gpt-4.1-mini-2025-04-14"


def test_openai_objections_come_back_as_problems(openai_env: FakeOpenAIServer) -> None:
    # The schema cannot know which models may judge; OpenAI's check does.
    exported = to_openai_grader(parse_grader({**JUDGE, "model": "gpt-5"}))
    problems = asyncio.run(validate_grader_online(exported))
    assert problems == ["Model 'gpt-5' is not supported for model graders."]


def test_a_server_failure_after_retries_is_a_provider_error(
    openai_env: FakeOpenAIServer,
) -> None:
    from ftwizard.providers.retry import RetryPolicy

    openai_env.fail_next(500, times=5, path="/v1/fine_tuning/alpha/graders/validate")
    with pytest.raises(ProviderError, match="HTTP 500"):
        asyncio.run(
            validate_grader_online(
                JUDGE, retry=RetryPolicy(max_attempts=2, initial_delay_s=0.01, jitter=0)
            )
        )


def test_without_a_key_the_online_check_is_not_offered() -> None:
    assert not can_validate_online()
