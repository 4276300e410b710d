"""Model strings: ``openai:``, ``anthropic:``, ``vertex:``, ``together:``, ``fireworks:`` or
``local:`` followed by the model's name.

A :class:`ModelRef` is what a user types (``--model openai:gpt-4.1-mini``) plus an optional base
URL, parsed once; :func:`build_generation_provider` turns it into the :class:`ChatProvider`
that generates with it. Nothing here touches the network or reads a key's value.

* ``openai:`` calls OpenAI, or any OpenAI-compatible server (vLLM, llama.cpp, Ollama, Together,
  Fireworks) when a base URL is given or ``OPENAI_BASE_URL`` is set. Key: ``OPENAI_API_KEY``
  (optional for a compatible server).
* ``anthropic:`` calls Claude. Key: ``ANTHROPIC_API_KEY``; base URL: ``ANTHROPIC_BASE_URL``.
* ``vertex:`` calls Gemini on Vertex AI (Application Default Credentials or
  ``GOOGLE_OAUTH_ACCESS_TOKEN``; ``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION``).
* ``together:`` and ``fireworks:`` call those services' OpenAI-compatible chat completions
  (``https://api.together.xyz/v1``, ``https://api.fireworks.ai/inference/v1``; ``--base-url``
  or ``TOGETHER_BASE_URL`` / ``FIREWORKS_BASE_URL`` point elsewhere). Keys:
  ``TOGETHER_API_KEY``, ``FIREWORKS_API_KEY`` (optional when a base URL is given).
* ``local:`` generates on this machine with transformers; ``local:builtin-tiny`` needs no
  download.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ftwizard.credentials import ADC_FIX, adc_path, key_fix
from ftwizard.errors import InputError
from ftwizard.providers.base import ChatProvider
from ftwizard.providers.retry import RetryEvent, RetryPolicy

ModelProvider = Literal["openai", "anthropic", "vertex", "together", "fireworks", "local"]
MODEL_PROVIDERS: tuple[ModelProvider, ...] = (
    "openai",
    "anthropic",
    "vertex",
    "together",
    "fireworks",
    "local",
)
OPENAI_API_HOST = "api.openai.com"


class VendorEndpoint(BaseModel):
    """An open-model service reached through its OpenAI-compatible chat completions."""

    model_config = ConfigDict(frozen=True)

    label: str
    base_url: str
    base_url_env: str
    api_key_env: str


# The services' documented OpenAI-compatible base URLs.
VENDOR_ENDPOINTS: dict[str, VendorEndpoint] = {
    "together": VendorEndpoint(
        label="Together",
        base_url="https://api.together.xyz/v1",
        base_url_env="TOGETHER_BASE_URL",
        api_key_env="TOGETHER_API_KEY",
    ),
    "fireworks": VendorEndpoint(
        label="Fireworks",
        base_url="https://api.fireworks.ai/inference/v1",
        base_url_env="FIREWORKS_BASE_URL",
        api_key_env="FIREWORKS_API_KEY",
    ),
}


class ModelRef(BaseModel):
    """A parsed model string: which provider, which model, and where to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ModelProvider
    name: str = Field(min_length=1)
    base_url: str | None = None

    @property
    def spec(self) -> str:
        """The string form, ``provider:name``."""
        return f"{self.provider}:{self.name}"

    @property
    def is_paid(self) -> bool:
        """Whether calls cost money (everything but local generation)."""
        return self.provider != "local"

    def compatible_base_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """For ``openai:``, the third-party server's URL (``None`` when calling OpenAI itself)."""
        if self.provider != "openai":
            return None
        env = os.environ if environ is None else environ
        url = self.base_url or env.get("OPENAI_BASE_URL") or None
        if url is None or OPENAI_API_HOST in url:
            return None
        return url

    def vendor_base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """For ``together:``/``fireworks:``, where the chat calls go: ``--base-url``, then the
        service's ``*_BASE_URL`` variable, then the service itself."""
        vendor = VENDOR_ENDPOINTS[self.provider]
        env = os.environ if environ is None else environ
        return self.base_url or env.get(vendor.base_url_env, "").strip() or vendor.base_url


def _suggest(name: str) -> str:
    lowered = name.lower()
    if lowered.startswith("claude"):
        return f"anthropic:{name}"
    if lowered.startswith("gemini"):
        return f"vertex:{name}"
    if lowered.startswith("accounts/"):
        return f"fireworks:{name}"
    if lowered.startswith(("gpt", "o1", "o3", "o4", "ft:")):
        return f"openai:{name}"
    return f"local:{name}"


