"""Duplicate detection in flat memory: the first line each example hash was seen on."""

from __future__ import annotations

from array import array


class FirstSeen:
    """Maps an example's 64-bit hash to the line it first appeared on, in ~24 bytes per example.

    An open-addressing table in two typed arrays: a dict of Python ints would take ~100 bytes
    per example and make memory grow noticeably with the file.
    """

    def __init__(self) -> None:
        self._keys = array("q", bytes(8 * 1024))
        self._lines = array("I", bytes(4 * 1024))
        self._used = 0

    def first_line(self, key: int, line: int) -> int:
        """The line ``key`` was first seen on; records ``line`` when it is new."""
        key = key or 1  # 0 marks an empty slot
        keys = self._keys
        mask = len(keys) - 1
        i = key & mask
        while True:
            found = keys[i]
            if found == 0:
                keys[i] = key
                self._lines[i] = line
                self._used += 1
                if self._used * 2 > len(keys):
                    self._grow()
                return line
            if found == key:
                return self._lines[i]
            i = (i + 1) & mask

    def get(self, key: int) -> int:
        """The line ``key`` was first seen on, or 0 when it was never seen."""
        key = key or 1
        keys = self._keys
        mask = len(keys) - 1
        i = key & mask
        while True:
            found = keys[i]
            if found == 0:
                return 0
            if found == key:
                return self._lines[i]
            i = (i + 1) & mask

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        size = len(old_keys) * 2
        self._keys = array("q", bytes(8 * size))
        self._lines = array("I", bytes(4 * size))
        mask = size - 1
        for key, line in zip(old_keys, old_lines, strict=True):
            if key:
                i = key & mask
                while self._keys[i]:
                    i = (i + 1) & mask
                self._keys[i] = key
                self._lines[i] = line
