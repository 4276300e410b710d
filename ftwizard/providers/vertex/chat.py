"""Gemini on Vertex AI through google-genai's ``generate_content`` (imported on first use).

Authentication: an OAuth access token from ``GOOGLE_OAUTH_ACCESS_TOKEN`` when it is set (what
``gcloud auth print-access-token`` prints; also how tests reach the fake server), otherwise
Application Default Credentials. Project and location come from the arguments or from
``GOOGLE_CLOUD_PROJECT`` / ``GOOGLE_CLOUD_LOCATION``. ``base_url`` (or
``GOOGLE_VERTEX_BASE_URL``) points the client at another endpoint, e.g. a regional one or a
fake on 127.0.0.1.

google-genai's own retries stay off; :func:`~ftwizard.providers.retry.call_with_retries` does
all retrying, the same way as for the other providers.
"""

from __future__ import annotations

import importlib
import json
import mimetypes
import os
from collections.abc import Callable
from typing import Any

from ftwizard.providers.base import Generation, GenerationRequest, ProviderError
from ftwizard.providers.client_cache import ClientCache
from ftwizard.providers.media import sendable_image
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
)

ACCESS_TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"
DEFAULT_LOCATION = "us-central1"
URL_ADVICE = "a Vertex base URL is the service root (https://REGION-aiplatform.googleapis.com/)"

# Gemini finish reasons that mean "no usable text", mapped to the names other providers use.
_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "BLOCKLIST": "content_filter",
    "SPII": "content_filter",
}


class _GenaiClient:
    """google-genai's async client with the ``close()`` coroutine :class:`ClientCache` calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.aio = client.aio

    async def close(self) -> None:
        await self.aio.aclose()


def _http_modules() -> list[Any]:
    modules = []
    for name in ("httpx", "httpx2"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


def translate_vertex_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for a google-genai or transport error; ``None`` otherwise."""
    if isinstance(exc, CallFailure):
        return exc
    from google.genai import errors

    if isinstance(exc, errors.APIError):
        headers: dict[str, str] = {}
        response = getattr(exc, "response", None)
        if response is not None and getattr(response, "headers", None) is not None:
            headers = {str(k): str(v) for k, v in dict(response.headers).items()}
        status = exc.code if isinstance(exc.code, int) else None
        return CallFailure(
            str(exc.message or exc.status or "request failed"),
            status_code=status,
            retry_after_s=parse_retry_after(headers),
            error_type=exc.status,
        )
    if isinstance(exc, json.JSONDecodeError):
        # google-genai parses the body before looking at it; a truncated or non-JSON reply
        # (a proxy's error page) says nothing about the request, so it is worth another try.
        return CallFailure("the server's reply is not valid JSON", should_retry=True)
    # google-genai's async client runs on httpx, or on httpx2 when it is asked to.
    for module in _http_modules():
        if isinstance(exc, module.TimeoutException):
            return CallFailure("the request timed out", connection_error=True)
        if isinstance(exc, module.TransportError):
            return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    if isinstance(exc, ConnectionError | TimeoutError):
        return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    return None


def to_generation(response: Any, requested_model: str) -> Generation:
    """A :class:`Generation` from a ``GenerateContentResponse``."""
    candidates = response.candidates or []
    text = ""
    finish_reason: str | None = None
    if candidates:
        candidate = candidates[0]
        parts = (candidate.content.parts if candidate.content is not None else None) or []
        # Thought parts are the model's reasoning, not its answer.
        text = "".join(p.text for p in parts if p.text and not getattr(p, "thought", False))
        raw_reason = candidate.finish_reason
        if raw_reason is not None:
            name = getattr(raw_reason, "value", str(raw_reason))
            finish_reason = _FINISH_REASONS.get(name, name.lower())
    elif response.prompt_feedback is not None and response.prompt_feedback.block_reason:
        finish_reason = "content_filter"
    usage = response.usage_metadata
    output = 0
    if usage is not None:
        output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
    return Generation(
        text=text,
        model=response.model_version or requested_model,
        input_tokens=(usage.prompt_token_count or 0) if usage is not None else 0,
        output_tokens=output,
        finish_reason=finish_reason,
    )


