"""Building a chat provider from a small, secret-free configuration.

A :class:`ChatProviderConfig` is what a session stores for a teacher or judge: the kind of
endpoint, the model, an optional base URL and the *name* of the environment variable that
holds the key. The key itself is read from the environment on every call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ftwizard.providers.anthropic_chat import AnthropicChatProvider
from ftwizard.providers.base import ChatProvider
from ftwizard.providers.openai_chat import OpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy

ProviderKind = Literal["openai", "anthropic", "openai_compatible"]

DEFAULT_KEY_ENV: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    # Local servers (llama.cpp, Ollama, vLLM) usually need no key.
    "openai_compatible": None,
}


class ChatProviderConfig(BaseModel):
    """Which model to call and where; never the key, only the variable that holds it."""

    # A key pasted by mistake must not come back in a validation message.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    kind: ProviderKind
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("api_key_env")
    @classmethod
    def _looks_like_a_variable_name(cls, value: str | None) -> str | None:
        # A pasted key here would end up in session.json; refuse anything but a name.
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(
                "api_key_env is the NAME of an environment variable (e.g. OPENAI_API_KEY), "
                "not the key itself"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _compatible_needs_url(self) -> ChatProviderConfig:
        if self.kind == "openai_compatible" and self.base_url is None:
            raise ValueError(
                "an openai_compatible provider needs base_url (e.g. http://127.0.0.1:8000/v1)"
            )
        return self

    def key_env(self) -> str | None:
        """The variable the key is read from: the configured one, else the kind's default."""
        return self.api_key_env if self.api_key_env is not None else DEFAULT_KEY_ENV[self.kind]

    def key_problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Why a call would fail for lack of a key, or ``None`` when the key is in place.

        For a pre-flight check in the UI, before anything is spent.
        """
        env = os.environ if environ is None else environ
        name = self.key_env()
        if name is None:
            return None if self.kind == "openai_compatible" else "no API key variable is set"
        if not env.get(name, "").strip():
            return f"the environment variable {name} is not set"
        return None


def build_chat_provider(config: ChatProviderConfig) -> ChatProvider:
    """A ready :class:`ChatProvider` for ``config`` (no network, no key read until a call)."""
    if config.kind == "anthropic":
        return AnthropicChatProvider(
            api_key_env=config.key_env(),
            base_url=config.base_url,
            retry=config.retry,
            timeout_s=config.timeout_s,
        )
    return OpenAIChatProvider(
        name="openai" if config.kind == "openai" else "openai-compatible",
        api_key_env=config.key_env(),
        base_url=config.base_url,
        compatible=config.kind == "openai_compatible",
        retry=config.retry,
        timeout_s=config.timeout_s,
    )
