"""Fixtures shared by the whole suite.

Every test runs with its own ``FTWIZARD_HOME`` and with no real credentials in the
environment, so nothing a test does can touch a user's sessions or spend money.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# `make test` runs the suite on one worker per core (pytest-xdist): a worker's torch then keeps
# to one thread, or two workers' training would each take every core and slow both down. Set
# before anything imports torch, which reads it once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest

from ftwizard.credentials import SECRET_ENV_VARS
from ftwizard.session import StepId
from ftwizard.store import SessionStore

# The HTTP fakes of the providers' APIs, shared by every test file (tests/fakes/).
from tests.fakes.fixtures import (  # noqa: F401
    anthropic_env,
    anthropic_server,
    openai_env,
    openai_server,
    vertex_env,
    vertex_server,
)

# The tiny local model, built once per run, and the tickets example data.
from tests.steps import walked_session
from tests.tiny_local import (  # noqa: F401
    tickets,
    tickets_adapter,
    tickets_ramp,
    tiny_model,
    tiny_model_build,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

_GOOGLE_VARS = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_VERTEX_BASE_URL",
    "TOGETHER_BASE_URL",
    "FIREWORKS_BASE_URL",
    "FIREWORKS_ACCOUNT_ID",
    "FTWIZARD_GCS_BUCKET",
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ftwizard home and an environment without keys, for every test."""
    home = tmp_path / "ftwizard-home"
    monkeypatch.setenv("FTWIZARD_HOME", str(home))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    for name in (*SECRET_ENV_VARS, *_GOOGLE_VARS):
        monkeypatch.delenv(name, raising=False)
    yield home
    # A deploy step serves the tuned model from a background process; however the test
    # ended, nothing it started may outlive it.
    for state in home.rglob("server.json") if home.exists() else ():
        from ftwizard.providers.local.serve import LocalServer

        LocalServer(state.parent).stop()


@pytest.fixture
def store(isolated_home: Path) -> SessionStore:
    """The session store inside the test's home."""
    return SessionStore(isolated_home)


@pytest.fixture
def walked(store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Put a session that did every step on the step asked for (files relative to the cwd)."""
    monkeypatch.chdir(tmp_path)
    session = walked_session(store, tmp_path, StepId.task)

    def on(step: StepId) -> str:
        session.step = step
        store.save(session)
        return session.id

    return on
