"""Claude through the ``anthropic`` SDK (2.x): the Messages API for teachers and judges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.base import Generation, GenerationRequest
from ftwizard.providers.client_cache import ClientCache
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.media import image_failures_per_call
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
    translate_sdk_error,
)

# The Messages API requires max_tokens; this is what a request without one gets.
DEFAULT_MAX_TOKENS = 4096


# Added to the hint of a 404: the usual base-URL mistake for this API.
URL_ADVICE = "the Anthropic base URL has no /v1 (the SDK adds it)"


def translate_anthropic_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for an anthropic SDK error; ``None`` for anything else."""
    import anthropic

    message = exc.api_message if isinstance(exc, anthropic.APIStatusError) else None
    return translate_sdk_error(
        exc, anthropic, message=message, invalid_reply="the server's reply is not a valid message"
    )


def _rejects_temperature(exc: BaseException) -> bool:
    import anthropic

    if not isinstance(exc, anthropic.BadRequestError):
        return False
    return "temperature" in str(exc.api_message or exc.message).lower()


def anthropic_content(text: str, images: list[str]) -> str | list[dict[str, Any]]:
    """A message's content for the Messages API: plain text, or ``image`` blocks (before the
    text, as Anthropic's vision guide advises) then a text block.

    An https URL goes as a ``url`` source; anything else is read here and sent as a
    ``base64`` source, within Anthropic's per-image limit (5 MB) and formats (PNG, JPEG, GIF,
    WEBP): an image outside them is an :class:`InputError` before any money is spent.
    """
    if not images:
        return text
    from ftwizard.providers.media import (
        MediaUnavailable,
        NotAnImage,
        human_bytes,
        limits_for,
        reference_kind,
        resolve_image,
        sniff_image,
    )

    limits = limits_for("anthropic")
    blocks: list[dict[str, Any]] = []
    for ref in images:
        if reference_kind(ref) == "https":
            blocks.append({"type": "image", "source": {"type": "url", "url": ref}})
            continue
        try:
            data = resolve_image(ref)
            info = sniff_image(data)
        except (MediaUnavailable, NotAnImage) as exc:
            raise InputError(str(exc), field="image") from None
        if info.format not in limits.formats:
            raise InputError(
                f"Anthropic takes {limits.describe_formats()} images, not {info.format}",
                field="image",
            )
        if info.size_bytes > limits.max_bytes:
            raise InputError(
                f"the image is {human_bytes(info.size_bytes)}; Anthropic takes at most "
                f"{human_bytes(limits.max_bytes)} per image",
                field="image",
            )
        source = {"type": "base64", "media_type": info.mime, "data": _b64(data)}
        blocks.append({"type": "image", "source": source})
    if text:
        blocks.append({"type": "text", "text": text})
    return blocks


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


class AnthropicChatProvider:
    """A :class:`~ftwizard.providers.base.ChatProvider` for Claude.

    ``system`` and ``developer`` turns are joined into ``system=``. anthropic 2.x dropped the
    ``temperature`` argument; it is sent through ``extra_body`` and, once a model answers that
    it no longer accepts one (Opus 4.7 and later do), left out for that model from then on.
    """

    def __init__(
        self,
        *,
        name: str = "anthropic",
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self.name = name
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.gate = RateGate()
        self._no_temperature: set[str] = set()
        self._clients: ClientCache[Any] = ClientCache(self._build_client)

    def _build_client(self, api_key: str) -> Any:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,  # retries are ours (ftwizard.providers.retry), never stacked
            timeout=self.timeout_s,
        )

    def build_params(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``messages.create`` (also the ``params`` of a batch item)."""
        system = "\n\n".join(
            m.content for m in request.messages if m.role in ("system", "developer")
        )
        params: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [
                {"role": m.role, "content": anthropic_content(m.content, m.images)}
                for m in request.messages
                if m.role in ("user", "assistant")
            ],
        }
        if system:
            params["system"] = system
        if request.json_schema is not None:
            params["output_config"] = {
                "format": {"type": "json_schema", "schema": request.json_schema}
            }
        if request.temperature is not None and request.model not in self._no_temperature:
            params["extra_body"] = {"temperature": request.temperature}
        return params

    def sdk_client(self, model: str | None = None) -> Any:
        """The ``AsyncAnthropic`` client for the running loop, with the key read just now."""
        api_key = read_api_key(self.api_key_env, provider=self.name, model=model)
        return self._clients.get(api_key)

    async def _attempt(self, request: GenerationRequest) -> Generation:
        client = self.sdk_client(request.model)
        try:
            message = await client.messages.create(**self.build_params(request))
        except Exception as exc:
            if request.temperature is None or not _rejects_temperature(exc):
                raise
            self._no_temperature.add(request.model)
            message = await client.messages.create(**self.build_params(request))
        return message_to_generation(message, request.model)

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one Messages call, retrying transient failures; raise ProviderError otherwise."""
        with image_failures_per_call(provider=self.name, model=request.model):
            return await call_with_retries(
                lambda: self._attempt(request),
                translate=translate_anthropic_error,
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
        await self._clients.aclose()


def message_to_generation(message: Any, requested_model: str) -> Generation:
    """A :class:`Generation` from an SDK ``Message`` (also used for batch results).

    Cached prompt tokens are counted as input: the caller prices what was processed.
    """
    text = "".join(getattr(block, "text", "") for block in message.content if block.type == "text")
    usage = message.usage
    input_tokens = (
        usage.input_tokens
        + (usage.cache_creation_input_tokens or 0)
        + (usage.cache_read_input_tokens or 0)
    )
    return Generation(
        text=text,
        model=message.model or requested_model,
        input_tokens=input_tokens,
        output_tokens=usage.output_tokens,
        finish_reason=message.stop_reason,
    )
