"""Hostile python graders: each tries to escape the sandbox one way and must fail.

Each test would pass for the grader (and fail here) with an unsandboxed worker: one that
inherits the environment and working folder, can reach the network, write or read any file,
signal other processes, or talk to the parent over a pickle pipe.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftwizard.graders.python_pool import PythonGraderPool, PythonOutcome
from ftwizard.graders.sandbox import SandboxReport, probe

SECRETS = {
    "OPENAI_API_KEY": "sk-test-secret-openai",
    "ANTHROPIC_API_KEY": "sk-ant-test-secret",
    "HF_TOKEN": "hf_test_secret_token",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secret/google-credentials.json",
    "AWS_SECRET_ACCESS_KEY": "aws-test-secret",
}


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[PythonGraderPool]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with PythonGraderPool(1, timeout_s=5.0, memory_limit_mb=512) as p:
        yield p


@pytest.fixture(scope="module")
def enforced() -> SandboxReport:
    return probe()


def one(pool: PythonGraderPool, source: str, item: dict[str, object]) -> PythonOutcome:
    return pool.grade(source, [({"output_text": ""}, item)])[0]


REPORT = "def grade(sample, item):\n    raise RuntimeError({expr})\n"


def test_the_worker_environment_holds_no_credentials(pool: PythonGraderPool) -> None:
    outcome = one(
        pool, REPORT.format(expr="__import__('json').dumps(dict(__import__('os').environ))"), {}
    )
    assert outcome.error is not None
    env = json.loads(outcome.error.removeprefix("RuntimeError: ").rsplit(" (source line", 1)[0])
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}
    assert not any(secret in outcome.error for secret in SECRETS.values())


def test_the_worker_runs_in_a_temporary_folder_of_its_own(pool: PythonGraderPool) -> None:
    source = (
        "import os\n\ndef grade(sample, item):\n"
        "    open('scratch.txt', 'w').write('graders may use their own folder')\n"
        "    raise RuntimeError(os.getcwd())\n"
    )
    outcome = one(pool, source, {})
    assert outcome.error is not None
    folder = outcome.error.removeprefix("RuntimeError: ").split(" (source line")[0]
    assert folder != os.getcwd()
    assert Path(folder).name.startswith("ftwizard-grader-")
    assert Path(folder).is_relative_to(os.path.realpath(tempfile.gettempdir()))
    assert (Path(folder) / "scratch.txt").exists()
    pool.close()
    assert not Path(folder).exists()


def test_the_grader_cannot_reach_a_server_on_this_machine(
    pool: PythonGraderPool, enforced: SandboxReport
) -> None:
    if enforced.network is None:
        pytest.skip(f"network is not blocked on {enforced.platform} (the grader step says so)")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(3)
    accepted: list[object] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    source = (
        "import socket\n\ndef grade(sample, item):\n"
        "    socket.create_connection(('127.0.0.1', item['port']), timeout=2).sendall(b'x')\n"
        "    return 1.0\n"
    )
    outcome = one(pool, source, {"port": server.getsockname()[1]})
    thread.join()
    server.close()
    assert outcome.score == 0.0
    assert outcome.error is not None and "Error" in outcome.error
    assert accepted == []


def test_the_grader_cannot_write_outside_its_folder(
    pool: PythonGraderPool, enforced: SandboxReport, tmp_path: Path
) -> None:
    if enforced.filesystem is None:
        pytest.skip(f"file writes are not restricted on {enforced.platform}")
    target = tmp_path / "pwned.txt"
    source = "def grade(sample, item):\n    open(item['path'], 'w').write('x')\n    return 1.0\n"
    outcome = one(pool, source, {"path": str(target)})
    assert outcome.score == 0.0
    # Landlock says EACCES; the read-only mount namespace, checked first, says EROFS
    assert outcome.error is not None
    assert outcome.error.startswith(("PermissionError", "OSError: [Errno 30]"))
    assert not target.exists()


def test_the_grader_cannot_read_files_outside_its_folder_and_python(
    pool: PythonGraderPool, enforced: SandboxReport, tmp_path: Path
) -> None:
    if enforced.filesystem is None:
        pytest.skip(f"file reads are not restricted on {enforced.platform}")
    secret = tmp_path / "credentials.json"
    secret.write_text('{"api_key": "sk-on-disk-secret"}', encoding="utf-8")
    source = "def grade(sample, item):\n    raise RuntimeError(open(item['path']).read())\n"
    outcome = one(pool, source, {"path": str(secret)})
    assert outcome.error is not None and outcome.error.startswith("PermissionError")
    assert "sk-on-disk-secret" not in outcome.error


def test_the_grader_cannot_signal_processes_outside_the_sandbox(
    pool: PythonGraderPool, enforced: SandboxReport
) -> None:
    if not enforced.signals:
        pytest.skip(f"signals are not scoped on {enforced.platform}")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        source = (
            "import os, signal\n\ndef grade(sample, item):\n"
            "    os.kill(item['pid'], signal.SIGKILL)\n    return 1.0\n"
        )
        outcome = one(pool, source, {"pid": victim.pid})
        # Landlock refuses it (EPERM); in a pid namespace the process is not even there
        assert outcome.error is not None
        assert outcome.error.startswith(("PermissionError", "ProcessLookupError"))
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


# Writes a pickle that would run code in whoever unpickles it to every descriptor it has, framed
# as multiprocessing's pipes frame them, and a forged JSON reply after it.
PICKLER = """
import os, pickle, struct

