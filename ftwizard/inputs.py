"""The one way ftwizard opens a file the user named: regular files only, and never without bound.

A FIFO used to hang a command forever and ``/dev/zero`` read until memory ran out; a 50 MB file
on one line took 2.6 GB to validate. So every input is opened here: without blocking (a FIFO
with no writer cannot hold the open), then checked to be a regular file (a FIFO, device or
socket is refused, naming what it is), and read within bounds:

- one line of a line-based file (JSONL, CSV) at most :data:`MAX_LINE_BYTES`;
- a file read whole (grader files, ``session.json``, replay files, reports) at most
  :data:`MAX_DOCUMENT_BYTES`.

Going past a bound is an :class:`InputError` naming the file (and the line) and the limit.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.files import file_kind

MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# A training file sent to a provider whole (OpenAI's file limit is 512 MB).
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _mib(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB"


def check_regular(path: str | Path, *, field: str | None = None) -> os.stat_result:
    """The ``stat`` of ``path`` when it is a regular file (a symlink to one is fine), or an
    :class:`InputError` saying what it is instead. Nothing is opened."""
    p = Path(path)
    try:
        info = os.stat(p)
    except FileNotFoundError:
        raise InputError("file not found; check the path", path=p, field=field) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=p, field=field) from None
    _require_regular(info.st_mode, p, field)
    return info


def _require_regular(mode: int, path: Path, field: str | None) -> None:
    if not stat.S_ISREG(mode):
        raise InputError(
            f"is {file_kind(mode)}, not a regular file; inputs are read only from regular "
            "files (copy the data into a file first)",
            path=path,
            field=field,
        )


def open_input(path: str | Path, *, field: str | None = None) -> io.BufferedReader:
    """``path`` opened for binary reading, once it is known to be a regular file.

    Opened with ``O_NONBLOCK`` so that a FIFO without a writer cannot block the open; the check
    is made on the opened file itself, so the path cannot be swapped in between.
    """
    p = Path(path)
    try:
        fd = os.open(p, _READ_FLAGS)
    except FileNotFoundError:
        raise InputError("file not found; check the path", path=p, field=field) from None
    except IsADirectoryError:
        raise InputError("is a directory; give a file", path=p, field=field) from None
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", path=p, field=field) from None
    try:
        _require_regular(os.fstat(fd).st_mode, p, field)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def read_input_bytes(
    path: str | Path, *, limit: int = MAX_DOCUMENT_BYTES, field: str | None = None
) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes."""
    p = Path(path)
    with open_input(p, field=field) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InputError(
                f"cannot read file: {exc.strerror or exc}", path=p, field=field
            ) from None
    if len(data) > limit:
        raise InputError(
            f"is larger than the {_mib(limit)} allowed for this kind of file; is it the right "
            "file?",
            path=p,
            field=field,
        )
    return data


def read_input_text(
    path: str | Path, *, limit: int = MAX_DOCUMENT_BYTES, field: str | None = None
) -> str:
    """The whole of a UTF-8 text file (a leading BOM dropped) of at most ``limit`` bytes.

    Bytes that are not UTF-8 are an :class:`InputError` naming the line they are on.
    """
    data = read_input_bytes(path, limit=limit, field=field)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"is not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8",
            path=Path(path),
            line=line,
            field=field,
        ) from None


def iter_lines(
    handle: io.BufferedReader, path: str | Path, *, limit: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` for each line of ``handle``; a line over ``limit`` bytes comes as
    ``(line number, None)`` and is skipped without ever being held whole in memory."""
    lineno = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # drop the rest of the line a block at a time
                rest = handle.readline(1024 * 1024)
                if not rest or rest.endswith(b"\n"):
                    break
            yield lineno, None
            continue
        yield lineno, line


def line_too_long(limit: int = MAX_LINE_BYTES, *, what: str = "line") -> str:
    """The message for a line (or array element: ``what``) over ``limit`` bytes."""
    hint = "; is the file one JSON object per line?" if what == "line" else ""
    return (
        f"the {what} is longer than {_mib(limit)} ({limit:,} bytes), the most one {what} may "
        f"hold{hint}"
    )


def read_text_lines(path: str | Path, *, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of a UTF-8 file's lines (BOM dropped), each within ``limit``; a
    longer line or bytes that are not UTF-8 are an :class:`InputError` naming the line."""
    p = Path(path)
    with open_input(p) as handle:
        for number, raw in iter_lines(handle, p, limit=limit):
            if raw is None:
                raise InputError(line_too_long(limit), path=p, line=number)
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(
                    "line is not valid UTF-8; re-save the file as UTF-8", path=p, line=number
                ) from None


__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_LINE_BYTES",
    "MAX_UPLOAD_BYTES",
    "check_regular",
    "iter_lines",
    "line_too_long",
    "open_input",
    "read_input_bytes",
    "read_input_text",
    "read_text_lines",
]
