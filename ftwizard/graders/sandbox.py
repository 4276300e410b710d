"""The parent's side of the python grader sandbox: how a worker is started and what it enforces.

A worker (:mod:`sandbox_worker`) is a fresh ``python -I -S`` process: isolated mode ignores
``PYTHON*`` variables, the user's site folder and the current folder; ``-S`` skips ``site``
(faster start, no ``.pth`` hooks), and the parent hands it the interpreter's site-packages
folders so graders can still import installed packages. Its environment is built from nothing
(no API keys, tokens or cloud credentials reach it) and its working folder is a new temporary
folder, removed when the worker stops. It starts a session of its own, and as root it is put
in a pids cgroup of its own (:class:`PidsCgroup`): at most :data:`MAX_PROCESSES` processes, and
every one of them is killed when the worker is.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from pydantic import BaseModel

WORKER_SCRIPT = Path(__file__).with_name("sandbox_worker.py")
# One reply line is a score and an error of at most 2,000 characters; anything far longer is a
# worker misbehaving, and is never buffered without bound.
MAX_LINE_BYTES = 64 * 1024
# Processes a worker may have at once, the worker itself included; threads count too, so
# this leaves room for the thread pools numerical libraries start (one per core).
MAX_PROCESSES = 256
_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


class SandboxReport(BaseModel):
    """What a grader worker enforces on this machine, as the worker itself reported it."""

    platform: str
    network: str | None = None
    filesystem: str | None = None
    signals: bool = False
    memory: bool = False
    metadata: str | None = None
    unix_sockets: str | None = None
    processes: str | None = None
    sweep: str | None = None

    def lines(self) -> list[str]:
        """One sentence per protection, saying plainly what is and is not enforced here."""
        out = [
            "Python graders run in a separate process with no API keys or tokens in its "
            "environment, in a temporary folder of their own; results come back as checked "
            "JSON, one row at a time."
        ]
        if self.network == "network namespace":
            out.append("Network: blocked (a network namespace with no devices).")
        elif self.network:
            out.append(f"Network: TCP blocked ({self.network}); other protocols are not.")
        else:
            out.append(f"Network: NOT blocked on this platform ({self.platform}).")
        if self.filesystem:
            out.append(
                f"Files: writes outside the temporary folder refused, reads limited to it and "
                f"the Python installation and system libraries ({self.filesystem})."
            )
        else:
            out.append(f"Files: NOT restricted on this platform ({self.platform}).")
        if not self.signals:
            out.append("Signals to other processes of this user: not blocked here.")
        # What this machine adds is one sentence (the note on the grader screen stays short);
        # each protection missing here gets a sentence of its own.
        held: list[str] = []
        if self.metadata:
            held.append(
                "metadata of files outside the folder (chmod, chown, times, renames) refused "
                f"({self.metadata})"
            )
        else:
            out.append("Metadata of files outside the folder (chmod, utime): NOT protected here.")
        if self.unix_sockets:
            held.append(f"unix sockets blocked ({self.unix_sockets})")
        else:
            out.append("Unix sockets to other programs: NOT blocked here.")
        if self.processes:
            held.append(f"at most {MAX_PROCESSES} processes ({self.processes})")
        else:
            out.append("Number of processes: NOT limited here.")
        if self.sweep:
            held.append(f"processes it starts are killed with it ({self.sweep})")
        else:
            out.append("Processes it starts in a session of their own may outlive it here.")
        if held:
            out.append("Also enforced: " + "; ".join(held) + ".")
        return out


def worker_env(temp_dir: str) -> dict[str, str]:
    """The worker's whole environment: only what the interpreter needs, no credentials."""
    env = {
        "PATH": os.defpath,
        "HOME": temp_dir,
        "TMPDIR": temp_dir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if sys.platform == "win32":
        # Windows cannot start Python without these; they hold no secrets.
        for name in ("SYSTEMROOT", "WINDIR", "TEMP", "TMP"):
            env[name] = temp_dir if name in ("TEMP", "TMP") else os.environ.get(name, "")
    return env


def site_paths() -> list[str]:
    """The interpreter's site-packages folders (``-S`` leaves them out of the worker's path)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(p for p in (paths.get("purelib"), paths.get("platlib")) if p))


# Shared libraries that compiled packages load (libgcc_s, libstdc++...), the loader's cache,
# time zone data and the random devices (torch reads /dev/urandom): read-only, no user data.
_SYSTEM_READ_PATHS = (
    "/dev/null",
    "/dev/random",
    "/dev/urandom",
    "/dev/zero",
    "/lib",
    "/lib32",
    "/lib64",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/local/lib",
    "/usr/share/zoneinfo",
    "/etc/ld.so.cache",
    "/etc/localtime",
)


def read_paths() -> list[str]:
    """Paths a worker may read besides its own folder: Python, its packages, system libraries."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site_paths()}
    roots.add(os.path.dirname(os.path.realpath(sys.executable)))
    roots |= {os.path.realpath(p) for p in roots}
    roots.update(_SYSTEM_READ_PATHS)
    return sorted(roots)


class PidsCgroup:
    """A pids cgroup of one worker: a process limit the kernel keeps even for root, and a list
    of every process to kill. Only root can make one; elsewhere :meth:`make` gives ``None``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def make(cls, limit: int) -> PidsCgroup | None:
        """A new cgroup allowing ``limit`` processes, or ``None`` where none can be made."""
        if not sys.platform.startswith("linux") or os.geteuid() != 0:
            return None
        for root in _CGROUP_ROOTS:
            if not (root / "cgroup.procs").is_file():
                continue
            if root.name != "pids" and "pids" not in _read(root / "cgroup.subtree_control"):
                continue  # cgroup v2 without the pids controller for children
            _remove_empty_leftovers(root)
            path = root / f"ftwizard-grader-{os.urandom(6).hex()}"
            try:
                path.mkdir()
                (path / "pids.max").write_text(str(limit))
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            return cls(path)
        return None

    def join(self, pid: int) -> bool:
        """Put ``pid`` (a worker that has not run grader code yet) in the cgroup."""
        try:
            (self.path / "cgroup.procs").write_text(str(pid))
        except OSError:
            return False
        return True

    def kill_all(self) -> None:
        """Kill every process left in the cgroup, then remove it."""
        for _ in range(50):
            pids = [int(p) for p in _read(self.path / "cgroup.procs").split() if p.isdigit()]
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # killed processes take a moment to leave


def _remove_empty_leftovers(root: Path) -> None:
    # A wizard killed with -9 leaves its workers' cgroups behind, empty once the workers died;
    # the kernel refuses to remove one that still holds a process, so live ones stay.
    for leftover in root.glob("ftwizard-grader-*"):
        if not _read(leftover / "cgroup.procs").strip():
            with contextlib.suppress(OSError):
                leftover.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def start_worker(
    source: str, *, timeout_s: float, memory_limit_mb: int | None
) -> tuple[subprocess.Popen[bytes], str, PidsCgroup | None]:
    """Start a worker for ``source`` and send its config; return it, its temporary folder and
    its cgroup (where one could be made)."""
    temp_dir = os.path.realpath(tempfile.mkdtemp(prefix="ftwizard-grader-"))
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(WORKER_SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=temp_dir,
        env=worker_env(temp_dir),
        close_fds=True,
        start_new_session=True,  # one process group to kill, wherever namespaces are missing
    )
    # The worker waits for its config before anything else: it joins the cgroup in time.
    cgroup = PidsCgroup.make(MAX_PROCESSES)
    if cgroup is not None and not cgroup.join(process.pid):
        cgroup.kill_all()
        cgroup = None
    config = {
        "source": source,
        "timeout_s": timeout_s,
        "memory_limit_mb": memory_limit_mb,
        "temp_dir": temp_dir,
        "site_paths": site_paths(),
        "read_paths": read_paths(),
        "max_processes": MAX_PROCESSES,
        "cgroup": cgroup is not None,
    }
    assert process.stdin is not None
    process.stdin.write(json.dumps(config).encode() + b"\n")
    process.stdin.flush()
    return process, temp_dir, cgroup


class LineTooLong(Exception):
    """A worker wrote more than :data:`MAX_LINE_BYTES` without a newline."""


class LineReader:
    """Reads a worker's stdout a line at a time with a deadline, never without bound."""

    def __init__(self, stream: Any) -> None:
        self._fd: int = stream.fileno()
        self._buffer = b""
        self._eof = False
        self._queue: Queue[bytes] | None = None
        if os.name != "posix":
            # select() cannot wait on pipes on Windows: a thread reads into a queue instead.
            self._queue = Queue()
            threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._queue is not None
        try:
            while chunk := os.read(self._fd, 65536):
                self._queue.put(chunk)
        except OSError:
            pass  # the pipe was closed under us: the worker was stopped
        self._queue.put(b"")

    def pending(self) -> bool:
        """Whether bytes past the last line were read already (a worker wrote unasked)."""
        return bool(self._buffer)

    def _more(self, timeout: float) -> bytes | None:
        if self._queue is not None:
            try:
                return self._queue.get(timeout=timeout)
            except Empty:
                return None
        if not select.select([self._fd], [], [], timeout)[0]:
            return None
        return os.read(self._fd, 65536)

    def readline(self, timeout: float) -> bytes | None:
        """The next line without its newline; ``None`` on timeout; ``b""`` at end of file."""
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE_BYTES:
                raise LineTooLong
            if self._eof:
                return b""
            chunk = self._more(timeout)
            if chunk is None:
                return None
            if not chunk:
                self._eof = True
                continue
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        if len(line) > MAX_LINE_BYTES:
            raise LineTooLong
        return line


@functools.cache
def probe() -> SandboxReport:
    """Start one worker to learn what this machine enforces (cached for the process)."""
    from ftwizard.graders.python_pool import PythonGraderPool

    with PythonGraderPool(1, timeout_s=5.0) as pool:
        pool.grade("def grade(sample, item):\n    return 0.0\n", [({}, {})])
        return pool.report or SandboxReport(platform=sys.platform)
