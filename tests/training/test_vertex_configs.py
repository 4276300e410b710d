"""Vertex preference and reinforcement tuning configs, and the settings refused before any call."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    UploadedFiles,
    start_or_reattach,
)
from ftwizard.providers.vertex.training import VertexTrainingProvider
from tests.fakes.vertex_server import FakeVertexServer
from tests.training.vertex_jobs import (
    BUCKET,
    FAST_RETRY,
    JOBS,
    REWARD,
    camel,
    create_bodies,
    vertex_provider,
    vertex_spec,
)


async def test_preference_and_reinforcement_tuning_configs(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    provider = vertex_provider(server)
    dpo = vertex_spec(
        *vertex_files,
        method="dpo",
        idempotency_key="sess-0010-dpo-1",
        hyperparameters=Hyperparameters(beta=0.3, n_epochs=1),
    )
    await start_or_reattach(provider, dpo)
    rft = vertex_spec(
        *vertex_files,
        method="rft",
        idempotency_key="sess-0011-rft-1",
        reward_config=REWARD,
        hyperparameters=Hyperparameters(eval_interval=5, batch_size=16),
    )
    await start_or_reattach(provider, rft)
    dpo_body, rft_body = create_bodies(server)
    assert dpo_body["preferenceOptimizationSpec"]["hyperParameters"] == {
        "epochCount": 1,
        "beta": 0.3,
    }
    spec = rft_body["reinforcementTuningSpec"]
    # google-genai passes the scorer's inner fields in snake_case; Vertex's JSON parser (proto3
    # JSON mapping) accepts both spellings, so compare them camel-cased.
    assert camel(spec["singleRewardConfig"]) == {
        "rewardName": "exact",
        "stringMatchRewardScorer": {
            "correctAnswerReward": 1.0,
            "wrongAnswerReward": 0.0,
            "stringMatchExpression": {
                "matchOperation": "EXACT_MATCH",
                "expression": "{{references.label}}",
            },
        },
    }
    assert spec["hyperParameters"] == {"batchSize": 16, "evaluateInterval": 5}
    assert server.tuning.job_count == 2


async def test_settings_google_genai_rejects_are_reported_before_any_call(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    bad = {"single_reward_config": {"reward_name": "x", "no_such_scorer": {}}}
    spec = vertex_spec(*vertex_files, method="rft", reward_config=bad)
    provider = vertex_provider(server)
    uploaded = await provider.upload(spec)
    with pytest.raises(InputError, match="no_such_scorer"):
        await provider.start_job(spec, uploaded)
    assert server.requests_to(JOBS) == [] and server.tuning.job_count == 0


async def test_reinforcement_tuning_needs_a_vertex_reward_config(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    grader = {
        "type": "string_check",
        "name": "x",
        "input": "a",
        "reference": "b",
        "operation": "eq",
    }
    spec = vertex_spec(*vertex_files, method="rft", grader=grader)  # OpenAI grader JSON only
    with pytest.raises(InputError, match="Vertex reward config"):
        await start_or_reattach(vertex_provider(server), spec)
    assert server.tuning.job_count == 0


async def test_files_already_in_cloud_storage_skip_the_upload(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    server.tuning.objects[("user-bucket", "data/train.jsonl")] = vertex_files[0].read_bytes()
    provider = vertex_provider(server, bucket=None)
    given = UploadedFiles(training="gs://user-bucket/data/train.jsonl")
    result = await start_or_reattach(provider, vertex_spec(vertex_files[0], None), uploaded=given)
    assert not server.requests_to(f"/upload/storage/v1/b/{BUCKET}/o")
    body = create_bodies(server)[0]
    assert body["supervisedTuningSpec"]["trainingDatasetUri"] == "gs://user-bucket/data/train.jsonl"
    assert result.uploaded == given

    with pytest.raises(InputError, match="not a gs:// URI"):
        await provider.start_job(
            vertex_spec(vertex_files[0], None), UploadedFiles(training=str(vertex_files[0]))
        )
    assert server.tuning.job_count == 1


async def test_upload_without_a_bucket_says_what_to_set(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    with pytest.raises(InputError) as err:
        await vertex_provider(vertex_env, bucket=None).upload(vertex_spec(*vertex_files))
    assert "FTWIZARD_GCS_BUCKET" in str(err.value) and "gs://" in str(err.value)
    assert vertex_env.tuning.objects == {}


async def test_bucket_from_the_environment(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTWIZARD_GCS_BUCKET", "gs://env-bucket/")
    uploaded = await vertex_provider(vertex_env, bucket=None).upload(vertex_spec(*vertex_files))
    assert uploaded.training == "gs://env-bucket/ftwizard/Sess-0001-train-1/train.jsonl"
    assert ("env-bucket", "ftwizard/Sess-0001-train-1/train.jsonl") in vertex_env.tuning.objects


async def test_failed_job_reports_its_error(
    vertex_env: FakeVertexServer, vertex_files: tuple[Path, Path]
) -> None:
    server = vertex_env
    server.tuning.fail_at_epoch = 2
    provider = vertex_provider(server)
    job_id = (await start_or_reattach(provider, vertex_spec(*vertex_files))).job_id
    server.tuning.advance(10 + 20 * 3)
    status = await provider.get_job(job_id)
    assert status.state is JobState.failed
    assert status.error == "Internal error while tuning."
    assert status.endpoint is None
    with pytest.raises(ProviderError, match="not a Vertex endpoint"):
        await provider.deploy_check("gemini-2.5-flash")


async def test_no_project_is_reported(
    vertex_server: FakeVertexServer,
    vertex_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", vertex_server.token or "")
    provider = VertexTrainingProvider(base_url=vertex_server.base_url, retry=FAST_RETRY)
    with pytest.raises(ProviderError, match="GOOGLE_CLOUD_PROJECT"):
        await provider.find_job("sess-0001-train-1")
    assert vertex_server.requests == []
