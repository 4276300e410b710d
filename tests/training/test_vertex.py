"""Vertex AI tuning through VertexTrainingProvider against the fake Vertex + Cloud Storage API.

google-genai and google-cloud-storage talk real HTTP to 127.0.0.1; the fake's clock is moved by
the test (``server.tuning.advance``). Every test that creates jobs asserts how many exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import RetryEvent
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    MetricPoint,
    TrainingProvider,
    start_or_reattach,
)
from ftwizard.providers.vertex.training_shapes import KEY_LABEL, METRICS_NOTE
from tests.fakes.vertex_server import FakeVertexServer
from tests.training.vertex_jobs import (
    BUCKET,
    FAST_RETRY,
    JOBS,
    create_bodies,
    vertex_provider,
    vertex_spec,
)


async def test_sft_upload_create_poll_to_success(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    provider = vertex_provider(server)
    assert isinstance(provider, TrainingProvider)
    spec = vertex_spec(
        *vertex_files,
        suffix="support-bot",
        hyperparameters=Hyperparameters(n_epochs=2, learning_rate_multiplier=0.5, adapter_size=4),
    )
    started = await start_or_reattach(provider, spec)
    assert not started.reattached
    assert started.job_id == f"{JOBS[4:]}/1001"
    assert server.tuning.objects[(BUCKET, "ftwizard/Sess-0001-train-1/train.jsonl")] == (
        vertex_files[0].read_bytes()
    )
    assert (BUCKET, "ftwizard/Sess-0001-train-1/validation.jsonl") in server.tuning.objects
    body = create_bodies(server)[0]
    assert body["baseModel"] == "gemini-2.5-flash"
    assert body["labels"] == {KEY_LABEL: "sess-0001-train-1"}
    assert body["tunedModelDisplayName"] == "ftwizard-support-bot"
    assert body["supervisedTuningSpec"] == {
        "trainingDatasetUri": f"gs://{BUCKET}/ftwizard/Sess-0001-train-1/train.jsonl",
        "validationDatasetUri": f"gs://{BUCKET}/ftwizard/Sess-0001-train-1/validation.jsonl",
        "hyperParameters": {
            "epochCount": 2,
            "learningRateMultiplier": 0.5,
            "adapterSize": "ADAPTER_SIZE_FOUR",
        },
    }

    status = await provider.get_job(started.job_id)
    assert status.state is JobState.queued and status.raw_status == "JOB_STATE_PENDING"
    seen = [status.state]
    points: list[MetricPoint] = []
    cursor: str | None = None
    for _ in range(20):
        server.tuning.advance(10)
        status = await provider.get_job(started.job_id)
        new, cursor = await provider.metrics(started.job_id, after=cursor)
        points.extend(new)
        seen.append(status.state)
        if status.finished:
            break
    assert status.state is JobState.succeeded
    assert JobState.running in seen
    assert status.endpoint == f"{JOBS[4:].rsplit('/tuningJobs')[0]}/endpoints/1001"
    assert status.fine_tuned_model is not None and status.fine_tuned_model.endswith(
        "/models/1001@1"
    )
    stats = status.details["tuning_data_stats"]["supervised_tuning_data_stats"]
    assert stats["tuning_dataset_example_count"] == 5
    assert status.notes == []
    assert status.trained_tokens is None  # not reported by Vertex; never made up

    # The curves come from the experiment's TensorBoard, polled while the job ran.
    assert [p.step for p in points] == list(range(1, 11))
    assert [p.train_loss for p in points] == [round(2.0 / (1 + 0.5 * s), 4) for s in range(1, 11)]
    assert [p.step for p in points if p.valid_loss is not None] == [5, 10]
    assert all(p.train_accuracy is not None and p.total_steps == 10 for p in points)
    assert await provider.metrics(started.job_id, after=cursor) == ([], "10")
    events, cursor = await provider.events(started.job_id)
    assert [e.id for e in events] == ["created", "started", "ended"]
    assert "JOB_STATE_SUCCEEDED" in events[-1].message
    assert await provider.events(started.job_id, after=cursor) == ([], "ended")

    checkpoints = await provider.checkpoints(started.job_id)
    assert [(c.step, c.epoch) for c in checkpoints] == [(5, 1.0), (10, 2.0)]
    assert all(c.name and "/endpoints/" in c.name for c in checkpoints)

    check = await provider.deploy_check(status.endpoint or "", prompt="hello there")
    assert check.reply == "echo: hello there"
    assert server.requests[-1].path == f"/v1/{status.endpoint}:generateContent"
    assert server.tuning.job_count == 1
    await provider.aclose()


async def test_a_job_without_an_experiment_has_no_curves_and_says_so(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    server.tuning.with_experiment = False
    provider = vertex_provider(server)
    job_id = (await start_or_reattach(provider, vertex_spec(*vertex_files))).job_id
    server.tuning.advance(200)
    status = await provider.get_job(job_id)
    assert status.state is JobState.succeeded
    assert status.notes == [METRICS_NOTE]
    assert await provider.metrics(job_id, after="3") == ([], "3")
    assert not [r for r in server.requests if "tensorboards" in r.path]
    assert server.tuning.job_count == 1


async def test_killed_between_create_and_record_reattaches_to_the_same_job(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    spec = vertex_spec(*vertex_files)
    first = vertex_provider(server)
    job_id = await first.start_job(spec, await first.upload(spec))
    # Later jobs of other sessions push ours past the first page of the listing.
    for n in range(3):
        other = vertex_spec(*vertex_files, idempotency_key=f"sess-000{n + 2}-train-1")
        await first.start_job(other, await first.upload(other))
    del first  # the process died before the session recorded job_id

    fresh = vertex_provider(server)
    assert await fresh.find_job(spec.idempotency_key) == job_id
    resumed = await start_or_reattach(fresh, spec)
    assert resumed.reattached and resumed.job_id == job_id
    assert server.tuning.job_count == 4
    assert (
        len([b for b in create_bodies(server) if b["labels"][KEY_LABEL] == "sess-0001-train-1"])
        == 1
    )
    assert len(server.requests_to(JOBS, "GET")) >= 2  # followed nextPageToken
    assert await fresh.find_job("sess-9999-train-1") is None


async def test_lost_create_reply_is_not_retried_into_a_second_job(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    server.tuning.drop_create_replies = 1
    retries: list[RetryEvent] = []
    provider = vertex_provider(server, on_retry=retries.append)
    spec = vertex_spec(*vertex_files)
    job_id = await provider.start_job(spec, await provider.upload(spec))
    assert len(retries) == 1
    assert server.tuning.job_count == 1
    assert job_id.endswith("/tuningJobs/1001")


async def test_cancel_and_no_pause(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    provider = vertex_provider(server)
    assert provider.capabilities.pause is False
    job_id = (await start_or_reattach(provider, vertex_spec(*vertex_files))).job_id
    server.tuning.advance(15)
    with pytest.raises(ProviderError, match="cannot be paused"):
        await provider.pause(job_id)
    status = await provider.cancel(job_id)
    assert status.raw_status == "JOB_STATE_CANCELLING" and status.state is JobState.running
    server.tuning.advance(1)
    status = await provider.get_job(job_id)
    assert status.state is JobState.cancelled and status.finished
    events, _ = await provider.events(job_id)
    assert events[-1].level == "warn"
    with pytest.raises(ProviderError) as err:
        await provider.cancel(job_id)
    assert err.value.status_code == 400
    assert server.tuning.job_count == 1


async def test_network_faults_while_polling_are_retried(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    retries: list[RetryEvent] = []
    provider = vertex_provider(server, on_retry=retries.append)
    job_id = (await start_or_reattach(provider, vertex_spec(*vertex_files))).job_id
    server.tuning.advance(15)
    path = f"/v1/{job_id}"
    server.drop_next(path=path)
    server.fail_next(503, path=path)
    server.fail_next(429, headers={"retry-after": "0"}, path=path)
    assert (await provider.get_job(job_id)).state is JobState.running
    assert [r.status_code for r in retries] == [None, 503, 429]
    server.fail_next(500, times=FAST_RETRY.max_attempts, path=path)
    with pytest.raises(ProviderError) as err:
        await provider.get_job(job_id)
    assert err.value.attempts == FAST_RETRY.max_attempts

    # The TensorBoard reads (google-cloud-aiplatform over REST) are retried the same way.
    retries.clear()
    context = f"/v1/{JOBS[4:].rsplit('/tuningJobs')[0]}/metadataStores/default/contexts"
    server.fail_next(503, path=f"{context}/tuning-experiment-1001")
    server.drop_next(path=f"{context}/tuning-experiment-1001")
    points, _ = await provider.metrics(job_id)
    assert [p.step for p in points] == [1]
    assert [r.status_code for r in retries] == [503, None]
    assert server.tuning.job_count == 1
