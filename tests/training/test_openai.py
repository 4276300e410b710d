"""OpenAI fine-tuning through OpenAITrainingProvider against the fake API on 127.0.0.1.

The fake's clock is moved by the test (``server.tuning.advance``); nothing sleeps for real.
Every test that creates jobs asserts how many jobs the fake holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.openai.training_request import METADATA_KEY, upload_name
from ftwizard.providers.retry import RetryEvent
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    TrainingProvider,
    best_checkpoint,
    start_or_reattach,
)
from tests.fakes.openai_server import FakeOpenAIServer
from tests.training.openai_jobs import (
    FAST_RETRY,
    GRADER,
    RFT_DAY,
    create_bodies,
    follow_job,
    tuning_provider,
    tuning_spec,
    write_jsonl,
)


async def test_sft_upload_create_poll_to_success(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    provider = tuning_provider(server)
    assert isinstance(provider, TrainingProvider)
    spec = tuning_spec(*files, suffix="support-bot", hyperparameters=Hyperparameters(n_epochs=2))

    started = await start_or_reattach(provider, spec)
    assert not started.reattached
    assert started.uploaded is not None and started.uploaded.validation is not None
    assert server.tuning.job_count == 1
    body = create_bodies(server)[0]
    assert body["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 2}},
    }
    assert "hyperparameters" not in body  # the top-level field is deprecated
    assert body["metadata"] == {METADATA_KEY: spec.idempotency_key}
    assert body["suffix"] == "support-bot"
    uploaded = {f.filename for f in server.tuning.files.values()}
    assert uploaded == {
        upload_name(spec.idempotency_key, "train"),
        upload_name(spec.idempotency_key, "validation"),
    }

    state, points = await follow_job(provider, server, started.job_id)
    assert state is JobState.succeeded
    assert [p.step for p in points] == [1, 2, 3, 4, 5, 6]
    losses = [p.train_loss for p in points]
    assert all(loss is not None for loss in losses)
    assert losses == sorted(losses, reverse=True) and losses[0] != losses[-1]
    assert all(p.valid_loss is not None and p.train_accuracy is not None for p in points)
    assert points[-1].total_steps == 6

    status = await provider.get_job(started.job_id)
    assert status.fine_tuned_model is not None
    assert status.fine_tuned_model.startswith("ft:gpt-4.1-mini-2025-04-14:fake-org:support-bot:")
    assert status.trained_tokens and status.trained_tokens > 0
    assert status.finished_at is not None and status.created_at is not None

    checkpoints = await provider.checkpoints(started.job_id)
    assert [c.step for c in checkpoints] == [2, 4, 6]
    assert all(c.name and c.name.endswith(f"ckpt-step-{c.step}") for c in checkpoints)
    best = best_checkpoint(checkpoints)
    assert best is not None and best.step == 6
    assert best.metrics["full_valid_loss"] == min(c.metrics["full_valid_loss"] for c in checkpoints)

    server.models = None  # the fake's chat endpoint accepts the tuned model's name
    check = await provider.deploy_check(status.fine_tuned_model, prompt="hello there")
    assert check.model == status.fine_tuned_model
    assert check.reply == "echo: hello there"
    chat = server.chat_bodies()[-1]
    assert chat["model"] == status.fine_tuned_model
    await provider.aclose()


async def test_metrics_cursor_returns_only_new_points(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    provider = tuning_provider(server)
    job_id = (await start_or_reattach(provider, tuning_spec(*files))).job_id
    server.tuning.advance(20 + 25)  # validate + queue, then two steps
    first, cursor = await provider.metrics(job_id)
    assert [p.step for p in first] == [1, 2]
    again, same = await provider.metrics(job_id, after=cursor)
    assert again == [] and same == cursor
    server.tuning.advance(20)
    later, _ = await provider.metrics(job_id, after=cursor)
    assert [p.step for p in later] == [3, 4]
    events, _ = await provider.events(job_id)
    assert events[0].message.startswith("Created fine-tuning job")
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)  # type: ignore[type-var]
    assert server.tuning.job_count == 1


async def test_events_walk_back_over_several_pages(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    server.tuning.total_steps = 150  # more metric events than one page of 100
    provider = tuning_provider(server)
    job_id = (await start_or_reattach(provider, tuning_spec(*files))).job_id
    server.tuning.advance(20 + 10 * 150)
    points, cursor = await provider.metrics(job_id)
    assert [p.step for p in points] == list(range(1, 151))
    assert cursor is not None
    assert len(server.requests_to(f"/v1/fine_tuning/jobs/{job_id}/events", "GET")) == 2


async def test_rft_job_sends_grader_and_reports_rewards(
    openai_env: FakeOpenAIServer, tmp_path: Path
) -> None:
    server = openai_env
    rows = [
        {"messages": [{"role": "user", "content": f"classify {i}"}], "label": "a"} for i in range(6)
    ]
    train = write_jsonl(tmp_path / "rft-train.jsonl", rows)
    valid = write_jsonl(tmp_path / "rft-valid.jsonl", rows[:2])
    provider = tuning_provider(server, today=lambda: RFT_DAY)
    spec = tuning_spec(
        train,
        valid,
        method="rft",
        base_model="o4-mini-2025-04-16",
        grader=GRADER,
        hyperparameters=Hyperparameters(
            reasoning_effort="low", compute_multiplier=2.0, eval_interval=1
        ),
    )
    job_id = (await start_or_reattach(provider, spec)).job_id
    method = create_bodies(server)[0]["method"]
    assert method["type"] == "reinforcement"
    assert method["reinforcement"]["grader"] == GRADER
    assert method["reinforcement"]["hyperparameters"] == {
        "reasoning_effort": "low",
        "compute_multiplier": 2.0,
        "eval_interval": 1,
    }
    state, points = await follow_job(provider, server, job_id)
    assert state is JobState.succeeded
    assert [p.train_reward for p in points] == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert all(p.full_valid_reward is not None for p in points)
    assert points[0].train_loss is None
    assert server.tuning.job_count == 1


async def test_dpo_sends_beta(openai_env: FakeOpenAIServer, files: tuple[Path, Path]) -> None:
    server = openai_env
    provider = tuning_provider(server)
    spec = tuning_spec(
        *files, method="dpo", hyperparameters=Hyperparameters(beta=0.2, batch_size=4)
    )
    await start_or_reattach(provider, spec)
    method = create_bodies(server)[0]["method"]
    assert method == {"type": "dpo", "dpo": {"hyperparameters": {"batch_size": 4, "beta": 0.2}}}
    assert server.tuning.job_count == 1


async def test_rejected_hyperparameters_never_reach_the_api() -> None:
    for bad in (
        {"n_epochs": 0},
        {"n_epochs": 51},
        {"batch_size": 257},
        {"beta": 2.5},
        {"beta": 0},
        {"learning_rate_multiplier": 0},
        {"compute_multiplier": 11},
    ):
        with pytest.raises(ValueError):
            Hyperparameters(**bad)
    assert Hyperparameters(batch_size=256, beta=2, n_epochs=50).batch_size == 256


async def test_killed_between_create_and_record_reattaches_to_the_same_job(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    spec = tuning_spec(*files)
    first = tuning_provider(server)
    job_id = await first.start_job(spec, await first.upload(spec))
    del first  # the process died before the session recorded job_id

    fresh = tuning_provider(server)
    assert await fresh.find_job(spec.idempotency_key) == job_id
    resumed = await start_or_reattach(fresh, spec)
    assert resumed.reattached and resumed.job_id == job_id
    assert server.tuning.job_count == 1
    assert len(create_bodies(server)) == 1
    # Another session's key finds nothing.
    assert await fresh.find_job("sess-9999-train-1") is None


async def test_killed_after_upload_reuses_the_uploaded_files(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    spec = tuning_spec(*files)
    first = await tuning_provider(server).upload(spec)
    again = await tuning_provider(server).upload(spec)
    assert again == first
    assert len(server.tuning.files) == 2
    assert len(server.requests_to("/v1/files", "POST")) == 2
    await start_or_reattach(tuning_provider(server), spec, uploaded=again)
    assert server.tuning.job_count == 1


async def test_lost_create_reply_is_not_retried_into_a_second_job(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    server.tuning.drop_create_replies = 1
    retries: list[RetryEvent] = []
    provider = tuning_provider(server, on_retry=retries.append)
    spec = tuning_spec(*files)
    job_id = await provider.start_job(spec, await provider.upload(spec))
    assert len(retries) == 1
    assert server.tuning.job_count == 1
    assert list(server.tuning.jobs) == [job_id]


async def test_pause_resume_and_cancel(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    provider = tuning_provider(server)
    job_id = (await start_or_reattach(provider, tuning_spec(*files))).job_id
    with pytest.raises(ProviderError, match="only running jobs pause"):
        await provider.pause(job_id)  # still validating files
    server.tuning.advance(20 + 15)
    paused = await provider.pause(job_id)
    assert paused.state is JobState.paused and paused.raw_status == "paused"
    steps_at_pause = server.tuning.jobs[job_id].step
    server.tuning.advance(500)
    assert (await provider.get_job(job_id)).state is JobState.paused
    assert server.tuning.jobs[job_id].step == steps_at_pause

    resumed = await provider.resume(job_id)
    assert resumed.state is JobState.running
    server.tuning.advance(20)
    assert server.tuning.jobs[job_id].step == steps_at_pause + 2

    cancelled = await provider.cancel(job_id)
    assert cancelled.state is JobState.cancelled and cancelled.finished
    with pytest.raises(ProviderError) as err:
        await provider.cancel(job_id)
    assert err.value.status_code == 400
    assert server.tuning.job_count == 1


async def test_network_faults_while_polling_are_retried(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    retries: list[RetryEvent] = []
    provider = tuning_provider(server, on_retry=retries.append)
    job_id = (await start_or_reattach(provider, tuning_spec(*files))).job_id
    server.tuning.advance(40)
    job_path = f"/v1/fine_tuning/jobs/{job_id}"
    server.drop_next(path=job_path)
    server.fail_next(503, path=job_path)
    status = await provider.get_job(job_id)
    assert status.state is JobState.running
    server.fail_next(429, headers={"retry-after": "0"}, path=f"{job_path}/events")
    points, _ = await provider.metrics(job_id)
    assert [p.step for p in points] == [1, 2]
    assert [r.status_code for r in retries] == [None, 503, 429]

    server.fail_next(500, times=10, path=job_path)
    with pytest.raises(ProviderError) as err:
        await provider.get_job(job_id)
    assert err.value.attempts == FAST_RETRY.max_attempts
    assert server.tuning.job_count == 1


async def test_failed_job_reports_its_error(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    server.tuning.fail_at_step = 3
    provider = tuning_provider(server)
    job_id = (await start_or_reattach(provider, tuning_spec(*files))).job_id
    state, points = await follow_job(provider, server, job_id)
    assert state is JobState.failed
    assert [p.step for p in points] == [1, 2]
    status = await provider.get_job(job_id)
    assert status.error == "Training diverged. (server_error)"
    assert status.fine_tuned_model is None


async def test_rft_needs_a_validation_file_and_uploads_nothing_without_one(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path]
) -> None:
    server = openai_env
    spec = tuning_spec(files[0], None, method="rft", grader=GRADER, base_model="o4-mini-2025-04-16")
    with pytest.raises(InputError, match="validation file"):
        await start_or_reattach(tuning_provider(server, today=lambda: RFT_DAY), spec)
    assert server.tuning.files == {} and server.tuning.job_count == 0


async def test_file_processing_is_awaited_and_rejections_reported(
    openai_env: FakeOpenAIServer, files: tuple[Path, Path], tmp_path: Path
) -> None:
    server = openai_env
    server.tuning.file_processing_s = 5
    provider = tuning_provider(server, file_poll_s=2.0)
    uploaded = await provider.upload(tuning_spec(*files))
    assert all(
        server.tuning.files[i].status(server.tuning.clock, 5) == "processed"
        for i in (uploaded.training, uploaded.validation)
    )
    assert server.requests_to(f"/v1/files/{uploaded.training}", "GET")

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\nnot json\n', encoding="utf-8")
    with pytest.raises(InputError, match="Line 2 is not valid JSON") as err:
        await provider.upload(tuning_spec(broken, None, idempotency_key="sess-0002-train-1"))
    assert err.value.path == broken


async def test_a_wrong_key_is_reported_without_its_value(
    openai_server: FakeOpenAIServer, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-0123456789abcdefghijklmnopq"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    provider = tuning_provider(openai_server)
    with pytest.raises(ProviderError) as err:
        await provider.find_job("sess-0001-train-1")
    assert err.value.status_code == 401
    assert wrong not in str(err.value)
    assert "OPENAI_API_KEY" in str(err.value)
