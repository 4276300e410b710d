"""The provider-neutral shapes of a chat call: request, reply, the provider protocol, its error.

Everything above the providers layer (teachers, judges, model graders, the dry run) talks to
models through :class:`ChatProvider` and these pydantic models only, never through an SDK.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from ftwizard.credentials import redact
from ftwizard.errors import FtwizardError


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str
    images: list[str] = Field(default_factory=list)
    """Images shown with this turn, before its text: data URIs, ``https://`` URLs or local
    paths (see :mod:`ftwizard.providers.media`). Each provider sends them its own way."""


class GenerationRequest(BaseModel):
    """A single chat completion to run.

    ``json_schema``, when given, asks for structured output: the reply text is JSON that
    validates against it. ``None`` for ``max_tokens``/``temperature`` means the provider default.
    """

    model: str
    messages: list[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    json_schema: dict[str, Any] | None = None
    seed: int | None = None
    top_p: float | None = None
    reasoning_effort: str | None = None
    """For reasoning models (OpenAI's ``reasoning_effort``); other providers ignore it."""


class Generation(BaseModel):
    """A model's reply plus the token usage a caller needs to price it."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None


@runtime_checkable
class ChatProvider(Protocol):
    """Anything that turns a :class:`GenerationRequest` into a :class:`Generation`."""

    name: str

    async def generate(self, request: GenerationRequest) -> Generation: ...


class ProviderError(FtwizardError):
    """A model call that failed for good (after retries), with what to do about it.

    The message is redacted: no key value ever reaches the user, a log or a session file.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        status_code: int | None = None,
        hint: str | None = None,
        attempts: int = 1,
        retryable: bool = False,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.hint = hint
        self.attempts = attempts
        self.retryable = retryable
        where = provider if model is None else f"{provider} model '{model}'"
        status = f" (HTTP {status_code})" if status_code is not None else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        text = f"{where}: {message}{status}{tries}"
        if hint:
            text += f". {hint}"
        self.message = redact(text)
        super().__init__(self.message)


__all__ = [
    "ChatMessage",
    "ChatProvider",
    "Generation",
    "GenerationRequest",
    "ProviderError",
]
