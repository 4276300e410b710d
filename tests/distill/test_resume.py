"""Crash-and-resume of a relabel run: the process is killed (os._exit, no cleanup) mid-run,
and the rerun requests nothing that was already paid for — counted at the fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ftwizard.distill.engine import run_distill
from ftwizard.distill.journal import Journal
from ftwizard.distill.options import DistillOptions, journal_path_for
from ftwizard.distill.prompts import read_source_rows, request_id, teacher_request
from ftwizard.graders.loading import load_grader
from ftwizard.providers.models import ModelRef
from ftwizard.providers.retry import RetryPolicy
from tests.conftest import REPO_ROOT
from tests.distill.test_engine import GRADER, N, teacher_reply, teacher_right, write_rows
from tests.fakes.anthropic_server import FakeAnthropicServer

ROOT = REPO_ROOT
FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)

# Runs a distillation and kills its own process, without any cleanup, at a chosen point.
CRASHING_RUN = """
import asyncio, json, os, sys
from ftwizard.distill.engine import run_distill
from ftwizard.distill.options import DistillOptions
from ftwizard.graders.loading import load_grader

cfg = json.loads(sys.argv[1])

def crash_at(progress):
    if progress.stage == cfg["stage"] and progress.done >= cfg["after"]:
        os._exit(137)

asyncio.run(run_distill(
    cfg["data"], cfg["out"], DistillOptions.model_validate(cfg["options"]),
    grader=load_grader(cfg["grader"]), on_progress=crash_at,
))
"""


def crash(tmp_path: Path, options: DistillOptions, *, stage: str, after: int) -> None:
    grader = tmp_path / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    config = {
        "data": str(tmp_path / "data.jsonl"),
        "out": str(tmp_path / "train.jsonl"),
        "grader": str(grader),
        "options": options.model_dump(mode="json"),
        "stage": stage,
        "after": after,
    }
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, json.dumps(config)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 137, done.stderr


def options_for(server: FakeAnthropicServer, **fields: Any) -> DistillOptions:
    teacher = ModelRef(provider="anthropic", name="claude-haiku-4-5", base_url=server.base_url)
    return DistillOptions(
        teacher=teacher, retry=FAST, poll_interval_s=0.0, keep_fields=["id"], **fields
    )


async def test_direct_run_killed_after_7_answers_resumes_without_repaying(
    tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    anthropic_env.reply_fn = teacher_reply
    write_rows(tmp_path / "data.jsonl")
    # One request in flight at a time: a killed process has received (and journaled) every
    # answer it was sent, so the count at the fake is exact.
    options = options_for(anthropic_env, mode="direct", concurrency=1)
    crash(tmp_path, options, stage="generating", after=7)
    assert len(anthropic_env.message_bodies()) == 7
    out = tmp_path / "train.jsonl"
    assert not out.exists()
    assert len(Journal(journal_path_for(out)).load().generations) == 7

    result = await run_distill(
        tmp_path / "data.jsonl", out, options, grader=load_grader(tmp_path / "grader.yaml")
    )
    bodies = anthropic_env.message_bodies()
    assert len(bodies) == N  # 7 before the crash + 13 after, none twice
    asked = [b["messages"][-1]["content"] for b in bodies]
    assert len(set(asked)) == N
    assert (result.reused, result.requests_sent, result.kept) == (7, N - 7, 16)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [i for i in range(N) if teacher_right(i)]


async def test_batch_run_killed_while_waiting_reattaches_to_its_batch(
    tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    anthropic_env.reply_fn = teacher_reply
    anthropic_env.batch_polls_to_end = 3
    write_rows(tmp_path / "data.jsonl")
    options = options_for(anthropic_env, mode="batch")
    crash(tmp_path, options, stage="batch", after=0)
    created = anthropic_env.requests_to("/v1/messages/batches", "POST")
    assert len(created) == 1
    journal = Journal(journal_path_for(tmp_path / "train.jsonl")).load()
    assert len(journal.open_batches) == 1 and journal.generations == {}

    result = await run_distill(
        tmp_path / "data.jsonl",
        tmp_path / "train.jsonl",
        options,
        grader=load_grader(tmp_path / "grader.yaml"),
    )
    # No second batch: the run picked up the one it had paid for.
    assert len(anthropic_env.requests_to("/v1/messages/batches", "POST")) == 1
    assert result.batch_ids == list(journal.open_batches)
    assert (result.kept, result.requests_sent, result.failed) == (16, 0, 0)
    again = await run_distill(
        tmp_path / "data.jsonl",
        tmp_path / "train.jsonl",
        options,
        grader=load_grader(tmp_path / "grader.yaml"),
    )
    assert len(anthropic_env.requests_to("/v1/messages/batches", "POST")) == 1
    assert again.reused == N and again.kept == 16


async def test_errored_batch_items_are_the_only_ones_asked_again(
    tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    anthropic_env.reply_fn = teacher_reply
    anthropic_env.batch_polls_to_end = 0
    data = write_rows(tmp_path / "data.jsonl")
    options = options_for(anthropic_env, mode="batch")
    grader = load_grader_text(tmp_path)
    # The custom ids of rows 4 and 5 (lines 4, 5): the hash of what the teacher is sent.
    rows = list(read_source_rows(data))
    first_ids = [request_id(teacher_request(row, "claude-haiku-4-5")) for row in rows[3:5]]
    for rid in first_ids:
        anthropic_env.batch_item_errors[rid] = "overloaded"
    result = await run_distill(data, tmp_path / "train.jsonl", options, grader=grader)
    assert result.failed == 2 and {f.line for f in result.failures} == {4, 5}
    anthropic_env.batch_item_errors.clear()
    again = await run_distill(data, tmp_path / "train.jsonl", options, grader=grader)
    batches = anthropic_env.requests_to("/v1/messages/batches", "POST")
    assert len(batches) == 2
    assert [item["custom_id"] for item in batches[1].json()["requests"]] == first_ids
    assert again.failed == 0 and again.kept == 16


def load_grader_text(tmp_path: Path) -> Any:
    path = tmp_path / "grader.yaml"
    path.write_text(GRADER, encoding="utf-8")
    return load_grader(path)
