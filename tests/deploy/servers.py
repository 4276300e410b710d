"""A stand-in for a session's local server: a real process with the record the server writes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ftwizard.deploy.engine import DEPLOY_DIR
from ftwizard.providers.local.serve import SERVER_FILE, ServerRecord, free_port
from ftwizard.session import Session
from ftwizard.store import SessionStore


@contextmanager
def standing_server(store: SessionStore, session: Session) -> Iterator[str]:
    """A process in its own group recorded as ``session``'s local server; yields its base URL.

    It never answers HTTP: stopping, listing and quitting only look at the record and the pid.
    """
    process = subprocess.Popen(["sleep", "120"], start_new_session=True)
    folder = store.artifacts_dir(session.id) / DEPLOY_DIR / "server"
    folder.mkdir(parents=True, exist_ok=True)
    record = ServerRecord(
        pid=process.pid, host="127.0.0.1", port=free_port(), model="m", started_at=time.time()
    )
    (folder / SERVER_FILE).write_text(record.model_dump_json(), encoding="utf-8")
    session.deployment.model = "openai:ftwizard-tuned"
    session.deployment.base_url = record.base_url
    session.deployment.server_dir = str(folder)
    store.save(session)
    try:
        yield record.base_url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