class VertexChatProvider:
    """A :class:`~ftwizard.providers.base.ChatProvider` for Gemini models on Vertex AI.

    ``system``/``developer`` turns become ``system_instruction``; ``assistant`` turns are sent
    as role ``model``. Structured output is ``response_mime_type="application/json"`` with
    ``response_json_schema``. Output token counts include thinking tokens (they are billed).
    """

    name = "vertex"

    def __init__(
        self,
        *,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
        credentials: Any | None = None,
        access_token_env: str | None = ACCESS_TOKEN_ENV,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.project = project
        self.location = location
        self.base_url = base_url
        self.credentials = credentials
        self.access_token_env = access_token_env
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.gate = RateGate()
        self._clients: ClientCache[_GenaiClient] = ClientCache(self._build_client)

    def resolved_project(self) -> str | None:
        """The Google Cloud project calls are billed to (argument, then environment)."""
        return self.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or None

    def resolved_location(self) -> str:
        """The region (argument, then ``GOOGLE_CLOUD_LOCATION``, then us-central1)."""
        return self.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or DEFAULT_LOCATION

    def resolved_base_url(self) -> str | None:
        """The endpoint override, if any (argument, then ``GOOGLE_VERTEX_BASE_URL``)."""
        return self.base_url or os.environ.get("GOOGLE_VERTEX_BASE_URL") or None

    def _token(self) -> str:
        if self.access_token_env is None:
            return ""
        return os.environ.get(self.access_token_env, "").strip()

    def _build_client(self, token: str) -> _GenaiClient:
        from google import genai
        from google.genai import types

        credentials = self.credentials
        if credentials is None and token:
            import google.oauth2.credentials

            # Anonymous credentials cannot be refreshed, so google-genai refuses them; a
            # bearer token works against Vertex and against a fake alike.
            credentials = google.oauth2.credentials.Credentials(token=token)
        base_url = self.resolved_base_url()
        options = types.HttpOptions(
            api_version="v1",
            timeout=int(self.timeout_s * 1000),
            base_url=base_url.rstrip("/") + "/" if base_url else None,
        )
        try:
            client = genai.Client(
                vertexai=True,
                project=self.resolved_project(),
                location=self.resolved_location(),
                credentials=credentials,
                http_options=options,
            )
        except Exception as exc:  # google.auth raises several unrelated types for "no creds"
            raise ProviderError(
                f"cannot set up Vertex AI: {type(exc).__name__}: {exc}",
                provider=self.name,
                hint="Run `gcloud auth application-default login` (or set "
                f"{ACCESS_TOKEN_ENV}) and set GOOGLE_CLOUD_PROJECT",
            ) from None
        return _GenaiClient(client)

    def build_config(self, request: GenerationRequest) -> dict[str, Any]:
        """The ``GenerateContentConfig`` fields for ``request`` (exposed for tests and logs)."""
        config: dict[str, Any] = {}
        system = "\n\n".join(
            m.content for m in request.messages if m.role in ("system", "developer")
        )
        if system:
            config["system_instruction"] = system
        if request.max_tokens is not None:
            config["max_output_tokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.json_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = request.json_schema
        return config

    @staticmethod
    def build_contents(request: GenerationRequest) -> list[dict[str, Any]]:
        """The ``contents`` turns: user and model, in order."""
        return [
            {
                "role": "model" if m.role == "assistant" else "user",
                "parts": [*map(_image_part, m.images), {"text": m.content}],
            }
            for m in request.messages
            if m.role in ("user", "assistant")
        ]

    async def _attempt(self, request: GenerationRequest) -> Generation:
        from google.genai import types

        if self.resolved_project() is None and self.resolved_base_url() is None:
            raise ProviderError(
                "no Google Cloud project is set",
                provider=self.name,
                model=request.model,
                hint="Set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION, default us-central1)",
            )
        client = self._clients.get(self._token())
        contents = self.build_contents(request)
        if not contents:
            raise ProviderError(
                "the request has no user turn to answer", provider=self.name, model=request.model
            )
        response = await client.aio.models.generate_content(
            model=request.model,
            contents=contents,
            config=types.GenerateContentConfig(**self.build_config(request)),
        )
        return to_generation(response, request.model)

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one ``generateContent`` call, retrying transient failures."""
        try:
            return await call_with_retries(
                lambda: self._attempt(request),
                translate=translate_vertex_error,
                policy=self.retry,
                provider=self.name,
                model=request.model,
                api_key_env=self.access_token_env,
                base_url=self.resolved_base_url(),
                url_advice=URL_ADVICE,
                gate=self.gate,
                on_retry=self.on_retry,
            )
        except ProviderError as exc:
            token = self._token()
            if token and token in exc.message:
                exc.message = exc.message.replace(token, f"[redacted:{self.access_token_env}]")
                exc.args = (exc.message,)
            raise

    async def aclose(self) -> None:
        """Close the HTTP client opened on the running loop."""
        await self._clients.aclose()


def _image_part(url: str) -> dict[str, Any]:
    """An image as a Gemini part: ``inlineData`` for a data URI, ``fileData`` for a URI."""
    url = sendable_image(url)
    if url.startswith("data:"):
        mime = url[5:].split(";", 1)[0]
        return {"inline_data": {"mime_type": mime, "data": url.split(",", 1)[1]}}
    # A bare URI carries no MIME type and a fileData part must name one: the extension is the
    # best guess left (a .webp is not a JPEG).
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return {"file_data": {"mime_type": mime, "file_uri": url}}
