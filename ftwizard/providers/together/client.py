"""A small JSON client for Together's REST API on httpx, with ftwizard's retries.

Why not the ``together`` SDK: version 3.1.1 (what pip resolves in December 2026) also installs
its command line (cyclopts, rich-rst, detect_agent...) for the eight endpoints ftwizard uses,
and httpx is already a dependency. The wire format is the published OpenAPI spec
(``together-openapi-2026-04.yaml``), which the tests validate against.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ftwizard.inputs import open_input
from ftwizard.providers.client_cache import ClientCache
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.models import VENDOR_ENDPOINTS
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

# One endpoint for chat and fine-tuning (the spec names api.together.ai, the same API).
_VENDOR = VENDOR_ENDPOINTS["together"]
API_KEY_ENV = _VENDOR.api_key_env
BASE_URL_ENV = _VENDOR.base_url_env
DEFAULT_BASE_URL = _VENDOR.base_url
URL_ADVICE = f"Together's base URL ends in /v1 ({DEFAULT_BASE_URL})"


class _Http:
    """An ``httpx.AsyncClient`` with the ``close()`` coroutine :class:`ClientCache` calls."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def close(self) -> None:
        await self.client.aclose()


def translate_http_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for an HTTP status or transport error; else ``None``."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        detail = response.text[:500]
        try:
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and error.get("message"):
                detail = str(error["message"])
        except ValueError:
            pass
        return CallFailure(
            detail or f"HTTP {response.status_code}",
            status_code=response.status_code,
            retry_after_s=parse_retry_after(response.headers),
        )
    if isinstance(exc, httpx.TransportError):
        return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    return None


class TogetherClient:
    """JSON calls to Together; every call is retried on 429, 5xx and connection errors."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key_env: str = API_KEY_ENV,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.base_url = (
            base_url or os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        ).rstrip("/")
        self.api_key_env = api_key_env
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.gate = RateGate()
        self._clients: ClientCache[_Http] = ClientCache(self._build)

    def _build(self, api_key: str) -> _Http:
        return _Http(
            httpx.AsyncClient(
                base_url=self.base_url + "/",
                headers={"authorization": f"Bearer {api_key}"},
                timeout=self.timeout_s,
            )
        )

    def _http(self) -> httpx.AsyncClient:
        key = read_api_key(self.api_key_env, provider="together")
        return self._clients.get(key).client

    async def once(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        files: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Any:
        """One attempt, no retry (for a create whose lost reply must be looked up first)."""
        response = await self._http().request(
            method, path.lstrip("/"), json=json, files=files, data=data
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        model: str | None = None,
    ) -> Any:
        """The call with retries; a :class:`ProviderError` once they are spent."""
        return await call_with_retries(
            lambda: self.once(method, path, json=json),
            translate=translate_http_error,
            policy=self.retry,
            provider="together",
            model=model,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            url_advice=URL_ADVICE,
            gate=self.gate,
            on_retry=self.on_retry,
        )

    async def upload(self, path: Path, file_name: str) -> Any:
        """``POST /files/upload`` (multipart, purpose ``fine-tune``), with retries: a retried
        upload may leave a second copy of the file, which costs nothing and is never used."""

        async def attempt() -> Any:
            with open_input(path) as handle:
                return await self.once(
                    "POST",
                    "files/upload",
                    files={"file": (file_name, handle, "application/octet-stream")},
                    data={"purpose": "fine-tune", "file_name": file_name, "file_type": "jsonl"},
                )

        return await call_with_retries(
            attempt,
            translate=translate_http_error,
            policy=self.retry,
            provider="together",
            model=None,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            url_advice=URL_ADVICE,
            gate=self.gate,
            on_retry=self.on_retry,
        )

    async def aclose(self) -> None:
        """Close the HTTP client opened on the running loop."""
        await self._clients.aclose()


__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "TogetherClient",
    "translate_http_error",
]
