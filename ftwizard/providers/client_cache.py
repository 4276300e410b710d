"""One SDK client per (event loop, key), built on first use.

An async HTTP client's connection pool belongs to the loop that opened it; reusing it from a
later ``asyncio.run`` (the CLI runs several) fails with "Event loop is closed". A rotated key
also needs a new client, because keys are read from the environment on every call.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

C = TypeVar("C")


class ClientCache(Generic[C]):
    """Holds the client for the running loop and the current key; rebuilds when either changes."""

    def __init__(self, build: Callable[[str], C]) -> None:
        self._build = build
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._key: str | None = None
        self._client: C | None = None

    def get(self, api_key: str) -> C:
        """The client for ``api_key`` on the running loop (call from inside a coroutine)."""
        loop = asyncio.get_running_loop()
        current = self._loop() if self._loop is not None else None
        if self._client is None or current is not loop or self._key != api_key:
            self._client = self._build(api_key)
            self._loop = weakref.ref(loop)
            self._key = api_key
        return self._client

    async def aclose(self) -> None:
        """Close the client if it belongs to the running loop; otherwise just forget it."""
        client: Any = self._client
        current = self._loop() if self._loop is not None else None
        self._client = None
        if client is not None and current is asyncio.get_running_loop():
            await client.close()
