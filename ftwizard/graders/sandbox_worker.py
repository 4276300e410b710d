"""The python grader worker: a standalone stdlib-only script, started as ``python -I -S FILE``.

It is never imported by the wizard's own process: the parent (:mod:`python_pool`) starts it
with a scrubbed environment in a fresh temporary folder. On start it locks itself in as far as
the platform allows, before any grader code runs:

- Linux: a new user + network namespace (``unshare``), so there is no network device to use;
- Linux with Landlock: writes only inside its temporary folder, reads only there and in the
  Python installation, no TCP bind/connect (ABI 4+), no signals to or abstract sockets of
  processes outside the sandbox (ABI 6+);
- a memory limit (``RLIMIT_AS``) and a soft timeout (``SIGALRM``) per row.

Protocol, one JSON object per line. In on stdin: first the config, then one request at a time
(``{"nonce", "id", "sample", "item"}``). Out on a private copy of stdout: ``{"ready", ...}``,
then exactly one reply per request echoing its ``nonce`` and ``id``. The grader's own prints go
to /dev/null. The parent trusts none of it: it checks every reply (see :mod:`python_pool`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import signal
import stat
import sys
import traceback
from collections.abc import Callable
from typing import Any

MAX_ERROR_CHARS = 2000

# Linux clone flags and Landlock constants (linux/sched.h, linux/landlock.h).
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_PR_SET_NO_NEW_PRIVS = 38
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_FS_FILE_READ = _FS_EXECUTE | _FS_READ_FILE
# Every file-system right each ABI version knows (v2 adds REFER, v3 TRUNCATE, v5 IOCTL_DEV).
_FS_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2


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


def _unshare_network(libc: Any) -> str | None:
    """Leave the host's network: a new network namespace has only a loopback that is down."""
    # A user namespace makes this work without privileges; as root a plain one works too.
    for flags in (_CLONE_NEWUSER | _CLONE_NEWNET, _CLONE_NEWNET):
        if libc.unshare(flags) == 0:
            return "network namespace"
    return None


def _landlock(libc: Any, writable: str, readable: list[str]) -> dict[str, Any]:
    """Restrict files (and TCP, signals where the ABI has them) with Landlock; say what held."""
    import ctypes

    abi = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)  # 1: ask the ABI version
    if abi < 1:
        return {}
    fs_all = _FS_ALL_BY_ABI[max(v for v in _FS_ALL_BY_ABI if v <= abi)]
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    attr = RulesetAttr(fs_all, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # older kernels reject unknown fields
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        return {}
    try:
        # /dev/null may be written too: libraries (torch) open it to silence output.
        rules = [(writable, fs_all), (os.devnull, _FS_FILE_READ | _FS_WRITE_FILE)]
        rules += [(p, _FS_READ) for p in readable]
        for path, allowed in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that is not there needs no rule
            try:
                if not stat.S_ISDIR(os.fstat(fd).st_mode):
                    # A rule on a file may hold only file rights.
                    allowed &= _FS_FILE_READ | _FS_WRITE_FILE
                rule = PathBeneath(allowed, fd)
                libc.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0)
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return {}
        if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return {}
    finally:
        os.close(ruleset)
    return {"landlock_abi": int(abi), "tcp": bool(net), "signals": bool(scoped)}


def _lock_in(config: dict[str, Any]) -> dict[str, Any]:
    """Apply every limit this platform offers; return what is enforced (for the report)."""
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
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return enforced
        enforced["network"] = _unshare_network(libc)
        held = _landlock(libc, config["temp_dir"], list(config.get("read_paths", [])))
        if held:
            enforced["filesystem"] = f"landlock ABI {held['landlock_abi']}"
            enforced["signals"] = held["signals"]
            if enforced["network"] is None and held["tcp"]:
                enforced["network"] = "landlock (TCP only)"
    return enforced


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
    enforced = _lock_in(config)
    if _HAS_ALARM:
        signal.signal(signal.SIGALRM, _on_alarm)
    _alarm(float(config["timeout_s"]))
    try:
        fn, error = _load(config["source"])
    finally:
        _alarm(0)
    _write(out, {"ready": True, "enforced": enforced, "error": error})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if fn is None:
            reply = {"nonce": request["nonce"], "id": request["id"], "score": 0.0, "error": error}
        else:
            reply = _grade_row(fn, request, config)
        _write(out, reply)


if __name__ == "__main__":
    main()
