"""Batch mode of the dry run, against the fake Message Batches API: the same figures as direct
calls, half the price, one batch per dry run even across a crash, and a clear refusal for
providers without a batch mode here. The OpenAI Batch API: tests/dryrun/test_batch_openai.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ftwizard.dryrun import commands as dryrun_commands
from ftwizard.dryrun.cost import estimate_dryrun_cost
from ftwizard.dryrun.engine import DryRun
from ftwizard.dryrun.report import DryRunConfig, DryRunProgress, DryRunReport
from ftwizard.providers.batch_journal import Journal
from tests.dryrun.helpers import EXACT, row_of, write_data
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply

MODEL = "claude-haiku-4-5"
N = 40
BATCHES = "/v1/messages/batches"


class Crash(Exception):
    """Stands for the process dying: raised from a progress hook, nothing cleans up after it."""


class NoSleep:
    """An injected sleep that counts the polls' pauses instead of waiting them out."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def teacher(params: dict[str, Any]) -> MessageReply:
    # Every third row right; token counts fixed so the usage and the cost are exact.
    i = row_of(params)
    return MessageReply(f"A{i}" if i % 3 == 0 else "no", input_tokens=10, output_tokens=2)


def config(data: Path, server: FakeAnthropicServer, **fields: Any) -> DryRunConfig:
    return DryRunConfig(
        data=str(data),
        model=f"anthropic:{MODEL}",
        base_url=server.base_url,
        samples=N,
        poll_interval_s=60.0,
        **{"samples_per_prompt": 1, **fields},
    )


def dry_run(
    data: Path, server: FakeAnthropicServer, journal: Path | None, sleep: NoSleep, **fields: Any
) -> DryRun:
    # The run builds (and closes) its own provider: from the model string, as a session does.
    return DryRun(config(data, server, batch=True, **fields), EXACT, journal=journal, sleep=sleep)


def figures(report: DryRunReport) -> dict[str, Any]:
    return {
        "stats": report.stats.model_dump(),
        "per_topic": {k: v.model_dump() for k, v in report.per_topic.items()},
        "verdict": report.verdict.verdict,
        "reasons": report.verdict.reason_texts(),
        "errors": report.errors,
        "usage": report.usage.model_dump(),
        "scores": [(s.line, s.score, s.output) for s in report.samples],
    }


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 100)


async def test_batch_gives_the_figures_of_direct_calls_at_half_the_price(
    anthropic_env: FakeAnthropicServer, data: Path, tmp_path: Path
) -> None:
    anthropic_env.reply_fn = teacher
    anthropic_env.batch_polls_to_end = 3
    direct = await DryRun(config(data, anthropic_env), EXACT).run()
    assert len(anthropic_env.message_bodies()) == N
    assert anthropic_env.requests_to(BATCHES, "POST") == []

    sleep = NoSleep()
    seen: list[DryRunProgress] = []
    batch = await dry_run(data, anthropic_env, tmp_path / "journal.jsonl", sleep).run(
        on_progress=seen.append
    )
    # One batch carrying every sample, and no direct call on top of the direct run's.
    created = anthropic_env.requests_to(BATCHES, "POST")
    assert len(created) == 1 and len(created[0].json()["requests"]) == N
    assert len(anthropic_env.message_bodies()) == N
    assert figures(batch) == figures(direct)
    assert batch.stats.n == N and 0 < batch.stats.mean < 1
    assert batch.batch_ids == [next(iter(anthropic_env.batches))]
    # Polled three times, pausing the configured interval between polls, never for real.
    assert sleep.pauses == [60.0, 60.0]
    statuses = [(p.batch_status, p.batch_finished) for p in seen if p.batch_id is not None]
    assert statuses[0] == ("in_progress", 0) and statuses[-1] == ("ended", N)
    assert seen[-1].phase == "done" and seen[-1].graded == N
    assert direct.cost.generation_usd is not None and batch.cost.generation_usd is not None
    assert batch.cost.generation_usd == pytest.approx(direct.cost.generation_usd / 2)
    assert any("half price" in note for note in batch.cost.notes)


async def test_restart_after_submission_reattaches_to_the_same_batch(
    anthropic_env: FakeAnthropicServer, data: Path, tmp_path: Path
) -> None:
    anthropic_env.reply_fn = teacher
    anthropic_env.batch_polls_to_end = 4
    journal = tmp_path / "dryrun.journal.jsonl"

    def die_once_submitted(progress: DryRunProgress) -> None:
        if progress.batch_id is not None:
            raise Crash(progress.batch_id)

    first = dry_run(data, anthropic_env, journal, NoSleep())
    with pytest.raises(Crash) as crashed:
        await first.run(on_progress=die_once_submitted)
    batch_id = str(crashed.value)
    state = Journal(journal).load()
    assert list(state.open_batches) == [batch_id] and state.generations == {}
    assert len(anthropic_env.requests_to(BATCHES, "POST")) == 1

    # A fresh process: a new DryRun on the same journal waits for that batch, submits nothing.
    report = await dry_run(data, anthropic_env, journal, NoSleep()).run()
    assert len(anthropic_env.requests_to(BATCHES, "POST")) == 1
    assert report.batch_ids == [batch_id]
    assert report.stats.n == N and report.errors == [] and report.reused == 0
    assert anthropic_env.message_bodies() == []
    state = Journal(journal).load()
    assert state.open_batches == {} and len(state.generations) == N

    # Once read back, a third run reuses every answer and calls nothing at all.
    calls = len(anthropic_env.requests)
    again = await dry_run(data, anthropic_env, journal, NoSleep()).run()
    assert len(anthropic_env.requests) == calls
    assert again.reused == N and again.batch_ids == []
    assert figures(again) == figures(report)


