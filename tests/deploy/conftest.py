"""Fixtures of the deploy step's tests: a session whose local training is done.

The tuned model is a LoRA adapter on ``builtin-tiny`` with random (non-zero) weights rather
than a trained one: it changes the model's answers as a trained adapter does, and takes a
second to make instead of a training run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ftwizard.session import Session, TrainingIntent
from ftwizard.store import SessionStore
from tests.tiny_local import Tickets, TinyBuild, random_lora_adapter
from tests.training.sessions import session_at_training


@pytest.fixture(scope="session")
def random_adapter(tiny_model_build: TinyBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-12 LoRA adapter on ``builtin-tiny`` whose weights move every answer."""
    folder = tmp_path_factory.mktemp("random-adapter") / "adapter"
    return random_lora_adapter(tiny_model_build.model_dir, folder, base_model="local:builtin-tiny")


@pytest.fixture
def trained_session(
    store: SessionStore, tickets: Tickets, tiny_model: Path, random_adapter: Path
) -> Session:
    """A tickets session on ``builtin-tiny`` whose training is done (the random adapter)."""
    session = session_at_training(store, tickets)
    session.training.intent = TrainingIntent(key="test", job_id=str(random_adapter.parent))
    session.training.run_dir = str(random_adapter.parent)
    session.training.status = "succeeded"
    session.training.fine_tuned_model = str(random_adapter)
    store.save(session)
    return session