def parse_model(spec: str, *, base_url: str | None = None, field: str = "--model") -> ModelRef:
    """Parse ``provider:NAME``; ``InputError`` (naming ``field``) for anything else.

    Only the first colon separates, so ``openai:ft:gpt-4o-mini:org::id`` keeps the fine-tuned
    model's own colons.
    """
    text = spec.strip()
    prefix, sep, name = text.partition(":")
    if not sep or prefix not in MODEL_PROVIDERS:
        choices = " | ".join(f"{p}:NAME" for p in MODEL_PROVIDERS)
        hint = f"; did you mean {_suggest(text)}?" if text and not sep else ""
        raise InputError(f"model '{spec}' must be one of {choices}{hint}", field=field)
    if not name.strip():
        raise InputError(f"model '{spec}' has no name after '{prefix}:'", field=field)
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            raise InputError(
                f"base URL '{base_url}' must start with http:// or https://", field="--base-url"
            )
        if prefix == "local":
            raise InputError(
                "a base URL does not apply to local: models; for a local server with an "
                "OpenAI-compatible API use openai:NAME --base-url URL",
                field="--base-url",
            )
    return ModelRef(provider=prefix, name=name.strip(), base_url=base_url)  # type: ignore[arg-type]


def credential_problem(ref: ModelRef, environ: Mapping[str, str] | None = None) -> str | None:
    """Why calls to ``ref`` would fail for lack of credentials, and how to fix it, or ``None``.

    No key is read beyond checking that its variable is set, and nothing touches the network:
    this is the preflight (:mod:`ftwizard.providers.preflight`) that runs before anything is
    estimated, asked or sent. The text names the variable (or ADC for Vertex) and how to set it.
    """
    env = os.environ if environ is None else environ

    def missing(name: str) -> str | None:
        if env.get(name, "").strip():
            return None
        return f"the environment variable {name} is not set: {key_fix(name)}"

    if ref.provider == "openai":
        return None if ref.compatible_base_url(env) else missing("OPENAI_API_KEY")
    if ref.provider in VENDOR_ENDPOINTS:
        vendor = VENDOR_ENDPOINTS[ref.provider]
        # Another server speaking the same API (a proxy, a fake) may need no key.
        if ref.vendor_base_url(env) != vendor.base_url:
            return None
        return missing(vendor.api_key_env)
    if ref.provider == "anthropic":
        return missing("ANTHROPIC_API_KEY")
    if ref.provider == "vertex":
        return vertex_problem(env, endpoint=ref.base_url)
    return None


def vertex_problem(env: Mapping[str, str], *, endpoint: str | None = None) -> str | None:
    """What Vertex AI calls lack (a project, or Google credentials), and how to fix it."""
    if endpoint or env.get("GOOGLE_VERTEX_BASE_URL", "").strip():
        return None  # another endpoint (a regional proxy, a fake) says what it needs
    if not env.get("GOOGLE_CLOUD_PROJECT", "").strip():
        return "the environment variable GOOGLE_CLOUD_PROJECT is not set: " + key_fix(
            "GOOGLE_CLOUD_PROJECT"
        ).replace("...", "your-project-id", 1)
    if not env.get("GOOGLE_OAUTH_ACCESS_TOKEN", "").strip() and adc_path(env) is None:
        return f"no Google application-default credentials (ADC) were found: {ADC_FIX}"
    return None


def build_generation_provider(
    ref: ModelRef,
    *,
    retry: RetryPolicy | None = None,
    timeout_s: float = 120.0,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> ChatProvider:
    """The provider that generates with ``ref`` (SDKs are imported on the first call)."""
    if ref.provider == "openai":
        from ftwizard.providers.openai.http import LeanOpenAIChatProvider

        compatible_url = ref.compatible_base_url()
        return LeanOpenAIChatProvider(
            name="openai" if compatible_url is None else "openai-compatible",
            base_url=ref.base_url,
            compatible=compatible_url is not None,
            retry=retry,
            timeout_s=timeout_s,
            on_retry=on_retry,
        )
    if ref.provider in VENDOR_ENDPOINTS:
        from ftwizard.providers.openai.http import LeanOpenAIChatProvider

        vendor = VENDOR_ENDPOINTS[ref.provider]
        return LeanOpenAIChatProvider(
            name=ref.provider,
            api_key_env=vendor.api_key_env,
            base_url=ref.vendor_base_url(),
            compatible=True,
            retry=retry,
            timeout_s=timeout_s,
            on_retry=on_retry,
        )
    if ref.provider == "anthropic":
        from ftwizard.providers.anthropic.chat import AnthropicChatProvider

        return AnthropicChatProvider(
            base_url=ref.base_url, retry=retry, timeout_s=timeout_s, on_retry=on_retry
        )
    if ref.provider == "vertex":
        from ftwizard.providers.vertex.chat import VertexChatProvider

        return VertexChatProvider(
            base_url=ref.base_url, retry=retry, timeout_s=timeout_s, on_retry=on_retry
        )
    from ftwizard.providers.local.chat import LocalChatProvider

    return LocalChatProvider()


async def close_provider(provider: ChatProvider) -> None:
    """Release what a provider holds (HTTP clients on this loop, local worker state)."""
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(provider, "close", None)
    if close is not None:
        close()
