"""Chat completions over a bare HTTP client, for runs of many short calls (the dry run).

:class:`LeanOpenAIChatProvider` sends exactly what :class:`OpenAIChatProvider` sends (same
parameters, model quirks, key handling, retries and error hints) but posts the JSON itself
with ``httpx2`` (the HTTP layer the openai SDK is built on) instead of going through the SDK's
request and response models. That costs a few milliseconds less per call, which is what a
200-sample dry run at concurrency 16 is bounded by once the server answers quickly.

A reply that is not a valid chat completion (truncated by a proxy, HTML from a gateway) is
retried like a 5xx: it says nothing about the request.
"""

from __future__ import annotations

import json
import os
import random
import ssl
from collections.abc import Callable
from typing import Any

from ftwizard.providers.base import Generation, GenerationRequest
from ftwizard.providers.client_cache import ClientCache
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.media import image_failures_per_call
from ftwizard.providers.openai.chat import URL_ADVICE, OpenAIChatProvider
from ftwizard.providers.retry import (
    CallFailure,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# Enough pooled connections for any sane concurrency; extra ones are opened and closed.
_POOL_SIZE = 64


def tls_verification(url: str) -> ssl.SSLContext | bool:
    """What the HTTP client verifies TLS with: the CA bundle for https, nothing for http.

    Loading the CA bundle costs about 0.1 s on a small machine, paid before the first request
    goes out. A plain-HTTP endpoint (a local vLLM or llama.cpp server) never opens TLS, so it
    gets a context that trusts no certificate at all: if a TLS connection were ever made on
    it, verification would fail, never pass.
    """
    if url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


class _HttpClient:
    """An ``httpx2.AsyncClient`` with the ``close()`` coroutine :class:`ClientCache` calls."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def close(self) -> None:
        await self.client.aclose()


class _BadParam(Exception):
    """A 400 naming a parameter the model rejects (``temperature`` or ``max_tokens``)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, type, param) from OpenAI's ``{"error": {...}}``, tolerating other shapes."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return (
            str(message) if message is not None else None,
            str(error["type"]) if error.get("type") else None,
            str(error["param"]) if error.get("param") else None,
        )
    if isinstance(error, str):
        return error, None, None
    return None, None, None


def _rejected_param(message: str, param: str | None) -> str | None:
    lowered = message.lower()
    if param == "temperature" or "temperature" in lowered:
        return "temperature"
    if param == "max_tokens" or "max_completion_tokens" in lowered:
        return "max_tokens"
    return None


def spread_retry_after(seconds: float | None, times_limited: int) -> float | None:
    """The server's ``retry-after`` as given the first time; a random extra after a repeat.

    The first 429 of a call waits exactly what the server asked: adding a backoff on top of
    it only slows the run. Requests told to wait the same time do return together, though,
    and with a steady latency land in the same place of the next burst, where they can meet
    the same limit again; so from the second 429 of the same call on, the wait gets up to all
    of itself again (at most 1 s) at random, which breaks the step. The server's wait is
    always respected.
    """
    if seconds is None:
        return None
    share = 0.0 if times_limited <= 1 else 1.0
    return seconds + random.random() * share * min(seconds, 1.0)


