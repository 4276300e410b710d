"""Writing files so that a crash never leaves half of one behind, and saying plainly why a
file could not be written (full disk, read-only place, a directory in the way, a name too long).
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

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

    The text goes to a temporary file in the same directory, is flushed and fsynced, and then
    replaces ``path`` with :func:`os.replace`. Any failure to write (a full disk, a read-only
    place, a directory in the way) is an :class:`InputError` saying so; the old file is kept.
    """
    check_output_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise write_error(exc, path) from None
    except UnicodeEncodeError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise InputError(
            f"the text holds {exc.object[exc.start : exc.end]!r}, which is not valid Unicode "
            "(a lone surrogate, often from a file name or argument in another encoding); "
            "remove it",
            path=path,
        ) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
