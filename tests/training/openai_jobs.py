"""Helpers for the OpenAI fine-tuning tests: files, the provider on the fake, specs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from ftwizard.providers.openai.training import OpenAITrainingProvider
from ftwizard.providers.retry import RetryPolicy
from ftwizard.providers.training import (
    JobState,
    MetricPoint,
    TrainingSpec,
)
from tests.fakes.openai_server import FakeOpenAIServer

BEFORE_CUTOFF = date(2026, 11, 22)
# o4-mini, the only RFT base, shut down on 2026-10-23: RFT jobs are tested on a day before.
RFT_DAY = date(2026, 10, 1)
FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.0, max_delay_s=0.0, jitter=0.0)

GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def chat_rows(n: int) -> list[dict[str, Any]]:
    """``n`` one-turn chat examples."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"question {i}"},
                {"role": "assistant", "content": f"answer {i}"},
            ]
        }
        for i in range(n)
    ]


def tuning_provider(server: FakeOpenAIServer, **kwargs: Any) -> OpenAITrainingProvider:
    """The provider on the fake, on a day before the cutoff, sleeping in simulated time."""

    async def sim_sleep(seconds: float) -> None:
        # Waiting lets simulated time pass, never real time.
        server.tuning.advance(seconds)

    kwargs.setdefault("today", lambda: BEFORE_CUTOFF)
    kwargs.setdefault("retry", FAST_RETRY)
    return OpenAITrainingProvider(base_url=server.v1_url, sleep=sim_sleep, **kwargs)


def tuning_spec(train: Path, valid: Path | None, **kwargs: Any) -> TrainingSpec:
    """An SFT spec on gpt-4.1-mini unless told otherwise."""
    kwargs.setdefault("method", "sft")
    kwargs.setdefault("base_model", "gpt-4.1-mini-2025-04-14")
    kwargs.setdefault("idempotency_key", "sess-0001-train-1")
    return TrainingSpec(training_file=train, validation_file=valid, **kwargs)


async def follow_job(
    provider: OpenAITrainingProvider, server: FakeOpenAIServer, job_id: str
) -> tuple[JobState, list[MetricPoint]]:
    """Poll the job to its end, collecting the metric points."""
    points: list[MetricPoint] = []
    cursor: str | None = None
    for _ in range(100):
        server.tuning.advance(10)
        status = await provider.get_job(job_id)
        new, cursor = await provider.metrics(job_id, after=cursor)
        points.extend(new)
        if status.finished:
            return status.state, points
    raise AssertionError("the job did not finish within 100 polls")


def create_bodies(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    """The bodies of every job create the fake received."""
    return [r.json() for r in server.requests_to("/v1/fine_tuning/jobs", "POST")]
