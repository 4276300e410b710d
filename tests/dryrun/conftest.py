"""Fixtures of the dry-run tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dryrun.helpers import write_data


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_data(tmp_path / "data.jsonl", 40)
