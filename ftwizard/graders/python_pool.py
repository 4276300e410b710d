"""Python graders run in reusable sandboxed worker processes, never in the wizard's own process.

Each worker (:mod:`sandbox_worker`, started by :mod:`sandbox`) loads one grader's source and
then grades many rows, so a dataset costs a few process starts, not one per row. A worker only
ever holds one source, so one grader of a ``multi`` cannot tamper with another's function.

Nothing a worker sends is trusted. It gets one row at a time, with a fresh random nonce; its
reply is one JSON line (size-capped, never unpickled) that must echo that nonce and row id and
hold a finite score in [0, 1]. A worker that answers for another row, writes anything
unasked, sends a malformed or oversized line, does not answer within the timeout plus a grace,
or dies, gets that row scored 0 with the reason, and is replaced by a fresh worker. Per call: a
soft timeout (``SIGALRM`` inside the worker) and a hard one (the parent kills it); a memory
limit (``RLIMIT_AS``) turns a runaway allocation into a ``MemoryError`` for that row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ftwizard.graders.sandbox import (
    LineReader,
    LineTooLong,
    SandboxReport,
    start_worker,
)
from ftwizard.graders.sandbox_worker import MAX_ERROR_CHARS

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_LIMIT_MB = 2048
# Extra time the parent allows beyond the soft timeout before it kills the worker.
_HARD_GRACE_S = 2.0
# How long a new worker may take to start (interpreter start), besides loading the source.
_START_TIMEOUT_S = 60.0
# Workers are kept for this many sources at once (a multi grader may hold several).
_MAX_SOURCES = 4
_REPLY_KEYS = frozenset({"nonce", "id", "score", "error"})

Row = tuple[dict[str, Any], dict[str, Any]]
UNASKED = "the grader's process wrote output nobody asked for"


@dataclass(frozen=True, slots=True)
class PythonOutcome:
    """One row's result: a score in [0, 1], and the error when the grader failed (score 0)."""

    score: float
    error: str | None = None


class _WorkerFault(Exception):
    """The worker broke the protocol, hung or died on a row: the row's error, then a restart."""


