"""``ftwizard import openai-jobs --list``: jobs with their base model's shutdown date."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.providers.openai.shutdown import base_of, shutdown_date
from tests.fakes.openai_server import FakeOpenAIServer
from tests.migrate.conftest import make_job


def test_dated_table() -> None:
    assert base_of("ft:gpt-4.1-mini-2025-04-14:org:support:abc123") == "gpt-4.1-mini"
    assert shutdown_date("gpt-4o-2024-08-06") == date(2027, 1, 14)
    assert shutdown_date("ft:gpt-4o-mini-2024-07-18:org::x1") == date(2027, 1, 14)
    assert shutdown_date("o4-mini-2025-04-16") == date(2026, 10, 23)
    assert shutdown_date("gpt-5") is None


def test_models_endpoint_wins_over_the_table() -> None:
    served = {"gpt-4.1-mini-2025-04-14": date(2027, 2, 1)}
    assert shutdown_date("gpt-4.1-mini-2025-04-14", served) == date(2027, 2, 1)


def test_list_reads_shutdown_dates(
    openai_server: FakeOpenAIServer, openai_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sft: Any = make_job(openai_server, method="supervised")["job"]
    rft: Any = make_job(openai_server)["job"]
    openai_server.models = [*(openai_server.models or []), sft.model]
    openai_server.shutdown_dates[sft.model] = "2027-01-13"
    assert main(["import", "openai-jobs", "--list", "--json"]) == 0
    rows = {r["job"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[sft.id]["shutdown"] == "2027-01-13"
    assert rows[sft.id]["shutdown_source"] == "models"
    assert rows[rft.id]["shutdown"] == "2026-10-23"
    assert rows[rft.id]["shutdown_source"] == "table"
    assert main(["import", "openai-jobs", "--list"]) == 0
    text = capsys.readouterr().out
    assert rft.id in text and "2027-01-06" in text
