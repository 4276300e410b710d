"""Python graders run in a reusable pool of worker processes, never in the wizard's own process.

Each worker compiles a grader's source once and then grades many rows, so a dataset costs a few
process starts, not one per row. Per call: a soft timeout (``SIGALRM`` raises inside the grader,
the worker lives on) and a hard one (the parent kills a worker that does not answer, starts a
fresh one and carries on with the next row). A memory limit (``RLIMIT_AS``) turns a runaway
allocation into a ``MemoryError`` for that row. Exceptions, non-numbers, NaN/inf and results
outside [0, 1] score 0 with the error kept for that row.

This is isolation for mistakes, not a security sandbox: a grader can still read files and open
sockets. Only the stdlib is imported here, because every worker imports this module on start.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import numbers
import os
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_LIMIT_MB = 2048
# Extra time the parent allows beyond the soft timeout before it kills the worker.
_HARD_GRACE_S = 2.0
# How long a new worker may take to start (interpreter start and imports).
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class PythonOutcome:
    """One row's result: a score in [0, 1], and the error when the grader failed (score 0)."""

    score: float
    error: str | None = None


class _GraderTimeout(BaseException):
    """Raised inside the grader by SIGALRM; a BaseException so ``except Exception`` misses it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _GraderTimeout()


# Windows has no SIGALRM: there only the parent's hard timeout (kill and restart) applies.
_HAS_ALARM = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


def _alarm(seconds: float) -> None:
    if _HAS_ALARM:
        signal.setitimer(signal.ITIMER_REAL, seconds)


def _short_traceback(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<grader>"]
    where = f" (source line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def check_result(value: Any) -> PythonOutcome:
    """Turn what ``grade`` returned into an outcome: a finite number in [0, 1] or an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return PythonOutcome(
            0.0, f"grade() returned {type(value).__name__} {value!r:.60}, not a number"
        )
    score = float(value)
    if not math.isfinite(score):
        return PythonOutcome(0.0, f"grade() returned {score}, not a finite number")
    if not 0.0 <= score <= 1.0:
        return PythonOutcome(0.0, f"grade() returned {score:g}, outside [0, 1]")
    return PythonOutcome(score)


def _load(source: str) -> tuple[Callable[..., Any] | None, str | None]:
    namespace: dict[str, Any] = {"__name__": "grader"}
    try:
        exec(compile(source, "<grader>", "exec"), namespace)
    except _GraderTimeout:
        return None, "grader source took too long to load"
    except BaseException as exc:  # the user's module body may raise anything, SystemExit too
        return None, f"grader source failed to load: {_short_traceback(exc)}"
    fn = namespace.get("grade")
    if not callable(fn):
        return None, "the source defines no grade(sample, item) function"
    return fn, None


def _worker_main(conn: Connection, memory_limit_mb: int | None) -> None:
    """Worker loop: load sources, grade rows, answer one message per row."""
    # A grader's print() must not land in the parent's stdout (it would corrupt --json output).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
    if memory_limit_mb:
        try:
            import resource

            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass  # platforms without RLIMIT_AS run without a memory limit
    if _HAS_ALARM:
        signal.signal(signal.SIGALRM, _on_alarm)
    graders: dict[str, Callable[..., Any]] = {}
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "stop":
            return
        if msg[0] == "load":
            _, key, source, timeout = msg
            _alarm(timeout)
            try:
                fn, error = _load(source)
            finally:
                _alarm(0)
            if fn is not None:
                graders[key] = fn
            conn.send(("loaded", error))
            continue
        _, key, rows, timeout = msg
        fn = graders[key]
        for sample, item in rows:
            try:
                _alarm(timeout)
                try:
                    value = fn(sample, item)
                finally:
                    _alarm(0)
                out = check_result(value)
            except _GraderTimeout:
                out = PythonOutcome(0.0, f"grade() timed out after {timeout:g} s")
            except MemoryError:
                out = PythonOutcome(
                    0.0, f"grade() ran out of memory (memory limit {memory_limit_mb} MB)"
                )
            except BaseException as exc:  # the user's grader may raise anything
                out = PythonOutcome(0.0, _short_traceback(exc))
            conn.send((out.score, out.error))


@contextmanager
def _real_stderr() -> Iterator[None]:
    """Give ``sys.stderr`` a real file descriptor while a worker is spawned.

    The spawn start method hands ``sys.stderr.fileno()`` to the child; inside a Textual app
    stderr is a capture object whose descriptor is -1, which makes the spawn fail.
    """
    current = sys.stderr
    try:
        usable = current is not None and current.fileno() >= 0
    except (AttributeError, OSError, ValueError):
        usable = False
    if usable:
        yield
        return
    fallback = sys.__stderr__
    devnull = None
    if fallback is None:
        devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
        fallback = devnull
    sys.stderr = fallback
    try:
        yield
    finally:
        sys.stderr = current
        if devnull is not None:
            devnull.close()


