"""Shared pieces of the dry-run tests: the data file, the grader, the fake-server config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ftwizard.dryrun.report import DryRunConfig
from ftwizard.graders.loading import parse_grader
from ftwizard.providers.openai.http import LeanOpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.openai_server import FakeOpenAIServer

MODEL = "gpt-4.1-mini-2025-04-14"
FAST = RetryPolicy(initial_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
TOPICS = ("math", "geo", "bio", "art")
EXACT = parse_grader(
    {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.answer}}",
        "operation": "eq",
    }
)


def write_data(path: Path, n: int, topics: tuple[str, ...] = TOPICS) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            row = {
                "messages": [
                    {"role": "system", "content": "Answer with the code only."},
                    {"role": "user", "content": f"Q{i}"},
                    {"role": "assistant", "content": f"A{i}"},
                ],
                "answer": f"A{i}",
                "topic": topics[i % len(topics)],
            }
            fh.write(json.dumps(row) + "\n")
    return path


def row_of(body: dict[str, Any]) -> int:
    match = re.search(r"Q(\d+)", body["messages"][-1]["content"])
    assert match is not None
    return int(match.group(1))


def config(data: Path, server: FakeOpenAIServer, **kwargs: Any) -> DryRunConfig:
    # One answer per prompt unless a test asks for groups (tests/dryrun/test_groups.py).
    kwargs.setdefault("samples_per_prompt", 1)
    return DryRunConfig(data=str(data), model=f"openai:{MODEL}", base_url=server.v1_url, **kwargs)


def provider_for(server: FakeOpenAIServer, **kwargs: Any) -> LeanOpenAIChatProvider:
    kwargs.setdefault("retry", FAST)
    return LeanOpenAIChatProvider(base_url=server.v1_url, compatible=True, **kwargs)
