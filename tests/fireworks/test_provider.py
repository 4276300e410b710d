"""FireworksTrainingProvider against the fake Fireworks REST API on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ftwizard.graders.export_fireworks import to_fireworks_evaluator
from ftwizard.graders.loading import parse_grader
from ftwizard.providers.base import ProviderError
from ftwizard.providers.fireworks.shapes import STATE_MAP, job_id_for
from ftwizard.providers.fireworks.training import FireworksTrainingProvider
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    TrainingProvider,
    TrainingSpec,
    start_or_reattach,
)
from tests.fakes.fireworks_server import FakeFireworksServer
from tests.fireworks.conftest import FAST_RETRY, chat_rows, write_rows

KEY = "sess-0123456789-abcd"
JOBS = "/v1/accounts/acme/supervisedFineTuningJobs"


def _spec(tmp_path: Path, method: str = "sft", **extra: object) -> TrainingSpec:
    train = write_rows(tmp_path / "train.jsonl", chat_rows(6))
    valid = write_rows(tmp_path / "valid.jsonl", chat_rows(2))
    return TrainingSpec.model_validate(
        {
            "method": method,
            "base_model": "accounts/fireworks/models/qwen3-8b",
            "training_file": train,
            "validation_file": valid,
            "idempotency_key": KEY,
            "display_name": "ftwizard test",
            "hyperparameters": Hyperparameters(n_epochs=2, batch_size=8, beta=0.1),
            **extra,
        }
    )


def test_is_a_training_provider(provider: FireworksTrainingProvider) -> None:
    assert isinstance(provider, TrainingProvider)


def test_every_documented_job_state_is_mapped() -> None:
    documented = {
        *("UNSPECIFIED", "CREATING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"),
        *("DELETING", "WRITING_RESULTS", "VALIDATING", "DELETING_CLEANING_UP", "PENDING"),
        *("EXPIRED", "RE_QUEUEING", "CREATING_INPUT_DATASET", "IDLE", "CANCELLING"),
        *("EARLY_STOPPED", "PAUSED", "DELETED"),
    }
    assert {f"JOB_STATE_{s}" for s in documented} == set(STATE_MAP)
    assert STATE_MAP["JOB_STATE_EARLY_STOPPED"] is JobState.succeeded
    assert STATE_MAP["JOB_STATE_CANCELLING"] is JobState.running


def test_sft_job_runs_to_its_output_model(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)

    async def run() -> None:
        result = await start_or_reattach(provider, spec)
        assert result.job_id == f"accounts/acme/supervisedFineTuningJobs/{job_id_for(KEY)}"
        assert (await provider.get_job(result.job_id)).state is JobState.queued
        fireworks.advance(25)
        status = await provider.get_job(result.job_id)
        assert status.state is JobState.running and status.raw_status == "JOB_STATE_RUNNING"
        points, cursor = await provider.metrics(result.job_id)
        assert [p.step for p in points] == [10] and points[0].total_steps == 100
        assert await provider.metrics(result.job_id, cursor) == ([], cursor)
        fireworks.run_to_end()
        status = await provider.get_job(result.job_id)
        assert status.state is JobState.succeeded
        assert status.fine_tuned_model == f"accounts/acme/models/{job_id_for(KEY)}"
        events, _ = await provider.events(result.job_id)
        assert [e.id for e in events] == ["created", "state-JOB_STATE_COMPLETED", "completed"]
        await provider.aclose()

    asyncio.run(run())
    body = fireworks.requests_to(JOBS, "POST")[0]
    assert body.query == {"supervisedFineTuningJobId": [job_id_for(KEY)]}
    sent = body.json()
    assert sent["dataset"] == f"accounts/acme/datasets/{job_id_for(KEY)}-t"
    assert sent["evaluationDataset"] == f"accounts/acme/datasets/{job_id_for(KEY)}-v"
    assert (sent["epochs"], sent["batchSizeSamples"]) == (2, 8)
    assert "batchSize" not in sent  # Fireworks' batchSize counts tokens, not examples
    # The uploaded bytes are the file's bytes.
    assert fireworks.dataset_bytes[f"{job_id_for(KEY)}-t"] == spec.training_file.read_bytes()


def test_dpo_nests_its_settings_and_beta(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "dpo")
    job_id = asyncio.run(start_or_reattach(provider, spec)).job_id
    assert "/dpoJobs/" in job_id
    body = fireworks.requests_to("/v1/accounts/acme/dpoJobs", "POST")[0].json()
    assert body["trainingConfig"]["baseModel"] == "accounts/fireworks/models/qwen3-8b"
    assert body["lossConfig"] == {"method": "DPO", "klBeta": 0.1}


def test_rft_creates_the_evaluator_waits_for_it_and_references_it(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    fireworks.build_s = 30.0
    grader = parse_grader(
        {
            "type": "numeric",
            "name": "sum",
            "input": "{{sample.output_text}}",
            "reference": "{{item.ground_truth}}",
        }
    )
    evaluator = to_fireworks_evaluator(grader, evaluator_id="chosen-by-caller")
    spec = _spec(tmp_path, "rft", reward_config={"fireworks_evaluator": evaluator.model_dump()})
    job_id = asyncio.run(start_or_reattach(provider, spec)).job_id
    assert "/reinforcementFineTuningJobs/" in job_id
    body = fireworks.requests_to("/v1/accounts/acme/reinforcementFineTuningJobs", "POST")[0]
    assert body.json()["evaluator"] == f"accounts/acme/evaluators/{job_id_for(KEY)}-eval"
    assert fireworks.clock >= 30.0  # it waited for BUILDING -> ACTIVE


def test_a_lost_create_reply_is_adopted_not_repeated(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    fireworks.drop_create_replies = 1
    result = asyncio.run(start_or_reattach(provider, _spec(tmp_path)))
    assert fireworks.job_count == 1
    assert result.job_id.endswith(job_id_for(KEY))


def test_killed_between_create_and_record_reattaches(
    fireworks: FakeFireworksServer, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)
    first = FireworksTrainingProvider(retry=FAST_RETRY)
    job_id = asyncio.run(start_or_reattach(first, spec)).job_id
    # The app died before saving job_id; a new process resumes with the saved key.
    second = FireworksTrainingProvider(retry=FAST_RETRY)
    again = asyncio.run(start_or_reattach(second, spec))
    assert again.reattached and again.job_id == job_id
    assert fireworks.job_count == 1
    assert len(fireworks.requests_to(JOBS, "POST")) == 1


def test_429_and_5xx_are_retried(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    fireworks.fail_next(429, headers={"retry-after": "0"}, path=JOBS)
    fireworks.fail_next(503, path=JOBS)
    asyncio.run(start_or_reattach(provider, _spec(tmp_path)))
    assert fireworks.job_count == 1
    assert len(fireworks.requests_to(JOBS, "POST")) == 3


def test_persistent_5xx_ends_in_a_clear_error(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    fireworks.fail_next(500, times=10, path=JOBS)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(start_or_reattach(provider, _spec(tmp_path)))
    assert caught.value.status_code == 500 and caught.value.attempts == 4
    assert fireworks.job_count == 0


def test_bad_request_names_the_field(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    spec = _spec(tmp_path).model_copy(update={"base_model": "qwen3-8b"})
    asyncio.run(start_or_reattach(provider, spec))  # a bare name becomes a resource name
    body = fireworks.requests_to(JOBS, "POST")[0].json()
    assert body["baseModel"] == "accounts/fireworks/models/qwen3-8b"


def test_cancel_pause_resume(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    async def run() -> None:
        job_id = (await start_or_reattach(provider, _spec(tmp_path))).job_id
        status = await provider.cancel(job_id)
        assert status.raw_status == "JOB_STATE_CANCELLING" and status.state is JobState.running
        fireworks.advance(1)
        assert (await provider.get_job(job_id)).state is JobState.cancelled
        with pytest.raises(ProviderError, match="cannot be paused"):
            await provider.pause(job_id)
        with pytest.raises(ProviderError, match="cannot be resumed"):
            await provider.resume(job_id)

    asyncio.run(run())


def test_missing_account_id_is_a_clear_error(
    fireworks: FakeFireworksServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FIREWORKS_ACCOUNT_ID")
    with pytest.raises(ProviderError, match="no Fireworks account id") as caught:
        asyncio.run(start_or_reattach(FireworksTrainingProvider(retry=FAST_RETRY), _spec(tmp_path)))
    assert "FIREWORKS_ACCOUNT_ID" in (caught.value.hint or "")


def test_deploy_check_calls_the_tuned_model(
    fireworks: FakeFireworksServer, provider: FireworksTrainingProvider, tmp_path: Path
) -> None:
    async def run() -> None:
        job_id = (await start_or_reattach(provider, _spec(tmp_path))).job_id
        with pytest.raises(ProviderError, match="does not serve"):
            await provider.deploy_check(f"accounts/acme/models/{job_id_for(KEY)}")
        fireworks.run_to_end()
        model = (await provider.get_job(job_id)).fine_tuned_model
        assert model is not None
        check = await provider.deploy_check(f"fireworks:{model}")
        assert check.reply == fireworks.chat_reply and check.model == f"fireworks:{model}"

    asyncio.run(run())


def test_fireworks_model_strings_generate_against_the_same_server(
    fireworks: FakeFireworksServer,
) -> None:
    from ftwizard.providers.base import ChatMessage, GenerationRequest
    from ftwizard.providers.models import build_generation_provider, close_provider, parse_model

    ref = parse_model("fireworks:accounts/fireworks/models/qwen3-8b")

    async def run() -> str:
        provider = build_generation_provider(ref)
        try:
            reply = await provider.generate(
                GenerationRequest(model=ref.name, messages=[ChatMessage(role="user", content="hi")])
            )
        finally:
            await close_provider(provider)
        return reply.text

    assert asyncio.run(run()) == fireworks.chat_reply
    sent = fireworks.requests_to("/inference/v1/chat/completions", "POST")[0]
    assert sent.json()["model"] == "accounts/fireworks/models/qwen3-8b"
