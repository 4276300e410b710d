"""The Fireworks REST API over httpx: base URL, account, key, retries and error messages.

Fireworks' control plane is ``https://api.fireworks.ai/v1/accounts/{account_id}/...`` (the
Gateway REST API); its OpenAI-compatible inference is ``https://api.fireworks.ai/inference/v1``.
We call it with ``httpx`` (already a core dependency) rather than the ``fireworks-ai`` SDK:
the SDK is Stainless-generated, pulls its own HTTP stack, and its training extra pins a Tinker
runtime, while ftwizard needs a dozen documented JSON calls. Every call goes through
:func:`~ftwizard.providers.retry.call_with_retries` (429/5xx/connection errors, ``retry-after``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ftwizard.providers.base import ProviderError
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

API_KEY_ENV = "FIREWORKS_API_KEY"
ACCOUNT_ENV = "FIREWORKS_ACCOUNT_ID"
BASE_URL_ENV = "FIREWORKS_BASE_URL"
# FIREWORKS_BASE_URL is the OpenAI-compatible inference URL, as for ``fireworks:`` model
# strings (ftwizard.providers.models); the control plane is the same host without the path.
DEFAULT_BASE_URL = "https://api.fireworks.ai/inference/v1"
INFERENCE_PATH = "/inference/v1"
URL_ADVICE = (
    f"Fireworks' chat API is {DEFAULT_BASE_URL} and its control plane the same host under "
    "/v1/accounts/ACCOUNT; FIREWORKS_BASE_URL is the chat URL (ending in /inference/v1)"
)


class NotFound(Exception):
    """A 404 from Fireworks: the resource does not exist (yet)."""


class AlreadyExists(Exception):
    """A 409 from Fireworks: a resource with that id exists (a create that already happened)."""


def error_message(response: httpx.Response) -> str:
    """The message in Fireworks' error body (``{"error": {...}}`` or ``{"code", "message"}``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {response.status_code}"


def translate_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for an httpx transport error or one we raised; else ``None``."""
    if isinstance(exc, CallFailure):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return CallFailure("the request timed out", connection_error=True)
    if isinstance(exc, httpx.TransportError):
        return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    return None


class FireworksAPI:
    """One account's Fireworks API: JSON calls with retries, key and account from the env."""

    provider = "fireworks"

    def __init__(
        self,
        *,
        account_id: str | None = None,
        base_url: str | None = None,
        api_key_env: str = API_KEY_ENV,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._account = account_id
        self._base_url = base_url
        self.api_key_env = api_key_env
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.sleep = sleep
        self.gate = RateGate()
        self._client: httpx.AsyncClient | None = None

    # -- configuration -----------------------------------------------------------------------

    def base_url(self) -> str:
        """The API root, ``https://api.fireworks.ai``: the argument or ``FIREWORKS_BASE_URL``
        (either the root or the chat URL ending in ``/inference/v1``), else Fireworks' own."""
        url = self._base_url or os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        return url.rstrip("/").removesuffix(INFERENCE_PATH)

    def account(self) -> str:
        """The account id (argument, then ``FIREWORKS_ACCOUNT_ID``); a clear error if unset."""
        account = self._account or os.environ.get(ACCOUNT_ENV, "").strip()
        if not account:
            raise ProviderError(
                "no Fireworks account id is set",
                provider=self.provider,
                hint=f"export {ACCOUNT_ENV}=your-account-id (shown in every resource name, "
                "accounts/<account-id>/...)",
            )
        return account

    def resource(self, *parts: str) -> str:
        """A resource name of the account: ``accounts/ACCOUNT/part/part``."""
        return "/".join([f"accounts/{self.account()}", *parts])

    def account_path(self, *parts: str) -> str:
        """The URL path of a collection or resource: ``/v1/accounts/ACCOUNT/part/part``."""
        return f"/v1/{self.resource(*parts)}"

    def _key(self) -> str:
        return read_api_key(self.api_key_env, provider=self.provider)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        return self._client

    # -- calls -------------------------------------------------------------------------------

    async def _once(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> Any:
        response = await self._http().request(
            method,
            f"{self.base_url()}{path}",
            json=json_body,
            params=params,
            files=files,
            headers={"Authorization": f"Bearer {self._key()}"},
        )
        if response.status_code == 404:
            raise NotFound(error_message(response))
        if response.status_code == 409:
            raise AlreadyExists(error_message(response))
        if response.status_code >= 400:
            message = error_message(response)
            if response.status_code == 403 and "evaluator" in path.lower():
                message += (
                    " (Fireworks refuses evaluator creation to some API keys: create it with "
                    "the exported files and `eval-protocol upload`, then pass its name)"
                )
            raise CallFailure(
                message,
                status_code=response.status_code,
                retry_after_s=parse_retry_after(response.headers),
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise CallFailure(
                "Fireworks' reply is not JSON", status_code=response.status_code, should_retry=True
            ) from None

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        model: str | None = None,
    ) -> Any:
        """One JSON call with retries; :class:`NotFound`/:class:`AlreadyExists` pass through."""
        key = self._key()
        try:
            return await call_with_retries(
                lambda: self._once(method, path, json_body=json_body, params=params, files=files),
                translate=translate_error,
                policy=self.retry,
                provider=self.provider,
                model=model,
                api_key_env=self.api_key_env,
                base_url=self.base_url(),
                url_advice=URL_ADVICE,
                gate=self.gate,
                on_retry=self.on_retry,
                sleep=self.sleep,
            )
        except ProviderError as exc:
            if key in exc.message:
                exc.message = exc.message.replace(key, f"[redacted:{self.api_key_env}]")
                exc.args = (exc.message,)
            raise

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


__all__ = [
    "ACCOUNT_ENV",
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "INFERENCE_PATH",
    "AlreadyExists",
    "FireworksAPI",
    "NotFound",
    "error_message",
    "translate_error",
]
