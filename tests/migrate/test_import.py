"""``ftwizard import openai-job`` against the OpenAI fake: files, grader, compare model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.errors import InputError
from ftwizard.evaluate.session import compared_models
from ftwizard.graders.loading import load_grader
from ftwizard.graders.spec import spec_to_dict
from ftwizard.migrate.openai_import import import_openai_job
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from tests.fakes.openai_server import FakeOpenAIServer
from tests.migrate.conftest import GRADER


def _import(job_id: str, backend: Backend = Backend.fireworks) -> Any:
    return asyncio.run(import_openai_job(SessionStore(), job_id, backend=backend))


def test_import_recovers_files_grader_and_old_model(finished_job: dict[str, Any]) -> None:
    job = finished_job["job"]
    result = _import(job.id)
    assert Path(result.training_file).read_bytes() == finished_job["train"]
    assert Path(result.validation_file).read_bytes() == finished_job["valid"]
    assert result.compare_model == f"openai:{job.fine_tuned_model}"
    assert result.method == "rft" and result.backend == "fireworks"
    assert result.old_base_shutdown == "2026-10-23"  # o4-mini, from the dated table

    store = SessionStore()
    session = store.load(result.session)
    assert session.task.method is Method.rft and session.task.backend is Backend.fireworks
    assert session.task.base_model == "accounts/fireworks/models/qwen3-8b"
    assert session.dataset.result is not None and session.dataset.result.errors == 0
    assert session.dataset.result.examples == 12
    assert spec_to_dict(load_grader(result.grader_file)) == GRADER
    assert session.training.hyperparameters == {"n_epochs": 2, "batch_size": 4}
    assert session.evaluation.compare_model == result.compare_model


def test_the_evaluate_step_compares_old_fine_tune_with_new_model(
    finished_job: dict[str, Any],
) -> None:
    result = _import(finished_job["job"].id)
    store = SessionStore()
    session = store.load(result.session)
    session.deployment.model = "openai:gpt-4.1-mini"  # stands in for the new tuned model
    base, tuned = compared_models(session)
    assert base.spec == result.compare_model
    assert tuned.spec == "openai:gpt-4.1-mini"


def test_cli_json_output(finished_job: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    job = finished_job["job"]
    assert main(["import", "openai-job", job.id, "--backend", "fireworks", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"session", "training_file", "validation_file", "compare_model"} <= set(out)
    assert Path(out["training_file"]).read_bytes() == finished_job["train"]
    assert out["compare_model"] == f"openai:{job.fine_tuned_model}"


def test_sft_job_has_no_grader(openai_server: FakeOpenAIServer, openai_env: None) -> None:
    from tests.migrate.conftest import make_job

    made = make_job(openai_server, method="supervised")
    result = _import(made["job"].id, Backend.together)
    assert result.grader_file is None and result.method == "sft"
    assert result.old_base_shutdown == "2027-01-14"


def test_unknown_job_is_a_clear_exit_2(
    openai_server: FakeOpenAIServer, openai_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "openai-job", "ftjob-nope"]) == 2
    assert "no fine-tuning job 'ftjob-nope'" in capsys.readouterr().err
    assert SessionStore().list()[0] == []  # nothing half-made


def test_importing_back_to_openai_is_refused(finished_job: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="would not move it"):
        _import(finished_job["job"].id, Backend.openai)


def test_rft_cannot_go_where_there_is_no_rft(finished_job: dict[str, Any]) -> None:
    with pytest.raises(InputError, match="Together cannot train RFT"):
        _import(finished_job["job"].id, Backend.together)
    assert SessionStore().list()[0] == []


def test_a_5xx_on_the_download_is_retried(
    finished_job: dict[str, Any], openai_server: FakeOpenAIServer
) -> None:
    job = finished_job["job"]
    openai_server.fail_next(503, path=f"/v1/files/{job.training_file}/content")
    result = _import(job.id)
    assert Path(result.training_file).read_bytes() == finished_job["train"]
    assert len(openai_server.requests_to(f"/v1/files/{job.training_file}/content")) == 2
