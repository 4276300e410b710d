"""Helpers for the Vertex tuning tests: Gemini files, the provider on the fake, specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ftwizard.providers.retry import RetryPolicy
from ftwizard.providers.training import (
    TrainingSpec,
)
from ftwizard.providers.vertex.training import VertexTrainingProvider
from tests.fakes.vertex_server import FakeVertexServer

BUCKET = "ftwizard-test-bucket"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.0, max_delay_s=0.0, jitter=0.0)
JOBS = "/v1/projects/ftwizard-test/locations/us-central1/tuningJobs"
# What ftwizard.graders.export_vertex makes of an exact string_check.
REWARD = {
    "single_reward_config": {
        "reward_name": "exact",
        "string_match_reward_scorer": {
            "correct_answer_reward": 1.0,
            "wrong_answer_reward": 0.0,
            "string_match_expression": {
                "match_operation": "EXACT_MATCH",
                "expression": "{{references.label}}",
            },
        },
    }
}


def gemini_rows(n: int) -> list[dict[str, Any]]:
    """``n`` Gemini ``contents`` examples."""
    return [
        {
            "contents": [
                {"role": "user", "parts": [{"text": f"question {i}"}]},
                {"role": "model", "parts": [{"text": f"answer {i}"}]},
            ]
        }
        for i in range(n)
    ]


def vertex_provider(server: FakeVertexServer, **kwargs: Any) -> VertexTrainingProvider:
    """The provider on the fake Vertex server."""
    kwargs.setdefault("bucket", BUCKET)
    kwargs.setdefault("retry", FAST_RETRY)
    return VertexTrainingProvider(storage_base_url=server.base_url, **kwargs)


def vertex_spec(train: Path, valid: Path | None, **kwargs: Any) -> TrainingSpec:
    """An SFT spec unless told otherwise."""
    kwargs.setdefault("method", "sft")
    kwargs.setdefault("base_model", "gemini-2.5-flash")
    kwargs.setdefault("idempotency_key", "Sess-0001-train-1")
    return TrainingSpec(training_file=train, validation_file=valid, **kwargs)


def camel(value: Any) -> Any:
    """``value`` with snake_case keys in camelCase, as the REST API writes them."""
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()
        }
    return value


def create_bodies(server: FakeVertexServer) -> list[dict[str, Any]]:
    """The bodies of every tuning job create the fake received."""
    return [r.json() for r in server.requests_to(JOBS, "POST")]