class _StaleReply(_WorkerFault):
    """A line for an earlier request of this worker: the grader of that row wrote it itself.

    The earlier row's score is then not to be trusted; the current row is innocent and is
    graded again by a fresh worker.
    """


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _check_reply(
    line: bytes, nonce: str, row_id: int, earlier: Sequence[str] = ()
) -> PythonOutcome:
    """The outcome a reply line gives, or :class:`_WorkerFault` when it is not a valid reply."""
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise _WorkerFault("the grader's process sent a reply that is not JSON") from exc
    if isinstance(reply, dict) and reply.get("nonce") in earlier:
        raise _StaleReply(UNASKED)
    if not isinstance(reply, dict) or set(reply) != _REPLY_KEYS:
        raise _WorkerFault("the grader's process sent a malformed reply")
    if reply["nonce"] != nonce or reply["id"] != row_id or isinstance(reply["id"], bool):
        raise _WorkerFault("the grader's process answered for a row it was not given")
    score, error = reply["score"], reply["error"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise _WorkerFault("the grader's process sent a score that is not a number")
    if not 0.0 <= score <= 1.0:
        raise _WorkerFault("the grader's process sent a score outside [0, 1]")
    if error is not None and not isinstance(error, str):
        raise _WorkerFault("the grader's process sent a malformed error")
    if error is not None:
        return PythonOutcome(0.0, error[:MAX_ERROR_CHARS])
    return PythonOutcome(float(score))


class _Worker:
    """One sandboxed worker process with its grader's source loaded."""

    def __init__(self, source: str, timeout_s: float, memory_limit_mb: int | None) -> None:
        self.timeout_s = timeout_s
        self.process, self.temp_dir, self._cgroup = start_worker(
            source, timeout_s=timeout_s, memory_limit_mb=memory_limit_mb
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self._reader = LineReader(self.process.stdout)
        self._stdin = self.process.stdin
        self._stdin_fd = self._stdin.fileno()
        self._nonces: list[str] = []
        # The last few nonces sent: a line that echoes one arrived late, written by a grader.
        self._earlier: deque[str] = deque(maxlen=8)
        # The row whose reply came last (its score is revoked when stale lines follow it).
        self.last_row: int | None = None
        self.started: bool | None = None
        self.load_error: str | None = None
        self.load_timed_out = False
        self.enforced: dict[str, Any] = {}

    def wait_ready(self) -> str | None:
        """Wait for the worker's start and load; the error every row gets, or ``None``.

        Starting the interpreter may take :data:`_START_TIMEOUT_S`; loading the grader's source
        gets only the per-call timeout (plus the grace), like one row.
        """
        if self.started is None:
            started = self._line(_START_TIMEOUT_S, "started")
            if started is None:
                self.started = False
                self.load_error = (
                    f"the grader's process did not start within {_START_TIMEOUT_S:g} s"
                )
                return self.load_error
            enforced = started.get("enforced")
            self.enforced = enforced if isinstance(enforced, dict) else {}
            ready = self._line(self.timeout_s + _HARD_GRACE_S, "ready")
            self.started = ready is not None
            if ready is None:
                self.load_error = (
                    f"the grader's source did not load within {self.timeout_s:g} s "
                    "(the per-call timeout); its process was killed"
                )
                self.load_timed_out = True
            else:
                error = ready.get("error")
                self.load_error = error[:MAX_ERROR_CHARS] if isinstance(error, str) else None
        return self.load_error

    def _line(self, budget: float, key: str) -> dict[str, Any] | None:
        """The next line as an object whose ``key`` is true, or ``None`` (late, malformed)."""
        try:
            line = self._reader.readline(budget)
            message = json.loads(line) if line else None
        except (LineTooLong, ValueError, RecursionError):
            return None
        return message if isinstance(message, dict) and message.get(key) is True else None

    def ask(self, row_id: int, sample: dict[str, Any], item: dict[str, Any]) -> PythonOutcome:
        """Grade one row; raise :class:`_WorkerFault` when the worker must be replaced."""
        nonce = self._nonce()
        try:
            request = json.dumps({"nonce": nonce, "id": row_id, "sample": sample, "item": item})
        except (TypeError, ValueError, RecursionError) as exc:
            return PythonOutcome(0.0, f"cannot send the row to the grader: {exc}")
        try:
            data = request.encode() + b"\n"
            while data:  # a large row does not fit the pipe in one write
                data = data[os.write(self._stdin_fd, data) :]
            line = self._reader.readline(self.timeout_s + _HARD_GRACE_S)
        except LineTooLong as exc:
            raise _WorkerFault("the grader's process sent an oversized reply") from exc
        except OSError:
            line = b""
        if line is None:
            raise _WorkerFault(
                f"grade() did not return within {self.timeout_s:g} s; its process was killed"
            )
        if not line:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1)
            code = self.process.returncode
            raise _WorkerFault(f"the grader's process died (exit code {code}) on this row")
        try:
            outcome = _check_reply(line, nonce, row_id, self._earlier)
        finally:
            self._earlier.append(nonce)
        if self._reader.pending():
            # More than the one reply arrived: the worker writes lines of its own.
            raise _WorkerFault(UNASKED)
        self.last_row = row_id
        return outcome

    def _nonce(self) -> str:
        # Random bytes are drawn in bulk: one system call per 256 rows, not one per row.
        if not self._nonces:
            self._nonces = [chunk.hex() for chunk in _split(os.urandom(16 * 256), 16)]
        return self._nonces.pop()

    def stop(self) -> None:
        """End the process (politely first) and remove its temporary folder."""
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()
        try:
            self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.kill()
        self._cleanup()

    def kill(self) -> None:
        """End the process at once and remove its temporary folder."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._cleanup()

    def _sweep(self) -> None:
        # Whatever the grader started: its pid namespace ends with it where there is one; the
        # cgroup (as root) and the worker's process group catch the rest.
        if hasattr(os, "killpg"):
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()
            self._cgroup = None

    def _cleanup(self) -> None:
        self._sweep()
        for stream in (self._stdin, self.process.stdout):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _key(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


class PythonGraderPool:
    """A reusable set of sandboxed worker processes that run python graders with limits.

    Use one pool for a whole grading session (or as a context manager); :meth:`grade` may be
    called many times with different sources. Thread-safe for one :meth:`grade` at a time.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.size = workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.restarts = 0
        # What the sandbox enforces here, as the first worker to start reported it.
        self.report: SandboxReport | None = None
        self._sets: OrderedDict[str, list[_Worker]] = OrderedDict()
        # Sources whose workers could not start or load them: every row gets this error at
        # once, instead of a new worker (and another full wait) per row.
        self._broken: dict[str, str] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> PythonGraderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker process."""
        for workers in self._sets.values():
            for w in workers:
                w.stop()
        self._sets.clear()

    def pids(self) -> list[int]:
        """Process ids of the live workers, for every source (to show the pool is reused)."""
        return [w.process.pid for ws in self._sets.values() for w in ws]

    def start(self, source: str) -> None:
        """Start ``source``'s workers now, so their start-up overlaps other work (no waiting)."""
        with self._lock:
            self._workers_for(source)

    def grade(self, source: str, rows: Sequence[Row]) -> list[PythonOutcome]:
        """Grade ``rows`` of ``(sample, item)`` with ``source``'s ``grade``, in order."""
        if not rows:
            return []
        broken = self._broken.get(_key(source))
        if broken is not None:
            return [PythonOutcome(0.0, broken) for _ in rows]
        with self._lock:
            workers = self._workers_for(source)
            for w in workers:
                w.last_row = None  # row numbers are per call
            results: list[PythonOutcome | None] = [None] * len(rows)
            chunks: queue.Queue[tuple[int, int]] = queue.Queue()
            # Smaller chunks for small jobs, so every worker gets a share.
            size = max(1, min(64, -(-len(rows) // len(workers))))
            for start in range(0, len(rows), size):
                chunks.put((start, min(start + size, len(rows))))
            threads = [
                threading.Thread(
                    target=self._drive, args=(workers, i, source, rows, chunks, results)
                )
                for i in range(len(workers))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return [r if r is not None else PythonOutcome(0.0, "not graded") for r in results]

    def _workers_for(self, source: str) -> list[_Worker]:
        key = _key(source)
        if key in self._sets:
            self._sets.move_to_end(key)
            return self._sets[key]
        while len(self._sets) >= _MAX_SOURCES:
            _, old = self._sets.popitem(last=False)
            for w in old:
                w.stop()
        workers = [self._new_worker(source) for _ in range(self.size)]
        self._sets[key] = workers
        return workers

    def _new_worker(self, source: str) -> _Worker:
        return _Worker(source, self.timeout_s, self.memory_limit_mb)

    def _ready(self, worker: _Worker) -> str | None:
        error = worker.wait_ready()
        if worker.started and self.report is None:
            e = worker.enforced
            texts = ("network", "filesystem", "metadata", "unix_sockets", "processes", "sweep")
            said = {k: e[k] for k in texts if isinstance(e.get(k), str)}
            self.report = SandboxReport(
                platform=sys.platform,
                signals=e.get("signals") is True,
                memory=e.get("memory") is True,
                **said,
            )
        return error

    def _drive(
        self,
        workers: list[_Worker],
        index: int,
        source: str,
        rows: Sequence[Row],
        chunks: queue.Queue[tuple[int, int]],
        results: list[PythonOutcome | None],
    ) -> None:
        key = _key(source)
        while True:
            try:
                start, end = chunks.get_nowait()
            except queue.Empty:
                return
            for i in range(start, end):
                broken = self._broken.get(key)
                if broken is not None:
                    results[i] = PythonOutcome(0.0, broken)
                    continue
                worker = workers[index]
                error = self._ready(worker)
                if error is not None:
                    results[i] = PythonOutcome(0.0, error)
                    if not worker.started:
                        self._broken[key] = error
                        worker.kill()
                    continue
                sample, item = rows[i]
                try:
                    results[i] = worker.ask(i, sample, item)
                except _StaleReply as fault:
                    if worker.last_row is not None:
                        results[worker.last_row] = PythonOutcome(0.0, str(fault))
                    self._replace(workers, index, source)
                    results[i] = self._retry(workers, index, source, i, rows[i])
                except _WorkerFault as fault:
                    results[i] = PythonOutcome(0.0, str(fault))
                    self._replace(workers, index, source)

    def _retry(
        self, workers: list[_Worker], index: int, source: str, i: int, row: Row
    ) -> PythonOutcome:
        """Grade a row again on the fresh worker that replaced a misbehaving one."""
        error = self._ready(workers[index])
        if error is not None:
            return PythonOutcome(0.0, error)
        try:
            return workers[index].ask(i, *row)
        except _WorkerFault as fault:
            self._replace(workers, index, source)
            return PythonOutcome(0.0, str(fault))

    def _replace(self, workers: list[_Worker], index: int, source: str) -> None:
        workers[index].kill()
        self.restarts += 1
        workers[index] = self._new_worker(source)
