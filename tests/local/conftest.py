"""Fixtures of the local backend's tests: a fake Hugging Face Hub serving a tiny family model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.hf_hub import FakeHub
from tests.local.families import build_family

REPO = "tiny-org/tiny-llama-chat"
"""The tiny Llama-family model the ``hub`` fixture serves, not cached yet."""


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fake Hub on 127.0.0.1 (``HF_ENDPOINT``) with :data:`REPO` and a gated copy, and an
    empty Hugging Face cache in the test's folder (``HF_HOME``)."""
    model = build_family("llama", tmp_path / "model")
    with FakeHub() as fake:
        fake.add_folder(REPO, model)
        fake.add_folder("meta/gated", model, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        import huggingface_hub.constants as constants

        # huggingface_hub reads these at import time; the test's values must win.
        monkeypatch.setattr(constants, "ENDPOINT", fake.endpoint)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            fake.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield fake
