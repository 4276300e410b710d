"""The OpenAI chat-completions wire format the local server speaks.

Requests are parsed into :class:`ChatCompletionBody`; responses, stream chunks, the model list
and errors are built here in the shapes of the OpenAI OpenAPI spec
(``CreateChatCompletionResponse``, ``CreateChatCompletionStreamResponse``,
``ListModelsResponse``, ``ErrorResponse``), which the tests check them against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ftwizard.providers.local.logprobs import MAX_TOP_LOGPROBS, TokenLogprob, TopLogprob

OWNED_BY = "ftwizard"


class WireError(Exception):
    """A request the server refuses, with the spec's error fields and an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The ``ErrorResponse`` body."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class TextPart(BaseModel):
    """A text content part (the only kind a text model takes)."""

    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    """``image_url`` of an image part: a data URI or a local file (``detail`` is ignored)."""

    model_config = ConfigDict(extra="ignore")

    url: str
    detail: str | None = None


class ImagePart(BaseModel):
    """An image content part (``ChatCompletionRequestMessageContentPartImage``)."""

    type: Literal["image_url"]
    image_url: ImageURL


class WireMessage(BaseModel):
    """One message of a request."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart | ImagePart]

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def image_urls(self) -> list[str]:
        """The URLs of the message's image parts, in order."""
        if isinstance(self.content, str):
            return []
        return [part.image_url.url for part in self.content if isinstance(part, ImagePart)]


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionBody(BaseModel):
    """The fields of a create-chat-completion request the local server honours.

    Other fields the spec allows (``user``, ``metadata``, ``store``...) are accepted and
    ignored; fields that would change the answer but cannot be honoured are refused by
    :func:`parse_request`. Types are strict (``max_tokens: true`` is not 1)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str
    messages: list[WireMessage] = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=8)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)  # the spec's int64
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def stop_list(self) -> list[str]:
        """``stop`` as a list of non-empty strings."""
        if self.stop is None:
            return []
        items = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in items if s]

    def include_usage(self) -> bool:
        """Whether a stream ends with a usage chunk."""
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


# Fields that change what the model must do; answering without them would be a silent lie.
_UNSUPPORTED = ("tools", "functions", "response_format", "logit_bias", "audio", "prediction")


def parse_request(raw: bytes) -> ChatCompletionBody:
    """``raw`` as a :class:`ChatCompletionBody`, or a :class:`WireError` (400) naming the field."""
    from ftwizard.json_input import JSONInputError, loads

    try:
        data = loads(raw or b"{}")
    except JSONInputError as exc:
        where = f"{exc.field}: " if exc.field else ""
        raise WireError(400, f"{where}{exc.message}", param=exc.field) from None
    except ValueError as exc:
        raise WireError(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError(400, "the request body must be a JSON object")
    try:
        body = ChatCompletionBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise WireError(400, f"{param}: {first['msg']}", param=param) from None
    for name in _UNSUPPORTED:
        if data.get(name) not in (None, [], {}) and not (
            name == "response_format" and data[name] == {"type": "text"}
        ):
            raise WireError(400, f"'{name}' is not supported by local models", param=name)
    if body.top_logprobs is not None and not body.logprobs:
        raise WireError(400, "top_logprobs: logprobs must be true to use it", param="top_logprobs")
    return body


def logprobs_body(entries: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    """A choice's ``logprobs`` object (``content`` entries as ``ChatCompletionTokenLogprob``),
    or ``None`` when they were not asked for."""
    if entries is None:
        return None
    return {
        "content": [
            {**_token_fields(e), "top_logprobs": [_token_fields(t) for t in e.top]} for e in entries
        ],
        "refusal": None,
    }


def _token_fields(entry: TokenLogprob | TopLogprob) -> dict[str, Any]:
    """``token``, ``logprob`` and ``bytes`` (a list of ints, or null) of one token."""
    raw = entry.bytes
    return {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": None if raw is None else list(raw),
    }


def completion_response(
    *,
    completion_id: str,
    created: int,
    model: str,
    choices: list[tuple[str, str]],
    prompt_tokens: int,
    completion_tokens: int,
    logprobs: Sequence[Sequence[TokenLogprob]] | None = None,
) -> dict[str, Any]:
    """A ``CreateChatCompletionResponse``; ``choices`` are (text, finish_reason) pairs and
    ``logprobs``, when asked for, each choice's token entries."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": reason,
                "logprobs": logprobs_body(logprobs[i] if logprobs is not None else None),
            }
            for i, (text, reason) in enumerate(choices)
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """A ``CompletionUsage``."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def stream_chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    index: int | None,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage_body: dict[str, int] | None = None,
    with_usage_field: bool = False,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict[str, Any]:
    """A ``CreateChatCompletionStreamResponse``; ``index=None`` makes the final usage chunk
    (no choices); ``logprobs`` are the entries of the tokens this chunk's text came from."""
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if index is None
        else [
            {
                "index": index,
                "delta": delta or {},
                "finish_reason": finish_reason,
                "logprobs": logprobs_body(logprobs),
            }
        ],
    }
    if with_usage_field:
        chunk["usage"] = usage_body
    return chunk


def model_object(name: str, created: int) -> dict[str, Any]:
    """A ``Model``: the deployment's public name, never a filesystem path."""
    return {"id": name, "object": "model", "created": created, "owned_by": OWNED_BY}


__all__ = [
    "OWNED_BY",
    "ChatCompletionBody",
    "WireError",
    "WireMessage",
    "completion_response",
    "logprobs_body",
    "model_object",
    "parse_request",
    "stream_chunk",
    "usage",
]
