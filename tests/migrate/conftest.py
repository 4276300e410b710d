"""An OpenAI fake holding a finished fine-tuning job, made through the openai SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

GRADER: dict[str, Any] = {
    "type": "string_check",
    "name": "exact label",
    "input": "{{sample.output_text}}",
    "reference": "{{item.label}}",
    "operation": "eq",
}


def rft_rows(n: int, offset: int = 0) -> bytes:
    """RFT rows with non-ASCII text and CRLF line ends, to prove the bytes come back as sent."""
    lines = [
        json.dumps(
            {
                "messages": [{"role": "user", "content": f"Étiquette {i} → ?"}],
                "label": f"L{i}",
            },
            ensure_ascii=False,
        )
        for i in range(offset, offset + n)
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def make_job(server: FakeOpenAIServer, *, method: str = "reinforcement") -> dict[str, Any]:
    """Upload files and create a job with the openai SDK; run the fake until it ends."""
    from openai import OpenAI

    client = OpenAI(api_key=server.api_key, base_url=server.v1_url, max_retries=0)
    train = client.files.create(file=("train.jsonl", rft_rows(12)), purpose="fine-tune")
    valid = client.files.create(file=("valid.jsonl", rft_rows(4, 100)), purpose="fine-tune")
    section: dict[str, Any] = {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}
    if method == "reinforcement":
        section["grader"] = GRADER
    job = client.fine_tuning.jobs.create(
        model="o4-mini-2025-04-16" if method == "reinforcement" else "gpt-4.1-mini-2025-04-14",
        training_file=train.id,
        validation_file=valid.id,
        method={"type": method, method: section},  # type: ignore[arg-type, misc]
        suffix="support",
    )
    server.tuning.run_to_end()
    done = client.fine_tuning.jobs.retrieve(job.id)
    client.close()
    return {"job": done, "train": rft_rows(12), "valid": rft_rows(4, 100)}


@pytest.fixture
def finished_job(openai_server: FakeOpenAIServer, openai_env: None) -> dict[str, Any]:
    """A succeeded RFT job on the fake, its files' bytes, and the env pointing at the fake."""
    return make_job(openai_server)
