"""``import openai-job`` against a server that lies, stalls or sends garbage: a message, never a
traceback or a hang.

Every call to the outside has a total deadline (``RetryPolicy.total_deadline_s``), so a server
that accepts and never answers, or trickles bytes so no read timeout fires, is given up on.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.migrate.openai_import import safe_file_name
from ftwizard.migrate.openai_reader import OpenAIJobReader
from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import RetryPolicy
from ftwizard.store import SessionStore
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


@pytest.mark.parametrize(
    "reply",
    [
        FakeResponse(200, "<html>not json</html>", content_type="application/json"),
        FakeResponse(200, b"[" * 100_000 + b"]" * 100_000, content_type="application/json"),
        FakeResponse(200, {"id": 5, "method": "supervised", "training_file": None}),
        FakeResponse(200, {"id": "ftjob-x", "method": {"type": 7}}),
        FakeResponse(200, [1, 2, 3]),
        FakeResponse(200, {"id": "ftjob-x", "status": "succeeded"}),  # no training_file
        FakeResponse(200, {"object": "fine_tuning.job", "id": "ftjob-x", "method": []}),
        FakeResponse(200, "\x00" * 100, content_type="application/json"),
    ],
)
def test_a_garbled_job_is_an_error_message(
    openai_env: FakeOpenAIServer,
    store: SessionStore,
    capsys: pytest.CaptureFixture[str],
    reply: FakeResponse,
) -> None:
    openai_env.inject(reply, path="/v1/fine_tuning/jobs/ftjob-x")
    code, text = _run(capsys, "import", "openai-job", "ftjob-x", "--backend", "together")
    assert code in (1, 2)
    assert "ftwizard" in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("train\x00.jsonl", "train.jsonl"),
        ("x" * 5000 + ".jsonl", None),
        ("../../../etc/passwd", "passwd"),
        ("..", "train.jsonl"),
        ("a\\b\\c.jsonl", "c.jsonl"),
        ("line\nbreak\u202e.jsonl", "linebreak.jsonl"),
        ("\udcff.jsonl", ".jsonl"),
        ("", "train.jsonl"),
    ],
)
def test_server_file_names_become_plain_short_file_names(name: str, expected: str | None) -> None:
    safe = safe_file_name(name, "train.jsonl")
    assert "/" not in safe and "\x00" not in safe and len(safe.encode()) <= 180
    if expected is not None:
        assert safe == expected
    else:
        assert safe.endswith(".jsonl")


def test_hostile_file_names_still_import(
    finished_job: dict[str, Any],
    openai_env: FakeOpenAIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = finished_job["job"]
    openai_env.tuning.files[job.training_file].filename = "\x00" + "n" * 5000 + ".jsonl"
    openai_env.tuning.files[job.validation_file].filename = "../../outside.jsonl"
    code, text = _run(capsys, "import", "openai-job", job.id, "--backend", "fireworks", "--json")
    assert code == 0, text


@pytest.fixture
def silent_server() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections, reads the request, then trickles a header byte every 0.2 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    def trickle(conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1", held
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_server_that_never_finishes_answering_hits_the_total_deadline(
    silent_server: tuple[str, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, held = silent_server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + "x" * 20)
    # The read timeout (2 s) never fires: a byte arrives every 0.2 s. The deadlines do.
    policy = RetryPolicy(
        initial_delay_s=0.01, max_delay_s=0.01, attempt_deadline_s=1.0, total_deadline_s=2.5
    )
    reader = OpenAIJobReader(base_url=base_url, retry=policy, timeout_s=2.0)
    started = time.monotonic()

    async def read() -> None:
        try:
            await reader.job("ftjob-x")
        finally:
            await reader.aclose()

    with pytest.raises(ProviderError) as caught:
        asyncio.run(read())
    elapsed = time.monotonic() - started
    assert elapsed < 6, elapsed
    assert "no complete answer within" in str(caught.value)
    assert len(held) >= 2  # it retried within the deadline, then gave up


def test_the_reader_has_a_total_deadline_by_default() -> None:
    reader = OpenAIJobReader(base_url="http://127.0.0.1:9/v1")
    assert reader.retry.total_deadline_s <= 150
    assert reader.retry.attempt_deadline_s <= 60
    assert RetryPolicy().total_deadline_s < float("inf")


def test_nothing_is_left_in_the_session_folder_but_data(
    finished_job: dict[str, Any], openai_env: FakeOpenAIServer, store: SessionStore
) -> None:
    job = finished_job["job"]
    openai_env.tuning.files[job.training_file].filename = "../" * 50 + "x.jsonl"
    assert main(["import", "openai-job", job.id, "--backend", "fireworks"]) == 0
    (session_dir,) = [p for p in store.root.iterdir() if p.is_dir()]
    names = [p.name for p in Path(session_dir).rglob("*")]
    assert not any(name.endswith(".tmp") for name in names)
