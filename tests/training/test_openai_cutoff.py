"""OpenAI's wind-down: no new jobs from 2027-01-06, bases (and their fine-tunes) shut down
on 2027-01-14, o4-mini on 2026-10-23; every warning gives both dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import (
    JobState,
    start_or_reattach,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.training.openai_jobs import (
    GRADER,
    RFT_DAY,
    create_bodies,
    tuning_provider,
    tuning_spec,
)


async def test_refuses_to_start_on_and_after_the_cutoff(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    spec = tuning_spec(*files, method="rft", grader=GRADER, base_model="o4-mini-2025-04-16")
    for day in (date(2027, 1, 6), date(2027, 3, 1)):
        provider = tuning_provider(server, today=lambda day=day: day)
        with pytest.raises(ProviderError) as err:
            await start_or_reattach(provider, spec)
        message = str(err.value)
        assert "2027-01-06" in message
        assert "Vertex" in message and "locally" in message and "grader" in message
        assert "--to gemini" in message
    assert server.tuning.job_count == 0
    assert create_bodies(server) == []
    assert server.tuning.files == {}  # nothing uploaded for a job that cannot start


async def test_reattaching_still_works_after_the_cutoff(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    spec = tuning_spec(*files)
    job_id = (await start_or_reattach(tuning_provider(server), spec)).job_id
    late = tuning_provider(server, today=lambda: date(2027, 2, 1))
    resumed = await start_or_reattach(late, spec)
    assert resumed.reattached and resumed.job_id == job_id
    assert (await late.get_job(job_id)).state is JobState.queued
    assert server.tuning.job_count == 1


async def test_warns_before_the_cutoff(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    notices: list[str] = []
    provider = tuning_provider(server, today=lambda: date(2027, 1, 5), on_notice=notices.append)
    await start_or_reattach(provider, tuning_spec(*files))
    assert len(notices) == 1
    assert "2027-01-06" in notices[0] and "1 days" in notices[0]
    assert server.tuning.job_count == 1


async def test_the_warning_gives_both_dates(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    notices: list[str] = []
    provider = tuning_provider(openai_env, on_notice=notices.append)
    await start_or_reattach(provider, tuning_spec(*files))
    assert "2027-01-06" in notices[0] and "2027-01-14" in notices[0]
    assert "gpt-4.1-mini" in notices[0] and "fine-tune" in notices[0]


@pytest.mark.parametrize(
    ("day", "model"),
    [
        (date(2026, 11, 22), "o4-mini-2025-04-16"),  # a month after its shutdown
        (date(2026, 10, 22), "o4-mini-2025-04-16"),  # the job could not finish in time
        (date(2026, 11, 22), "ft:o4-mini-2025-04-16:org:exact:abc123"),  # tuned again
    ],
)
async def test_refuses_a_job_whose_base_shuts_down_before_it_could_finish(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path], day: date, model: str
) -> None:
    server = openai_env
    spec = tuning_spec(*files, method="rft", grader=GRADER, base_model=model)
    with pytest.raises(ProviderError) as err:
        await start_or_reattach(tuning_provider(server, today=lambda: day), spec)
    message = str(err.value)
    assert "2026-10-23" in message and "could not finish" in message
    assert "Together" in message and "Fireworks" in message
    assert server.tuning.job_count == 0 and server.tuning.files == {}


async def test_a_base_far_from_its_shutdown_trains(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    spec = tuning_spec(*files, method="rft", grader=GRADER, base_model="o4-mini-2025-04-16")
    await start_or_reattach(tuning_provider(openai_env, today=lambda: RFT_DAY), spec)
    assert openai_env.tuning.job_count == 1