async def test_only_errored_items_go_into_the_next_batch(
    anthropic_env: FakeAnthropicServer, data: Path, tmp_path: Path
) -> None:
    anthropic_env.reply_fn = teacher
    anthropic_env.batch_polls_to_end = 0
    journal = tmp_path / "journal.jsonl"
    first = await dry_run(data, anthropic_env, journal, NoSleep()).run()
    ids = [
        item["custom_id"]
        for item in anthropic_env.requests_to(BATCHES, "POST")[0].json()["requests"]
    ]
    anthropic_env.batch_item_errors[ids[5]] = "prompt is too long"
    anthropic_env.batches.clear()
    journal.unlink()

    partial = await dry_run(data, anthropic_env, journal, NoSleep()).run()
    assert partial.stats.n == N - 1 and partial.generation_failures == 1
    assert "prompt is too long" in partial.errors[0].message
    anthropic_env.batch_item_errors.clear()
    whole = await dry_run(data, anthropic_env, journal, NoSleep()).run()
    resent = anthropic_env.requests_to(BATCHES, "POST")[-1].json()["requests"]
    assert [item["custom_id"] for item in resent] == [ids[5]]
    assert whole.reused == N - 1 and figures(whole) == figures(first)


async def test_cancel_while_waiting_cancels_the_batch_remotely(
    anthropic_env: FakeAnthropicServer, data: Path
) -> None:
    anthropic_env.reply_fn = teacher
    anthropic_env.batch_polls_to_end = 3
    holder: list[DryRun] = []

    class CancelOnFirstPause(NoSleep):
        async def __call__(self, seconds: float) -> None:
            await super().__call__(seconds)
            holder[0].cancel()

    dry = dry_run(data, anthropic_env, None, CancelOnFirstPause())
    holder.append(dry)
    report = await dry.run()
    batch_id = next(iter(anthropic_env.batches))
    assert len(anthropic_env.requests_to(f"{BATCHES}/{batch_id}/cancel", "POST")) == 1
    assert report.cancelled and report.stats.n == 0
    # Items dropped by our own cancel were not run; they are not generation failures.
    assert report.errors == [] and report.verdict.verdict != "GO"


def test_estimate_shows_the_batch_price(anthropic_env: FakeAnthropicServer, data: Path) -> None:
    direct = estimate_dryrun_cost(config(data, anthropic_env), EXACT)
    batch = estimate_dryrun_cost(config(data, anthropic_env, batch=True), EXACT)
    assert direct.cost.total_usd is not None and batch.cost.total_usd is not None
    assert batch.cost.total_usd == pytest.approx(direct.cost.total_usd / 2)
    assert batch.input_tokens == direct.input_tokens


@pytest.mark.parametrize("model", ["vertex:gemini-2.5-flash", "local:builtin-tiny", "gpt-4.1"])
def test_batch_mode_is_refused_without_a_batch_api(model: str) -> None:
    with pytest.raises(ValidationError, match="batch mode is available for anthropic: and openai:"):
        DryRunConfig(data="data.jsonl", model=model, batch=True)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="ftwizard")
    dryrun_commands.register(parser.add_subparsers())
    args = parser.parse_args(["dryrun", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def grader(tmp_path: Path) -> str:
    path = tmp_path / "grader.yaml"
    path.write_text(
        'type: string_check\nname: exact\ninput: "{{sample.output_text}}"\n'
        'reference: "{{item.answer}}"\noperation: eq\n'
    )
    return str(path)


def test_cli_batch_with_journal_and_refusals(
    anthropic_env: FakeAnthropicServer,
    data: Path,
    grader: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    anthropic_env.reply_fn = teacher
    anthropic_env.batch_polls_to_end = 0
    journal = tmp_path / "cli.journal.jsonl"
    common = ["--data", str(data), "--grader", grader, "--samples", str(N)]
    common += ["--samples-per-prompt", "1"]
    code, out, err = run_cli(
        [*common, "--model", f"anthropic:{MODEL}", "--batch", "--journal", str(journal), "--json"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == N and result["batch_ids"] == list(anthropic_env.batches)
    assert "as one batch (half price)" in err and "ended, 40/40 finished" in err
    assert Journal(journal).load().open_batches == {}

    code, out, err = run_cli([*common, "--model", "vertex:gemini-2.5-flash", "--batch"], capsys)
    assert code == 2 and out == ""
    assert "batch mode is available for anthropic: and openai: models" in err
    assert "Value error" not in err
    code, _, err = run_cli(
        [*common, "--model", f"anthropic:{MODEL}", "--journal", str(journal)], capsys
    )
    assert code == 2 and "--journal is for --batch runs" in err
