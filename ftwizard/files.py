"""Writing files so that a crash never leaves half of one behind, and saying plainly why a
file could not be written (full disk, read-only place, a directory in the way, a name too long).

This is the one way ftwizard writes an output (:func:`atomic_output`): only ever a regular
file. A symlink to a regular file is written through (the file it points at is replaced, the
link kept); a device node, FIFO, socket or a symlink to one is refused, never replaced
(``-o /dev/full`` as root used to replace the real device with a file).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ftwizard.errors import InputError

# Most file systems limit one path component to 255 bytes (NAME_MAX).
NAME_MAX = 255

_WHY = {
    errno.ENOSPC: "no space left on the device; free some space and try again",
    errno.EDQUOT: "over the disk quota; free some space and try again",
    errno.EROFS: "the file system is read-only; choose a writable place "
    "(for ftwizard's own state, set FTWIZARD_HOME)",
    errno.EACCES: "permission denied; choose a place you can write to "
    "(for ftwizard's own state, set FTWIZARD_HOME)",
    errno.EPERM: "not permitted; choose a place you can write to",
    errno.EISDIR: "is a directory; give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENAMETOOLONG: "the file name is too long for the file system; use a shorter one",
}


def write_error(exc: OSError, path: Path) -> InputError:
    """The message for an :class:`OSError` met while writing ``path``: what to do about it."""
    why = _WHY.get(exc.errno or 0) or f"cannot write: {exc.strerror or exc}"
    return InputError(why, path=path)


def check_output_path(path: Path, *, field: str | None = None) -> None:
    """Refuse, before any work is done, an output path that can never be written as a file.

    Catches an existing directory, a parent that is a file and a name over the file-name limit;
    whatever else goes wrong (a full disk) is reported by the write itself.
    """
    if path.is_dir():
        raise InputError("is a directory; give a file name for the output", path=path, field=field)
    if len(os.fsencode(path.name)) > NAME_MAX - 16:  # room for the temporary file's affixes
        raise InputError(
            f"the file name is longer than the file system allows ({NAME_MAX} bytes, less room "
            "for a temporary name); use a shorter one",
            path=path,
            field=field,
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    f"{parent} is a file, not a directory; choose another place for the output",
                    path=path,
                    field=field,
                )
            break


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a FIFO", "a character device"...)."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def output_target(path: Path, *, field: str | None = None) -> Path:
    """The regular file an output to ``path`` replaces: ``path``, or where its symlink points.

    Refuses (an :class:`InputError`) a directory, a device, FIFO or socket (or a symlink to
    one, or to nothing), a parent that is a file and a name over the file-name limit.
    """
    check_output_path(path, field=field)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise write_error(exc, path) from None
    target = path
    if stat.S_ISLNK(mode):
        target = Path(os.path.realpath(path))
        try:
            mode = os.stat(target).st_mode
        except OSError:
            raise InputError(
                f"is a symbolic link to {target}, which does not exist; give a file name",
                path=path,
                field=field,
            ) from None
    if not stat.S_ISREG(mode):
        via = f" (through the symbolic link to {target})" if target != path else ""
        raise InputError(
            f"is {file_kind(mode)}{via}, not a regular file; outputs are written only as "
            "regular files and never replace anything else: give a file name",
            path=path,
            field=field,
        )
    if target != path:
        check_output_path(target, field=field)
    return target


def prepare_output_dir(path: Path, *, field: str | None = None) -> None:
    """Make sure ``path`` is a folder outputs can go in (made if missing), or say why not."""
    for parent in (path, *path.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                where = "is" if parent == path else f"is under {parent}, which is"
                raise InputError(
                    f"{where} a file, not a folder; choose another output folder",
                    path=path,
                    field=field,
                )
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise write_error(OSError(errno.EACCES, "Permission denied"), path)


@contextmanager
def atomic_output(
    path: Path, *, binary: bool = False, newline: str | None = None, field: str | None = None
) -> Iterator[IO[Any]]:
    """A handle whose contents replace ``path`` in one step when the block ends without error.

    The one way outputs are written: the target is checked with :func:`output_target`, the
    data goes to a temporary file beside it, is flushed and fsynced, then renamed over it. Any
    failure to write is an :class:`InputError` saying what to do; the old file is kept and no
    temporary file is left behind.
    """
    target = output_target(path, field=field)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise write_error(exc, path) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk; some platforms
    # (Windows) cannot open a directory, which is fine to skip there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half.

    Written with :func:`atomic_output`. Any failure to write (a full disk, a read-only place, a
    directory or device in the way) is an :class:`InputError` saying so; the old file is kept.
    """
    try:
        with atomic_output(path) as handle:
            handle.write(text)
    except UnicodeEncodeError as exc:
        raise InputError(
            f"the text holds {exc.object[exc.start : exc.end]!r}, which is not valid Unicode "
            "(a lone surrogate, often from a file name or argument in another encoding); "
            "remove it",
            path=path,
        ) from None
