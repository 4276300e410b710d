"""Chat completions on OpenAI and on any OpenAI-compatible server (vLLM, llama.cpp, Ollama,
Together, Fireworks), through the ``openai`` SDK.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, Generation, GenerationRequest
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

# o1/o3/o4-mini and the gpt-5 family (and fine-tunes of them, "ft:o4-mini-...") reject
# `temperature` and the legacy `max_tokens`.
_REASONING_MODEL = re.compile(r"^(?:ft:)?(?:o\d|gpt-5)", re.IGNORECASE)
_SCHEMA_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` is an OpenAI reasoning model (no temperature, max_completion_tokens)."""
    return bool(_REASONING_MODEL.match(model))


def is_strict_schema(schema: Any) -> bool:
    """Whether ``schema`` meets OpenAI's strict structured-output rules.

    Every object must forbid additional properties and require all of its properties; a
    schema that does not would be rejected with ``strict: true``, so it is sent non-strict.
    """
    if isinstance(schema, list):
        return all(is_strict_schema(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    is_object = schema.get("type") == "object" or isinstance(props, dict)
    if is_object:
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set((props or {}).keys()):
            return False
    children: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        value = schema.get(key)
        if isinstance(value, dict):
            children.extend(value.values())
    for key in ("items", "anyOf", "allOf", "oneOf", "prefixItems"):
        if key in schema:
            children.append(schema[key])
    return all(is_strict_schema(c) for c in children)


def response_format_for(schema: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` that asks for JSON matching ``schema``."""
    title = schema.get("title")
    name = _SCHEMA_NAME_CHARS.sub("_", title)[:64] if isinstance(title, str) and title else ""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": name or "output",
            "schema": schema,
            "strict": is_strict_schema(schema),
        },
    }


def openai_image_url(ref: str) -> str:
    """``ref`` as the ``image_url.url`` OpenAI takes: an http(s) URL or data URI as it is, a
    local file encoded as a data URI. A file that cannot be read is an :class:`InputError`."""
    from ftwizard.providers.media import (
        MediaUnavailable,
        NotAnImage,
        reference_kind,
        to_data_uri,
    )

    if reference_kind(ref) in ("https", "http", "data"):
        return ref
    try:
        return to_data_uri(ref)
    except (MediaUnavailable, NotAnImage) as exc:
        raise InputError(str(exc), field="image") from None


@dataclass
class _ModelQuirks:
    """Parameters a model turned out to reject, learned from its 400 replies."""

    drop_temperature: bool = False
    max_completion_tokens: bool = False


# Added to the hint of a 404: the usual base-URL mistake for this API.
URL_ADVICE = "an OpenAI-compatible base URL usually ends in /v1"


def translate_openai_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for an openai SDK error; ``None`` for anything else."""
    import openai

    message = None
    if isinstance(exc, openai.APIStatusError) and isinstance(exc.body, dict):
        message = exc.body.get("message")
    return translate_sdk_error(
        exc,
        openai,
        message=message,
        invalid_reply="the server's reply is not a valid chat completion",
    )


def _rejected_param(exc: BaseException) -> str | None:
    """The parameter a 400 reply complains about, when it is one we know how to drop."""
    import openai

    if not isinstance(exc, openai.BadRequestError):
        return None
    body = exc.body if isinstance(exc.body, dict) else {}
    param = str(body.get("param") or exc.param or "")
    message = str(body.get("message") or exc.message).lower()
    if param == "temperature" or "temperature" in message:
        return "temperature"
    if param == "max_tokens" or "max_completion_tokens" in message:
        return "max_tokens"
    return None


class OpenAIChatProvider:
    """A :class:`~ftwizard.providers.base.ChatProvider` for the Chat Completions API.

    ``compatible=True`` targets third-party servers: it sends ``max_tokens`` (which they all
    understand) and maps the ``developer`` role to ``system``. Against OpenAI itself,
    ``max_completion_tokens`` is sent, and reasoning models get no ``temperature``.
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
        self.name = name
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.compatible = compatible
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.gate = RateGate()
        self._quirks: dict[str, _ModelQuirks] = {}
        self._clients: ClientCache[Any] = ClientCache(self._build_client)

    def _build_client(self, api_key: str) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,  # retries are ours (ftwizard.providers.retry), never stacked
            timeout=self.timeout_s,
        )

    def _quirks_for(self, model: str) -> _ModelQuirks:
        if model not in self._quirks:
            # by its name, also behind a base URL (OPENAI_BASE_URL often points at a proxy of
            # OpenAI itself), where max_tokens and temperature would be refused just the same
            reasoning = is_reasoning_model(model)
            self._quirks[model] = _ModelQuirks(
                drop_temperature=reasoning,
                max_completion_tokens=reasoning or not self.compatible,
            )
        return self._quirks[model]

    def build_params(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments for ``chat.completions.create`` (exposed for tests and logs)."""
        quirks = self._quirks_for(request.model)
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [self._message(m) for m in request.messages],
        }
        if request.max_tokens is not None:
            key = "max_completion_tokens" if quirks.max_completion_tokens else "max_tokens"
            params[key] = request.max_tokens
        if request.temperature is not None and not quirks.drop_temperature:
            params["temperature"] = request.temperature
        # reasoning models refuse top_p as they refuse temperature
        if request.top_p is not None and not quirks.drop_temperature:
            params["top_p"] = request.top_p
        if request.seed is not None:
            params["seed"] = request.seed
        if request.reasoning_effort is not None:
            params["reasoning_effort"] = request.reasoning_effort
        if request.json_schema is not None:
            params["response_format"] = response_format_for(request.json_schema)
        return params

    def _message(self, message: ChatMessage) -> dict[str, Any]:
        role = "system" if self.compatible and message.role == "developer" else message.role
        if not message.images:
            return {"role": role, "content": message.content}
        # Chat Completions image parts: a URL is passed on, a local file goes as a data URI.
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": openai_image_url(ref)}}
            for ref in message.images
        ]
        if message.content:
            parts.append({"type": "text", "text": message.content})
        return {"role": role, "content": parts}

    async def _attempt(self, request: GenerationRequest) -> Generation:
        api_key = read_api_key(
            self.api_key_env,
            provider=self.name,
            model=request.model,
            # A third-party server needs a key only when one was configured for it.
            required=not self.compatible or self.api_key_env is not None,
        )
        client = self._clients.get(api_key)
        quirks = self._quirks_for(request.model)
        # Each known parameter is adjusted at most once, so this runs at most three times.
        for _ in range(3):
            params = self.build_params(request)
            try:
                completion = await client.chat.completions.create(**params)
            except Exception as exc:
                rejected = _rejected_param(exc)
                if rejected == "temperature" and "temperature" in params:
                    quirks.drop_temperature = True
                    continue
                if rejected == "max_tokens" and "max_tokens" in params:
                    quirks.max_completion_tokens = True
                    continue
                raise
            return self._to_generation(completion, request.model)
        raise AssertionError("unreachable: parameter adjustments are bounded")

    @staticmethod
    def _to_generation(completion: Any, requested_model: str) -> Generation:
        choice = completion.choices[0] if completion.choices else None
        text = ""
        finish_reason = None
        if choice is not None:
            message = choice.message
            text = message.content or ""
            finish_reason = choice.finish_reason
            refusal = getattr(message, "refusal", None)
            if not text and refusal:
                text, finish_reason = refusal, "refusal"
        usage = completion.usage
        return Generation(
            text=text,
            model=completion.model or requested_model,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
            finish_reason=finish_reason,
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        """Run one chat completion, retrying transient failures; raise ProviderError otherwise."""
        with image_failures_per_call(provider=self.name, model=request.model):
            return await call_with_retries(
                lambda: self._attempt(request),
                translate=translate_openai_error,
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