class _Worker:
    def __init__(self, ctx: Any, memory_limit_mb: int | None) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, memory_limit_mb), daemon=True, name="ftwizard-grader"
        )
        with _real_stderr():
            self.process.start()
        child.close()
        self.loaded: dict[str, str | None] = {}
        self.ready = False

    def wait_ready(self) -> bool:
        """Wait for the worker's start (slow on a busy machine; not the grader's fault)."""
        if not self.ready:
            try:
                self.ready = self.conn.poll(_START_TIMEOUT_S) and self.conn.recv() == ("ready",)
            except (EOFError, OSError):
                self.ready = False
        return self.ready

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class PythonGraderPool:
    """A reusable set of worker processes that run python graders with limits.

    Use one pool for a whole grading session (or as a context manager); :meth:`grade` may be
    called many times with different sources. Thread-safe for one :meth:`grade` at a time.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        chunk_size: int = 64,
    ) -> None:
        self.size = workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.chunk_size = chunk_size
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def __enter__(self) -> PythonGraderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker process."""
        for w in self._workers:
            with contextlib.suppress(OSError):
                w.conn.send(("stop",))
            w.process.join(timeout=1)
            w.kill()
        self._workers = []

    def pids(self) -> list[int]:
        """Process ids of the live workers (to show the pool is reused)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def grade(
        self, source: str, rows: Sequence[tuple[dict[str, Any], dict[str, Any]]]
    ) -> list[PythonOutcome]:
        """Grade ``rows`` of ``(sample, item)`` with ``source``'s ``grade``, in order."""
        if not rows:
            return []
        with self._lock:
            while len(self._workers) < self.size:
                self._workers.append(_Worker(self._ctx, self.memory_limit_mb))
            key = hashlib.sha256(source.encode()).hexdigest()
            results: list[PythonOutcome | None] = [None] * len(rows)
            chunks: queue.Queue[tuple[int, int]] = queue.Queue()
            # Smaller chunks for small jobs, so every worker gets a share.
            size = max(1, min(self.chunk_size, -(-len(rows) // self.size)))
            for start in range(0, len(rows), size):
                chunks.put((start, min(start + size, len(rows))))
            threads = [
                threading.Thread(target=self._drive, args=(i, key, source, rows, chunks, results))
                for i in range(len(self._workers))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return [r if r is not None else PythonOutcome(0.0, "not graded") for r in results]

    def _restart(self, index: int) -> _Worker:
        self._workers[index].kill()
        self.restarts += 1
        self._workers[index] = _Worker(self._ctx, self.memory_limit_mb)
        return self._workers[index]

    def _ensure_loaded(self, index: int, key: str, source: str) -> str | None:
        worker = self._workers[index]
        if key in worker.loaded:
            return worker.loaded[key]
        if not worker.wait_ready():
            self._restart(index)
            return f"the grader's worker process did not start within {_START_TIMEOUT_S:g} s"
        try:
            worker.conn.send(("load", key, source, self.timeout_s))
            if not worker.conn.poll(self.timeout_s + _HARD_GRACE_S):
                raise TimeoutError
            _, error = worker.conn.recv()
        except (TimeoutError, EOFError, OSError):
            self._restart(index)
            error = f"grader source did not load within {self.timeout_s:g} s"
        self._workers[index].loaded[key] = error
        return error

    def _drive(
        self,
        index: int,
        key: str,
        source: str,
        rows: Sequence[tuple[dict[str, Any], dict[str, Any]]],
        chunks: queue.Queue[tuple[int, int]],
        results: list[PythonOutcome | None],
    ) -> None:
        while True:
            try:
                start, end = chunks.get_nowait()
            except queue.Empty:
                return
            while start < end:
                error = self._ensure_loaded(index, key, source)
                if error is not None:
                    for i in range(start, end):
                        results[i] = PythonOutcome(0.0, error)
                    break
                worker = self._workers[index]
                try:
                    worker.conn.send(("grade", key, list(rows[start:end]), self.timeout_s))
                except (OSError, ValueError) as exc:
                    results[start] = PythonOutcome(0.0, f"cannot send the row to the grader: {exc}")
                    start += 1
                    self._restart(index)
                    continue
                while start < end:
                    try:
                        if not worker.conn.poll(self.timeout_s + _HARD_GRACE_S):
                            results[start] = PythonOutcome(
                                0.0,
                                f"grade() did not return within {self.timeout_s:g} s; "
                                "its process was killed",
                            )
                            start += 1
                            self._restart(index)
                            break
                        score, err = worker.conn.recv()
                    except (EOFError, OSError):
                        worker.process.join(timeout=1)
                        code = worker.process.exitcode
                        results[start] = PythonOutcome(
                            0.0, f"the grader's process died (exit code {code}) on this row"
                        )
                        start += 1
                        self._restart(index)
                        break
                    results[start] = PythonOutcome(score, err)
                    start += 1
