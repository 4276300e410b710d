"""Streaming the elements of a top-level JSON array, one :class:`Record` at a time."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

from ftwizard.datasets.loading import Record, open_binary
from ftwizard.errors import InputError
from ftwizard.inputs import MAX_LINE_BYTES, line_too_long
from ftwizard.json_input import TOO_DEEP, JSONInputError, check_surrogates

_CHUNK = 1 << 20


def iter_json_array(p: Path) -> Iterator[Record]:
    """Stream the elements of a top-level JSON array without reading the whole file.

    Decoding works on a sliding text buffer: an element that does not decode is retried with
    more data until the end of file, where it becomes an error.
    """
    decoder = json.JSONDecoder()
    with open_binary(p) as raw_fh:
        fh = io.TextIOWrapper(raw_fh, encoding="utf-8-sig", newline="")
        buf = ""
        pos = 0
        line = 1  # line number at buf[pos]
        eof = False

        def fill() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            try:
                chunk = fh.read(_CHUNK)
            except UnicodeDecodeError as exc:
                raise InputError("file is not valid UTF-8; re-save it as UTF-8", path=p) from exc
            if not chunk:
                eof = True
                return False
            buf = buf[pos:] + chunk
            pos = 0
            return True

        def skip_ws() -> None:
            nonlocal pos, line
            while True:
                n = len(buf)
                while pos < n and buf[pos] in " \t\r\n":
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < n or not fill():
                    return

        skip_ws()
        if pos >= len(buf) or buf[pos] != "[":
            raise InputError("expected a JSON array starting with '['", path=p, line=line)
        pos += 1
        expect_value = True
        first = True
        while True:
            skip_ws()
            if pos >= len(buf):
                raise InputError("JSON array is not closed with ']'", path=p, line=line)
            ch = buf[pos]
            if ch == "]" and (first or not expect_value):
                return
            if not expect_value:
                if ch != ",":
                    raise InputError(
                        "expected ',' or ']' between array elements", path=p, line=line
                    )
                pos += 1
                expect_value = True
                continue
            start_line = line
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    # A number cut at the chunk edge decodes early; read on to be sure.
                    if end == len(buf) and fill():
                        continue
                    break
                except RecursionError:
                    raise InputError(TOO_DEEP, path=p, line=start_line) from None
                except json.JSONDecodeError as exc:
                    if len(buf) - pos > MAX_LINE_BYTES:
                        raise InputError(
                            line_too_long(what="array element"),
                            path=p,
                            line=start_line,
                        ) from None
                    if fill():
                        continue
                    raise InputError(
                        f"invalid JSON in array element ({exc.msg})", path=p, line=start_line
                    ) from exc
            if end - pos > MAX_LINE_BYTES:
                raise InputError(line_too_long(what="array element"), path=p, line=start_line)
            text = buf[pos:end]
            line += buf.count("\n", pos, end)
            pos = end
            try:
                check_surrogates(text, value)
            except JSONInputError as exc:
                yield Record(start_line, None, f"field '{exc.field}' {exc.message}")
            else:
                yield Record(start_line, value)
            expect_value = False
            first = False