def translate_http_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for a transport error of httpx2; ``None`` for anything else."""
    if isinstance(exc, CallFailure):
        return exc
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return CallFailure("the request timed out", connection_error=True)
    if isinstance(exc, httpx2.TransportError):
        return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    return None


def parse_completion(payload: Any, requested_model: str) -> Generation:
    """A :class:`Generation` from a chat completion JSON body (``CallFailure`` if it is not one)."""
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list):
        raise CallFailure(
            "the server's reply is not a valid chat completion (no choices)",
            status_code=200,
            should_retry=True,
        )
    text, finish_reason = "", None
    if choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        finish_reason = choices[0].get("finish_reason")
        refusal = message.get("refusal")
        if not text and refusal:
            text, finish_reason = refusal, "refusal"
    usage = payload.get("usage") or {}
    return Generation(
        text=text if isinstance(text, str) else json.dumps(text),
        model=payload.get("model") or requested_model,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=finish_reason,
    )


class LeanOpenAIChatProvider(OpenAIChatProvider):
    """:class:`OpenAIChatProvider` on a bare HTTP client: same wire, less per-call overhead.

    ``base_url`` defaults to ``OPENAI_BASE_URL`` and then to OpenAI's own endpoint, as the SDK
    does. With ``compatible=True`` the key is optional: sent when ``api_key_env`` holds one.
    """

    def __init__(
        self,
        *,
        name: str = "openai",
        api_key_env: str | None = "OPENAI_API_KEY",
        base_url: str | None = None,
        compatible: bool = False,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        super().__init__(
            name=name,
            api_key_env=api_key_env,
            base_url=base_url,
            compatible=compatible,
            retry=retry,
            timeout_s=timeout_s,
            on_retry=on_retry,
        )
        self._http: ClientCache[_HttpClient] = ClientCache(self._build_http)

    def endpoint(self) -> str:
        """The base URL calls go to (``.../v1``), resolved as the openai SDK resolves it."""
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL
        return url.rstrip("/")

    def _build_http(self, api_key: str) -> _HttpClient:
        import httpx2

        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        endpoint = self.endpoint()
        return _HttpClient(
            httpx2.AsyncClient(
                base_url=endpoint + "/",
                headers=headers,
                timeout=self.timeout_s,
                verify=tls_verification(endpoint),
                limits=httpx2.Limits(
                    max_connections=_POOL_SIZE, max_keepalive_connections=_POOL_SIZE
                ),
            )
        )

    def _key(self, model: str) -> str:
        # A third-party server gets the key only when the variable holds one.
        if self.compatible and (
            self.api_key_env is None or not os.environ.get(self.api_key_env, "").strip()
        ):
            return ""
        return read_api_key(self.api_key_env, provider=self.name, model=model)

    async def _post(self, params: dict[str, Any], model: str, limited: list[int]) -> Generation:
        http = self._http.get(self._key(model)).client
        response = await http.post("chat/completions", content=json.dumps(params))
        raw = response.content
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        status = response.status_code
        if status >= 400:
            if status == 429:
                limited[0] += 1
            message, error_type, param = _error_fields(payload)
            if status == 400:
                rejected = _rejected_param(message or "", param)
                if rejected is not None:
                    raise _BadParam(rejected, message or f"HTTP 400 on '{rejected}'")
            should = response.headers.get("x-should-retry")
            raise CallFailure(
                message or f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}",
                status_code=status,
                retry_after_s=spread_retry_after(parse_retry_after(response.headers), limited[0]),
                should_retry={"true": True, "false": False}.get(should or ""),
                error_type=error_type,
            )
        if payload is None:
            raise CallFailure(
                "the server's reply is not valid JSON", status_code=status, should_retry=True
            )
        return parse_completion(payload, model)

    async def _attempt(self, request: GenerationRequest, limited: list[int]) -> Generation:
        quirks = self._quirks_for(request.model)
        # Each known parameter is adjusted at most once, so this runs at most three times.
        for _ in range(3):
            params = self.build_params(request)
            try:
                return await self._post(params, request.model, limited)
            except _BadParam as bad:
                if bad.param == "temperature" and "temperature" in params:
                    quirks.drop_temperature = True
                    continue
                if bad.param == "max_tokens" and "max_tokens" in params:
                    quirks.max_completion_tokens = True
                    continue
                raise CallFailure(bad.message, status_code=400) from None
        raise AssertionError("unreachable: parameter adjustments are bounded")

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one chat completion, retrying transient failures; raise ProviderError otherwise."""
        limited = [0]  # 429s this call has met so far
        with image_failures_per_call(provider=self.name, model=request.model):
            return await call_with_retries(
                lambda: self._attempt(request, limited),
                translate=translate_http_error,
                policy=self.retry,
                provider=self.name,
                model=request.model,
                api_key_env=self.api_key_env,
                base_url=self.base_url,
                url_advice=URL_ADVICE,
                gate=self.gate,
                on_retry=self.on_retry,
            )

    async def aclose(self) -> None:
        """Close the HTTP client opened on the running loop."""
        await self._http.aclose()
        await super().aclose()
