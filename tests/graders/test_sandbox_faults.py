"""What a hostile python grader tried and no longer gets away with.

A pathname unix socket outside its folder, metadata changes (chmod, utime, xattrs, chown,
renames) of files outside it, a double-forked ``setsid`` child that ignores SIGTERM, a module
that spins while it loads, and a fork bomb. Each test skips where the report says this
platform does not enforce it (docs/graders.md lists what each platform gets).
"""

from __future__ import annotations

import os
import socket
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftwizard.graders.python_pool import PythonGraderPool
from ftwizard.graders.sandbox import MAX_PROCESSES, SandboxReport, probe


@pytest.fixture
def pool() -> Iterator[PythonGraderPool]:
    with PythonGraderPool(1, timeout_s=3.0, memory_limit_mb=512) as p:
        yield p


@pytest.fixture(scope="module")
def enforced() -> SandboxReport:
    return probe()


def _grade(pool: PythonGraderPool, body: str, item: dict[str, object]) -> tuple[float, str | None]:
    source = "import os, socket, signal, sys, time\n\ndef grade(sample, item):\n" + body
    outcome = pool.grade(source, [({}, item)])[0]
    return outcome.score, outcome.error


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_a_pathname_unix_socket_outside_the_folder_is_unreachable(
    pool: PythonGraderPool, enforced: SandboxReport, tmp_path: Path, kind: int
) -> None:
    if enforced.unix_sockets is None:
        pytest.skip(f"unix sockets are not blocked on {enforced.platform}")
    path = str(tmp_path / "listener.sock")
    listener = socket.socket(socket.AF_UNIX, kind)
    listener.bind(path)
    if kind == socket.SOCK_STREAM:
        listener.listen(1)
    listener.settimeout(0.5)
    try:
        body = (
            "    s = socket.socket(socket.AF_UNIX, item['kind'])\n"
            "    s.connect(item['path'])\n    s.sendall(b'stolen')\n    return 1.0\n"
        )
        score, error = _grade(pool, body, {"path": path, "kind": int(kind)})
        assert score == 0.0 and error is not None and error.startswith("PermissionError")
        with pytest.raises(TimeoutError):
            if kind == socket.SOCK_STREAM:
                listener.accept()
            else:
                listener.recv(100)
    finally:
        listener.close()


METADATA_CHANGES = {
    "chmod": "os.chmod(p, 0o777)",
    "utime": "os.utime(p, (0, 0))",
    "setxattr": "os.setxattr(p, 'user.pwned', b'1')",
    "chown": "os.chown(p, 12345, 12345)",
    "rename": "os.rename(p, p + '.moved')",
    "unlink": "os.unlink(p)",
    "link": "os.link(p, p + '.link')",
    "truncate": "os.truncate(p, 0)",
    "mkdir beside": "os.mkdir(p + '.dir')",
    "symlink beside": "os.symlink('/etc/passwd', p + '.sym')",
}


@pytest.mark.parametrize("change", sorted(METADATA_CHANGES))
def test_metadata_of_files_outside_the_folder_cannot_be_changed(
    pool: PythonGraderPool, enforced: SandboxReport, tmp_path: Path, change: str
) -> None:
    if enforced.metadata is None:
        pytest.skip(f"metadata is not protected on {enforced.platform}")
    victim = tmp_path / "session.json"
    victim.write_text("{}", encoding="utf-8")
    victim.chmod(0o600)
    before = victim.stat()
    body = f"    p = item['path']\n    {METADATA_CHANGES[change]}\n    return 1.0\n"
    score, error = _grade(pool, body, {"path": str(victim)})
    assert score == 0.0 and error is not None, error
    after = victim.stat()
    assert stat.S_IMODE(after.st_mode) == 0o600
    assert (after.st_mtime_ns, after.st_uid, after.st_size) == (
        before.st_mtime_ns,
        before.st_uid,
        before.st_size,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session.json"]


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_double_forked_setsid_child_ignoring_sigterm_dies_with_the_grade(
    enforced: SandboxReport,
) -> None:
    if enforced.sweep is None:
        pytest.skip(f"processes a grader starts are not swept on {enforced.platform}")
    token = f"ftwizard-orphan-{uuid.uuid4().hex}"
    body = (
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            code = 'import signal, time; signal.signal(15, 1); time.sleep(60)'\n"
        "            os.execv(sys.executable, [sys.executable, '-c', code, item['token']])\n"
        "        os._exit(0)\n"
        "    time.sleep(0.5)\n"
        "    return 1.0\n"
    )
    with PythonGraderPool(1, timeout_s=5.0) as pool:
        score, error = _grade(pool, body, {"token": token})
        assert (score, error) == (1.0, None)
        assert _processes_with(token), "the grader's grandchild should be running during the grade"
    deadline = time.monotonic() + 5
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(token) == []


@pytest.mark.parametrize(
    "spin",
    [
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n",
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass\n",
        "import time\nwhile True:\n    try:\n        time.sleep(100)\n"
        "    except BaseException:\n        pass\n",
    ],
)
def test_a_grader_spinning_while_it_loads_costs_one_timeout_not_one_per_row(spin: str) -> None:
    source = spin + "\ndef grade(sample, item):\n    return 1.0\n"
    started = time.monotonic()
    with PythonGraderPool(2, timeout_s=1.0) as pool:
        results = pool.grade(source, [({}, {})] * 20)
        again = pool.grade(source, [({}, {})] * 3)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed  # one load timeout (1 s + 2 s grace) per worker, in parallel
    assert all(r.score == 0.0 for r in results + again)
    assert {r.error for r in results + again} == {
        "the grader's source did not load within 1 s (the per-call timeout); its process was killed"
    }


def test_a_fork_bomb_hits_the_process_limit(enforced: SandboxReport) -> None:
    if enforced.processes is None:
        pytest.skip(f"processes are not limited on {enforced.platform}")
    body = (
        "    n = 0\n"
        "    try:\n"
        "        for _ in range(1000):\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(30)\n"
        "                os._exit(0)\n"
        "            n += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    return n / 1000\n"
    )
    with PythonGraderPool(1, timeout_s=10.0) as pool:
        score, error = _grade(pool, body, {})
    assert error is None
    assert 0 < score * 1000 < MAX_PROCESSES


def test_the_report_names_each_new_protection(enforced: SandboxReport) -> None:
    text = "\n".join(enforced.lines())
    if enforced.metadata:
        assert "metadata of files outside the folder" in text and "refused" in text
    if enforced.processes:
        assert f"at most {MAX_PROCESSES}" in text
    bare = "\n".join(SandboxReport(platform="darwin").lines())
    assert "Metadata of files outside the folder (chmod, utime): NOT protected here." in bare
    assert "Number of processes: NOT limited here." in bare
    assert "may outlive it here" in bare
    if os.name == "posix" and os.uname().sysname == "Linux":
        assert enforced.sweep == "pid namespace" or enforced.sweep is None
