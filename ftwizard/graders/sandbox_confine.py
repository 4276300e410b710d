"""How a python grader worker locks itself in on Linux: standard library only, no ftwizard.

The worker (:mod:`sandbox_worker`, a standalone script) imports this file by path before any
grader code runs. Each step is tried and reported; a step the kernel refuses is left out and
the report says so (docs/graders.md lists the fallbacks):

- namespaces (:func:`unshare`): a new user namespace (no privileges needed), network (no
  devices), mount and pid namespace;
- :func:`read_only_view`: in the mount namespace every mount is made read-only except the
  worker's own folder, so ``chmod``, ``chown``, ``utime``, ``setxattr``, ``rename`` and
  ``unlink`` of anything outside fail with ``EROFS`` (Landlock's file rights do not cover
  metadata);
- :func:`landlock`: reads only in the worker's folder and the Python installation, writes only
  in its folder, no TCP, no signals or abstract sockets to outside processes (by ABI version);
- :func:`seccomp`: no unix-domain sockets (``socket(AF_UNIX)``: a pathname socket outside the
  folder is otherwise reachable) and no ``io_uring`` (which would bypass the filter);
- :func:`limit_processes`: at most ``limit`` processes inside the user namespace
  (``RLIMIT_NPROC``, which the kernel ignores for root: the parent then uses a pids cgroup);
- :func:`become_init`: the grader runs as process 1 of the pid namespace, so every process it
  starts (double-forked, ``setsid``, ignoring SIGTERM) dies when it does.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import stat
import struct
from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 1 << 18
_SYS_MOUNT_SETATTR = 442  # the same number on every architecture
_MOUNT_ATTR_RDONLY, _AT_RECURSIVE, _AT_FDCWD = 0x1, 0x8000, -100
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _PR_SET_PDEATHSIG = 38, 22, 1
_SECCOMP_MODE_FILTER = 2

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_FS_FILE_READ = _FS_EXECUTE | _FS_READ_FILE
# Every file-system right each ABI version knows (v2 adds REFER, v3 TRUNCATE, v5 IOCTL_DEV).
_FS_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2

# (audit arch, socket, io_uring_setup, first x32 number or None) per machine.
_SECCOMP_ARCH = {
    "x86_64": (0xC000003E, 41, 425, 0x40000000),
    "aarch64": (0xC00000B7, 198, 425, None),
}


def libc() -> Any:
    """The C library, with ``errno`` kept."""
    return ctypes.CDLL(None, use_errno=True)


def unshare(lib: Any) -> dict[str, bool]:
    """Enter the strongest set of new namespaces the kernel allows; which ones were entered."""
    attempts = (
        _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWPID,
        _CLONE_NEWNET | _CLONE_NEWNS | _CLONE_NEWPID,  # root where user namespaces are off
        _CLONE_NEWUSER | _CLONE_NEWNET,
        _CLONE_NEWNET,
    )
    for flags in attempts:
        if lib.unshare(flags) == 0:
            return {
                "user": bool(flags & _CLONE_NEWUSER),
                "net": True,
                "mount": bool(flags & _CLONE_NEWNS),
                "pid": bool(flags & _CLONE_NEWPID),
            }
    return {"user": False, "net": False, "mount": False, "pid": False}


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _setattr(lib: Any, path: str, flags: int, *, set_: int = 0, clear: int = 0) -> bool:
    attr = _MountAttr(set_, clear, 0, 0)
    done = lib.syscall(
        _SYS_MOUNT_SETATTR, _AT_FDCWD, path.encode(), flags, ctypes.byref(attr), ctypes.sizeof(attr)
    )
    return bool(done == 0)


def read_only_view(lib: Any, writable: str) -> bool:
    """Make every mount read-only in this (new) mount namespace, except ``writable``."""
    # Private first: nothing done here may propagate back to the host's mounts.
    if lib.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    folder = writable.encode()
    if lib.mount(folder, folder, None, _MS_BIND | _MS_REC, None) != 0:
        return False
    if not _setattr(lib, "/", _AT_RECURSIVE, set_=_MOUNT_ATTR_RDONLY):
        return False
    if not _setattr(lib, writable, _AT_RECURSIVE, clear=_MOUNT_ATTR_RDONLY):
        return False
    # The working folder was entered through the old mount; enter it again through the new.
    os.chdir(writable)
    return True


def landlock(lib: Any, writable: str, readable: list[str]) -> dict[str, Any]:
    """Restrict files (and TCP, signals where the ABI has them) with Landlock; say what held."""
    abi = lib.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, 1)  # 1: ask the ABI version
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
    ruleset = lib.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
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
                lib.syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0)
            finally:
                os.close(fd)
        if lib.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return {}
        if lib.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return {}
    finally:
        os.close(ruleset)
    return {"landlock_abi": int(abi), "tcp": bool(net), "signals": bool(scoped)}


def seccomp(lib: Any) -> bool:
    """Refuse ``socket(AF_UNIX, ...)`` and ``io_uring_setup`` (EACCES); other calls are as before.

    Foreign-architecture calls (32-bit ``int 0x80``, x32) are refused too, so the filter cannot
    be stepped around with another system-call table.
    """
    machine = _SECCOMP_ARCH.get(platform.machine())
    if machine is None:
        return False
    arch, nr_socket, nr_io_uring, x32 = machine
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 13  # SECCOMP_RET_ERRNO | EACCES
    # Instruction 8 allows, 9 denies; jumps count from the next instruction.
    program = [
        (ld_w_abs, 0, 0, 4),  # 0: arch
        (jeq, 0, 7, arch),  # 1: foreign arch -> deny
        (ld_w_abs, 0, 0, 0),  # 2: system call number
        (jge, 5, 0, x32) if x32 is not None else (jeq, 0, 0, 0),  # 3: x32 -> deny
        (jeq, 4, 0, nr_io_uring),  # 4: io_uring_setup -> deny
        (jeq, 0, 2, nr_socket),  # 5: not socket -> allow
        (ld_w_abs, 0, 0, 16),  # 6: first argument (domain), low 32 bits
        (jeq, 1, 0, 1),  # 7: AF_UNIX -> deny, else allow
        (ret, 0, 0, allow),  # 8
        (ret, 0, 0, deny),  # 9
    ]
    raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(program), ctypes.addressof(buffer))
    if lib.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return bool(lib.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0)


def limit_processes(limit: int) -> bool:
    """``RLIMIT_NPROC`` of ``limit``; only meaningful inside a fresh user namespace."""
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    except (ValueError, OSError):
        return False
    return True


def become_init(lib: Any) -> None:
    """Fork; the child returns as process 1 of the pid namespace, the parent waits and exits.

    The child dies with its parent (``PR_SET_PDEATHSIG``), so when the wizard kills the worker
    the pid namespace ends and the kernel kills every process the grader started.
    """
    child = os.fork()
    if child == 0:
        # (Were the parent killed before this line, the closed stdin still ends the child.)
        lib.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        return
    os.closerange(0, 1 << 16)  # only the child speaks the protocol
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
