"""Fixtures of the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.openai_jobs import chat_rows, write_jsonl
from tests.training.vertex_jobs import gemini_rows


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A small chat training file and its validation file."""
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(8))
    valid = write_jsonl(tmp_path / "valid.jsonl", chat_rows(3))
    return train, valid


@pytest.fixture
def vertex_files(tmp_path: Path) -> tuple[Path, Path]:
    """A small Gemini training file and its validation file."""
    train = tmp_path / "train.jsonl"
    valid = tmp_path / "valid.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in gemini_rows(5)), encoding="utf-8")
    valid.write_text("".join(json.dumps(r) + "\n" for r in gemini_rows(2)), encoding="utf-8")
    return train, valid