class Payload:
    def __reduce__(self):
        return (exec, ("open(%r, 'w').write('ran in the parent')" % MARKER,))

def grade(sample, item):
    data = pickle.dumps(Payload())
    for fd in range(3, 256):
        try:
            os.write(fd, struct.pack("!i", len(data)) + data)
            os.write(fd, b'{"nonce": "x", "id": 0, "score": 1.0, "error": null}\\n')
        except OSError:
            pass
    return 1.0
"""


def test_a_crafted_pickle_from_the_grader_never_runs_in_the_parent(
    pool: PythonGraderPool, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned.txt"
    source = PICKLER.replace("MARKER", repr(str(marker)), 1)
    outcomes = pool.grade(source, [({}, {}), ({}, {})])
    assert not marker.exists()
    assert [o.score for o in outcomes] == [0.0, 0.0]
    assert all(o.error and o.error.startswith("the grader's process") for o in outcomes)


# Finds the worker's channel to the parent (a pipe connection, or the request it was sent and
# every descriptor) and sends high scores for the rows after its own.
FORGER = """
import gc, json, os, sys

def grade(sample, item):
    if item["kind"] != "forger":
        return 0.0
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if hasattr(value, "send") and hasattr(value, "recv"):
                for _ in range(10):
                    value.send((1.0, None))
        frame = frame.f_back
    nonces = [o["nonce"] for o in gc.get_objects() if isinstance(o, dict) and "nonce" in o]
    for nonce in nonces:
        for row in range(10):
            line = json.dumps({"nonce": nonce, "id": row, "score": 1.0, "error": None})
            for fd in range(3, 64):
                try:
                    os.write(fd, line.encode() + b"\\n")
                except OSError:
                    pass
    return 0.0
"""


def test_a_grader_cannot_forge_the_scores_of_other_rows(pool: PythonGraderPool) -> None:
    kinds = ["forger", "honest", "honest", "honest", "honest"]
    outcomes = pool.grade(FORGER, [({}, {"kind": k}) for k in kinds])
    assert [o.score for o in outcomes] == [0.0] * 5
    assert outcomes[0].error is not None
    assert [o.error for o in outcomes[1:]] == [None] * 4


def test_an_endless_reply_is_cut_off_and_the_pool_recovers(pool: PythonGraderPool) -> None:
    source = (
        "import os\n\ndef grade(sample, item):\n    if item['flood']:\n"
        "        for fd in range(3, 64):\n"
        "            try:\n                os.write(fd, b'7' * 200_000)\n"
        "            except OSError:\n                pass\n    return 0.5\n"
    )
    outcomes = pool.grade(source, [({}, {"flood": True}), ({}, {"flood": False})])
    assert outcomes[0] == PythonOutcome(0.0, "the grader's process sent an oversized reply")
    assert outcomes[1] == PythonOutcome(0.5)


def test_the_report_says_what_this_platform_enforces(enforced: SandboxReport) -> None:
    text = " ".join(enforced.lines())
    assert "no API keys" in text
    if sys.platform.startswith("linux") and enforced.network == "network namespace":
        assert "Network: blocked" in text
    if enforced.network is None:
        assert "Network: NOT blocked" in text
    if enforced.filesystem is None:
        assert "Files: NOT restricted" in text


def test_the_report_says_plainly_what_is_not_enforced() -> None:
    bare = SandboxReport(platform="darwin").lines()
    assert bare[1] == "Network: NOT blocked on this platform (darwin)."
    assert bare[2] == "Files: NOT restricted on this platform (darwin)."
    assert bare[3] == "Signals to other processes of this user: not blocked here."
    tcp_only = SandboxReport(platform="linux", network="landlock (TCP only)").lines()
    assert tcp_only[1] == "Network: TCP blocked (landlock (TCP only)); other protocols are not."


def test_the_grader_cannot_read_the_environment_of_the_wizard_through_proc(
    pool: PythonGraderPool, enforced: SandboxReport
) -> None:
    if enforced.filesystem is None or not Path(f"/proc/{os.getpid()}/environ").exists():
        pytest.skip(f"/proc reads are not restricted on {enforced.platform}")
    source = "def grade(sample, item):\n    return len(open(item['path'], 'rb').read()) * 0.0\n"
    outcome = one(pool, source, {"path": f"/proc/{os.getpid()}/environ"})
    assert outcome.error is not None and outcome.error.startswith("PermissionError")
