"""The python grader worker: a standalone stdlib-only script, started as ``python -I -S FILE``.

It is never imported by the wizard's own process: the parent (:mod:`python_pool`) starts it
with a scrubbed environment in a fresh temporary folder. On start it locks itself in as far as
the platform allows, before any grader code runs:

- Linux (:mod:`sandbox_confine`): new user, network, mount and pid namespaces; every mount
  read-only but its folder; Landlock (reads and writes, TCP, signals); a seccomp filter (no
  unix sockets, no io_uring); a process limit; the grader runs as process 1 of its pid
  namespace, so nothing it starts outlives it;
- a memory limit (``RLIMIT_AS``) and a soft timeout (``SIGALRM``) for loading and per row.

Protocol, one JSON object per line. In on stdin: first the config, then one request at a time
(``{"nonce", "id", "sample", "item"}``). Out on a private copy of stdout: ``{"started",
"enforced"}`` once locked in, ``{"ready", "error"}`` once the source is loaded, then exactly
one reply per request echoing its ``nonce`` and ``id``. The grader's own prints go
to /dev/null. The parent trusts none of it: it checks every reply (see :mod:`python_pool`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

MAX_ERROR_CHARS = 2000
# Processes a grader may have at once (its own included), where the platform can count them.
MAX_PROCESSES = 256


class _GraderTimeout(BaseException):
    """Raised inside the grader by SIGALRM; a BaseException so ``except Exception`` misses it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _GraderTimeout()


_HAS_ALARM = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")


def _alarm(seconds: float) -> None:
    if _HAS_ALARM:
        signal.setitimer(signal.ITIMER_REAL, seconds)


def check_result(value: Any) -> tuple[float, str | None]:
    """Turn what ``grade`` returned into ``(score, error)``: a finite number in [0, 1] or 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return 0.0, f"grade() returned {type(value).__name__} {value!r:.60}, not a number"
    score = float(value)
    if not math.isfinite(score):
        return 0.0, f"grade() returned {score}, not a finite number"
    if not 0.0 <= score <= 1.0:
        return 0.0, f"grade() returned {score:g}, outside [0, 1]"
    return score, None


def _short_traceback(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<grader>"]
    where = f" (source line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


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


def _confine() -> Any:
    """:mod:`sandbox_confine`, imported by path (isolated mode leaves this folder off the path)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_confine.py")
    spec = importlib.util.spec_from_file_location("ftwizard_sandbox_confine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lock_in(config: dict[str, Any]) -> tuple[dict[str, Any], Callable[[], None] | None]:
    """Apply every limit this platform offers; what is enforced, and the step that must come
    last (becoming process 1 of the pid namespace), if any."""
    enforced: dict[str, Any] = {"network": None, "filesystem": None, "signals": False}
    memory_limit_mb = config.get("memory_limit_mb")
    if memory_limit_mb:
        try:
            import resource

            limit = int(memory_limit_mb) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            enforced["memory"] = True
        except (ImportError, ValueError, OSError):
            enforced["memory"] = False  # platforms without RLIMIT_AS run without one
    if config.get("cgroup"):
        enforced["processes"] = "pids cgroup"
    if not sys.platform.startswith("linux"):
        return enforced, None
    try:
        confine = _confine()
        libc = confine.libc()
    except (OSError, ImportError):
        return enforced, None
    root = os.geteuid() == 0
    spaces = confine.unshare(libc)
    if spaces["net"]:
        enforced["network"] = "network namespace"
    if spaces["mount"] and confine.read_only_view(libc, config["temp_dir"]):
        enforced["metadata"] = "read-only mount namespace"
    held = confine.landlock(libc, config["temp_dir"], list(config.get("read_paths", [])))
    if held:
        enforced["filesystem"] = f"landlock ABI {held['landlock_abi']}"
        enforced["signals"] = held["signals"]
        if enforced["network"] is None and held["tcp"]:
            enforced["network"] = "landlock (TCP only)"
    if confine.seccomp(libc):
        enforced["unix_sockets"] = "seccomp"
    # RLIMIT_NPROC counts per user namespace, and never binds root: only set in a fresh one.
    limit = int(config.get("max_processes") or MAX_PROCESSES)
    if spaces["user"] and not root and confine.limit_processes(limit):
        enforced["processes"] = "RLIMIT_NPROC"
    if spaces["pid"]:
        enforced["sweep"] = "pid namespace"
        return enforced, lambda: confine.become_init(libc)
    return enforced, None


def _write(out: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode() + b"\n"
    while data:  # a pipe may take less than all of it
        data = data[os.write(out, data) :]


def _grade_row(fn: Callable[..., Any], request: dict[str, Any], config: dict[str, Any]) -> Any:
    timeout = float(config["timeout_s"])
    try:
        _alarm(timeout)
        try:
            value = fn(request["sample"], request["item"])
        finally:
            _alarm(0)
        score, error = check_result(value)
    except _GraderTimeout:
        score, error = 0.0, f"grade() timed out after {timeout:g} s"
    except MemoryError:
        limit = config.get("memory_limit_mb")
        score, error = 0.0, f"grade() ran out of memory (memory limit {limit} MB)"
    except BaseException as exc:  # the user's grader may raise anything
        try:
            score, error = 0.0, _short_traceback(exc)
        except BaseException:  # an exception whose str() raises too
            score, error = 0.0, f"grade() raised {type(exc).__name__}"
    if error is not None:
        error = error[:MAX_ERROR_CHARS]
    return {"nonce": request["nonce"], "id": request["id"], "score": score, "error": error}


def main() -> None:
    """Read the config, lock in, load the grader, then answer one request at a time."""
    # Replies go to a private copy of stdout; the grader's print() and stray writes to fd 1
    # land in /dev/null, so they cannot corrupt the protocol by accident.
    out = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the worker
    config = json.loads(sys.stdin.buffer.readline())
    sys.path.extend(config.get("site_paths", []))
    enforced, last_step = _lock_in(config)
    if last_step is not None:
        last_step()
    # Started: the parent now gives the grader's source only the per-call timeout to load.
    _write(out, {"started": True, "enforced": enforced})
    if _HAS_ALARM:
        signal.signal(signal.SIGALRM, _on_alarm)
    _alarm(float(config["timeout_s"]))
    try:
        fn, error = _load(config["source"])
    finally:
        _alarm(0)
    _write(out, {"ready": True, "error": error})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if fn is None:
            reply = {"nonce": request["nonce"], "id": request["id"], "score": 0.0, "error": error}
        else:
            reply = _grade_row(fn, request, config)
        _write(out, reply)


if __name__ == "__main__":
    main()
