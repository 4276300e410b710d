"""Together fine-tuning against the fake that speaks the published spec."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import RetryPolicy
from ftwizard.providers.together.training import TogetherTrainingProvider
from ftwizard.providers.together.wire import key_suffix
from ftwizard.providers.training import (
    Hyperparameters,
    JobState,
    TrainingProvider,
    TrainingSpec,
    start_or_reattach,
)
from tests.fakes.together_server import FakeTogetherServer
from tests.fakes.together_spec import request_errors

FAST = RetryPolicy(max_attempts=4, initial_delay_s=0.0, max_delay_s=0.0, jitter=0.0)
KEY = "session-abc-0123abcd"


async def _no_sleep(_: float) -> None:
    return None


def _provider() -> TogetherTrainingProvider:
    return TogetherTrainingProvider(retry=FAST, sleep=_no_sleep)


def _chat_file(path: Path, rows: int = 6) -> Path:
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"What is {i} + {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(rows)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _spec(tmp_path: Path, **changes: object) -> TrainingSpec:
    values: dict[str, object] = {
        "method": "sft",
        "base_model": "Qwen/Qwen3.5-9B",
        "training_file": _chat_file(tmp_path / "train.jsonl"),
        "validation_file": _chat_file(tmp_path / "valid.jsonl", rows=2),
        "idempotency_key": KEY,
        "hyperparameters": Hyperparameters(n_epochs=2),
    }
    values.update(changes)
    return TrainingSpec.model_validate(values)


def test_the_provider_meets_the_protocol() -> None:
    assert isinstance(_provider(), TrainingProvider)


def test_sft_job_from_upload_to_a_model_that_answers(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)

    async def scenario() -> None:
        provider = _provider()
        result = await start_or_reattach(provider, spec)
        assert not result.reattached
        status = await provider.get_job(result.job_id)
        assert status.state is JobState.queued and status.raw_status == "pending"
        together_env.advance(20 + 30)  # pending + queued, then 3 steps
        status = await provider.get_job(result.job_id)
        assert status.state is JobState.running
        points, cursor = await provider.metrics(result.job_id)
        assert [p.step for p in points] == [1, 2, 3] and cursor == "3"
        assert points[-1].valid_loss is not None  # end of epoch 1, with a validation file
        together_env.advance(30)
        more, cursor = await provider.metrics(result.job_id, cursor)
        assert [p.step for p in more] == [4, 5, 6]
        events, after = await provider.events(result.job_id)
        assert events[0].message == "Fine tune request created"
        again, _ = await provider.events(result.job_id, after)
        assert again == []
        together_env.advance(10)
        assert (await provider.get_job(result.job_id)).raw_status == "uploading"
        together_env.advance(10)
        status = await provider.get_job(result.job_id)
        assert status.state is JobState.succeeded
        assert status.fine_tuned_model and key_suffix(KEY) in status.fine_tuned_model
        checkpoints = await provider.checkpoints(result.job_id)
        assert [c.step for c in checkpoints] == [3, 6]
        assert checkpoints[-1].name == status.fine_tuned_model and checkpoints[0].name is None
        check = await provider.deploy_check(status.fine_tuned_model)
        assert check.reply.startswith("echo:")
        await provider.aclose()

    asyncio.run(scenario())
    (create,) = together_env.creates()
    body = create.json()
    assert request_errors("/fine-tunes", "POST", body) == []
    assert body["training_method"] == {"method": "sft", "train_on_inputs": False}
    assert body["training_type"]["type"] == "Lora" and body["n_epochs"] == 2
    assert body["n_evals"] == 2 and body["suffix"] == key_suffix(KEY)
    # The price was asked right before the create, for the same files.
    estimate = together_env.requests_to("/v1/fine-tunes/estimate-price")[-1].json()
    assert estimate["training_file"] == body["training_file"]
    chat = together_env.chat_bodies()[-1]
    assert chat["model"].startswith("ftwizard-test/")


def test_dpo_full_and_lora_settings_reach_the_request(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    hp = Hyperparameters(
        n_epochs=1, beta=0.2, lora_r=16, lora_alpha=32, lora_dropout=0.05, learning_rate=2e-5
    )
    spec = _spec(tmp_path, method="dpo", hyperparameters=hp, validation_file=None)
    full = _spec(
        tmp_path,
        idempotency_key="other-key-0001",
        hyperparameters=Hyperparameters(training_type="full", batch_size=8),
    )

    async def scenario() -> None:
        provider = _provider()
        await start_or_reattach(provider, spec)
        await start_or_reattach(provider, full)
        await provider.aclose()

    asyncio.run(scenario())
    dpo, whole = (r.json() for r in together_env.creates())
    assert dpo["training_method"] == {"method": "dpo", "dpo_beta": 0.2}
    assert dpo["training_type"] == {
        "type": "Lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_trainable_modules": "all-linear",
        "lora_dropout": 0.05,
    }
    assert dpo["learning_rate"] == 2e-5 and "validation_file" not in dpo
    assert whole["training_type"] == {"type": "Full"} and whole["batch_size"] == 8


def test_the_same_data_is_uploaded_once(together_env: FakeTogetherServer, tmp_path: Path) -> None:
    spec = _spec(tmp_path)

    async def scenario() -> tuple[str, str]:
        provider = _provider()
        first = await provider.upload(spec)
        second = await provider.upload(spec)
        await provider.aclose()
        return first.training, second.training

    first, second = asyncio.run(scenario())
    assert first == second
    assert len(together_env.requests_to("/v1/files/upload")) == 2  # training + validation


def test_a_lost_create_reply_is_found_again_not_repeated(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    together_env.drop_create_replies = 1
    spec = _spec(tmp_path)

    async def scenario() -> str:
        provider = _provider()
        result = await start_or_reattach(provider, spec)
        again = await start_or_reattach(provider, spec)
        assert again.reattached and again.job_id == result.job_id
        await provider.aclose()
        return result.job_id

    job_id = asyncio.run(scenario())
    assert together_env.job_count == 1 and job_id in together_env.jobs
    assert len(together_env.creates()) == 1


def test_429_and_5xx_are_retried(together_env: FakeTogetherServer, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    together_env.fail_next(429, headers={"retry-after": "0"}, path="/v1/fine-tunes")
    together_env.fail_next(503, path="/v1/fine-tunes/estimate-price")

    async def scenario() -> None:
        provider = _provider()
        await start_or_reattach(provider, spec)
        await provider.aclose()

    asyncio.run(scenario())
    assert together_env.job_count == 1


def test_server_errors_that_persist_end_in_a_clear_error(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    together_env.fail_next(500, times=10, path="/v1/fine-tunes/ft-0001-fake")

    async def scenario() -> None:
        provider = _provider()
        try:
            await provider.get_job("ft-0001-fake")
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError) as caught:
        asyncio.run(scenario())
    assert caught.value.status_code == 500 and caught.value.attempts == FAST.max_attempts


def test_over_the_limit_nothing_is_created(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    together_env.user_limit = 0.0
    spec = _spec(tmp_path)

    async def scenario() -> None:
        provider = _provider()
        try:
            await start_or_reattach(provider, spec)
        finally:
            await provider.aclose()

    with pytest.raises(ProviderError, match="will not start it"):
        asyncio.run(scenario())
    assert together_env.job_count == 0


def test_cancel_and_failure_map_onto_job_states(
    together_env: FakeTogetherServer, tmp_path: Path
) -> None:
    together_env.fail_at_step = 2
    spec = _spec(tmp_path)
    other = _spec(tmp_path, idempotency_key="second-key-0002")

    async def scenario() -> None:
        provider = _provider()
        failing = (await start_or_reattach(provider, spec)).job_id
        cancelled = (await start_or_reattach(provider, other)).job_id
        status = await provider.cancel(cancelled)
        assert status.state is JobState.running and status.raw_status == "cancel_requested"
        together_env.advance(60)
        assert (await provider.get_job(cancelled)).state is JobState.cancelled
        status = await provider.get_job(failing)
        assert status.state is JobState.failed and "out of memory" in (status.error or "")
        with pytest.raises(ProviderError, match="cannot be paused"):
            await provider.pause(failing)
        await provider.aclose()

    asyncio.run(scenario())


def test_rft_is_refused_before_any_upload(together_env: FakeTogetherServer, tmp_path: Path) -> None:
    spec = _spec(tmp_path, method="rft", grader={"type": "string_check"})

    async def scenario() -> None:
        provider = _provider()
        try:
            await provider.upload(spec)
        finally:
            await provider.aclose()

    with pytest.raises(InputError, match="not RFT"):
        asyncio.run(scenario())
    assert together_env.requests == []


def test_the_fake_rejects_what_the_spec_does_not_allow(together_env: FakeTogetherServer) -> None:
    import httpx

    body = {"training_file": "file-1", "model": "m", "training_type": {"type": "Lora"}}
    reply = httpx.post(
        f"{together_env.base_url}/v1/fine-tunes",
        json=body,
        headers={"authorization": f"Bearer {together_env.api_key}"},
    )
    assert reply.status_code == 400 and "training_type" in reply.json()["error"]["message"]
    assert request_errors("/fine-tunes", "POST", body) != []
    assert together_env.job_count == 0
