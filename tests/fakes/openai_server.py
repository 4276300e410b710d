"""A fake OpenAI API on 127.0.0.1: ``/v1/chat/completions`` and ``/v1/models``.

Point the SDK at it with ``AsyncOpenAI(base_url=server.v1_url, api_key=server.api_key)``.

Chat replies, in order of precedence: a queued reply (:meth:`FakeOpenAIServer.reply_with`),
then ``server.reply_fn(body)``, then the default: JSON satisfying the request's
``response_format`` schema, or ``"echo: <last user message>"``.

More endpoint groups are added the same way the chat group is: a ``_register_*`` method that
calls :meth:`route` plus the state it needs. Files and fine-tuning jobs (events, checkpoints,
pause/resume/cancel, a timeline on a test-controlled clock) live in ``server.tuning``
(:class:`~tests.fakes.openai_tuning.FineTuningSim`).
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.fakes.http_server import FakeHTTPServer, FakeResponse, RecordedRequest
from tests.fakes.openai_batches import OpenAIBatchRoutes
from tests.fakes.openai_tuning import FineTuningSim
from tests.fakes.schema_sample import sample_for_schema

DEFAULT_OPENAI_KEY = "sk-fake-openai-0123456789abcdefghijklmn"
DEFAULT_MODELS = ("gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14", "o4-mini-2025-04-16")

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


@dataclass
class ChatReply:
    """A scripted chat completion. Token counts default to word counts."""

    text: str | None
    finish_reason: str = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    refusal: str | None = None
    model: str | None = None


ChatReplyFn = Callable[[dict[str, Any]], "str | ChatReply | FakeResponse"]


def count_words(text: str) -> int:
    """The fakes' stand-in for a tokenizer: whitespace-separated words, at least one."""
    return max(1, len(text.split()))


class FakeOpenAIServer(FakeHTTPServer, OpenAIBatchRoutes):
    """OpenAI's wire format with scriptable replies, failures and auth.

    ``api_key=None`` accepts any key (a keyless local server). ``models=None`` accepts any
    model name; otherwise an unknown model gets OpenAI's 404 ``model_not_found``.
    ``unsupported_params[model] = {"temperature"}`` makes that model reject the parameter the
    way OpenAI's reasoning models do.
    """

    def __init__(
        self,
        *,
        api_key: str | None = DEFAULT_OPENAI_KEY,
        models: Iterable[str] | None = DEFAULT_MODELS,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models: list[str] | None = list(models) if models is not None else None
        self.unsupported_params: dict[str, set[str]] = {}
        self.shutdown_dates: dict[str, str | None] = {}
        self.reply_fn: ChatReplyFn | None = None
        self._replies: deque[str | ChatReply | FakeResponse] = deque()
        self._ids = itertools.count(1)
        self._register_models()
        self._register_chat()
        self._register_graders()
        self._register_fine_tuning()
        self._register_batches()

    @property
    def v1_url(self) -> str:
        """The SDK's ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.base_url}/v1"

    def next_id(self, prefix: str) -> str:
        """A fresh object id such as ``chatcmpl-7``."""
        return f"{prefix}-{next(self._ids)}"

    # Wire format

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse:
        """OpenAI's ``{"error": {message, type, param, code}}``."""
        kind = error_type or _ERROR_TYPES.get(status, "server_error" if status >= 500 else None)
        return FakeResponse(
            status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
        )

    def check_auth(self, request: RecordedRequest) -> FakeResponse | None:
        """Require ``Authorization: Bearer <api_key>`` when a key is configured."""
        if self.api_key is None:
            return None
        token = request.bearer_token()
        if token == self.api_key:
            return None
        # Some OpenAI-compatible servers echo the whole key back; doing the same here lets
        # tests prove that ftwizard redacts it before it reaches the user.
        reply = self.error_response(
            401, f"Incorrect API key provided: {token}.", error_type="invalid_request_error"
        )
        reply.body["error"]["code"] = "invalid_api_key"
        return reply

    # Scripting

    def reply_with(self, *replies: str | ChatReply | FakeResponse) -> None:
        """Queue chat replies; each request takes the next one."""
        self._replies.extend(replies)

    def chat_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every chat completion request received, in order."""
        return [r.json() for r in self.requests_to("/v1/chat/completions", "POST")]

    # /v1/models

    def _register_models(self) -> None:
        self.route("GET", "/v1/models", self._list_models)
        self.route("GET", "/v1/models/(?P<model>.+)", self._get_model)

    def _model_object(self, model: str) -> dict[str, Any]:
        data = {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
        if model in self.shutdown_dates:  # Model.shutdown_date, OpenAI spec 2026-08
            data["shutdown_date"] = self.shutdown_dates[model]
        return data

    def _list_models(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        return FakeResponse(
            200, {"object": "list", "data": [self._model_object(m) for m in self.models or []]}
        )

    def _get_model(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        model = params["model"]
        if self.models is not None and model not in self.models:
            return self._model_not_found(model)
        return FakeResponse(200, self._model_object(model))

    def _model_not_found(self, model: str) -> FakeResponse:
        reply = self.error_response(
            404, f"The model `{model}` does not exist or you do not have access to it."
        )
        reply.body["error"]["code"] = "model_not_found"
        return reply

    # /v1/chat/completions

    # /v1/files and /v1/fine_tuning/jobs (see tests/fakes/openai_tuning.py)

    def _register_fine_tuning(self) -> None:
        """Files and fine-tuning jobs on a simulated clock: ``server.tuning``."""
        self.tuning = FineTuningSim(self, grader_check=_grader_problem)
        self.tuning.register()

    # /v1/fine_tuning/alpha/graders/validate

    def _register_graders(self) -> None:
        self.route("POST", "/v1/fine_tuning/alpha/graders/validate", self._validate_grader)

    def _validate_grader(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        body = request.json()
        grader = body.get("grader") if isinstance(body, dict) else None
        problem = _grader_problem(grader)
        if problem:
            return self._invalid(problem, "grader")
        return FakeResponse(200, {"grader": grader})

    def _register_chat(self) -> None:
        self.route("POST", "/v1/chat/completions", self._chat_completion)

    def _invalid(self, message: str, param: str | None = None) -> FakeResponse:
        reply = self.error_response(400, message)
        reply.body["error"]["param"] = param
        return reply

    def _validate_chat(self, body: Any) -> FakeResponse | None:
        if not isinstance(body, dict):
            return self._invalid("The request body must be a JSON object.")
        if not isinstance(body.get("model"), str):
            return self._invalid("Missing required parameter: 'model'.", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._invalid("'messages' must be a non-empty array.", "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in (
                "system",
                "developer",
                "user",
                "assistant",
                "tool",
            ):
                return self._invalid(f"Invalid role in messages[{i}].", f"messages[{i}].role")
        if "max_tokens" in body and "max_completion_tokens" in body:
            return self._invalid(
                "Set either max_tokens or max_completion_tokens, not both.", "max_tokens"
            )
        for param in sorted(self.unsupported_params.get(body["model"], set())):
            if param in body:
                hint = " Use 'max_completion_tokens' instead." if param == "max_tokens" else ""
                return self._invalid(
                    f"Unsupported parameter: '{param}' is not supported with this model.{hint}",
                    param,
                )
        fmt = body.get("response_format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") not in (
                "text",
                "json_object",
                "json_schema",
            ):
                return self._invalid("Invalid response_format.type.", "response_format")
            if fmt["type"] == "json_schema":
                spec = fmt.get("json_schema")
                if not isinstance(spec, dict) or "name" not in spec or "schema" not in spec:
                    return self._invalid(
                        "response_format.json_schema needs 'name' and 'schema'.",
                        "response_format.json_schema",
                    )
        return None

    def default_reply(self, body: dict[str, Any]) -> ChatReply:
        """Schema-valid JSON for structured requests, else an echo of the last user turn."""
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return ChatReply(json.dumps(sample_for_schema(fmt["json_schema"]["schema"])))
        if fmt.get("type") == "json_object":
            return ChatReply("{}")
        last_user = next(
            (m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"),
            "",
        )
        return ChatReply(f"echo: {last_user}")

    def _chat_completion(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        try:
            body = request.json()
        except ValueError:
            return self._invalid("We could not parse the JSON body of your request.")
        invalid = self._validate_chat(body)
        if invalid is not None:
            return invalid
        if self.models is not None and body["model"] not in self.models:
            return self._model_not_found(body["model"])
        scripted: str | ChatReply | FakeResponse | None
        try:
            # Handler threads race for queued replies; popleft is atomic, a check-then-pop is not.
            scripted = self._replies.popleft()
        except IndexError:
            scripted = None
        if scripted is None and self.reply_fn is not None:
            scripted = self.reply_fn(body)
        if scripted is None:
            scripted = self.default_reply(body)
        if isinstance(scripted, FakeResponse):
            return scripted
        reply = ChatReply(scripted) if isinstance(scripted, str) else scripted
        prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
        completion_tokens = reply.completion_tokens
        if completion_tokens is None:
            completion_tokens = count_words(reply.text or reply.refusal or "")
        prompt_tokens = (
            reply.prompt_tokens if reply.prompt_tokens is not None else count_words(prompt)
        )
        return FakeResponse(
            200,
            {
                "id": self.next_id("chatcmpl"),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": reply.model or body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply.text,
                            "refusal": reply.refusal,
                        },
                        "finish_reason": reply.finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


# What OpenAI's validate endpoint checks beyond the schema, per the graders guide: the fields
# each type requires, and which models may judge.
_GRADER_REQUIRED: dict[str, tuple[str, ...]] = {
    "string_check": ("name", "input", "reference", "operation"),
    "text_similarity": ("name", "input", "reference", "evaluation_metric"),
    "score_model": ("name", "model", "input"),
    "label_model": ("name", "model", "input", "labels", "passing_labels"),
    "python": ("name", "source"),
    "multi": ("name", "graders", "calculate_output"),
}
GRADER_MODELS = (
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-4.1-2025-04-14",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "o1-2024-12-17",
    "o3-mini-2025-01-31",
    "o3-2025-04-16",
    "o4-mini-2025-04-16",
)


def _grader_problem(grader: Any) -> str | None:
    if not isinstance(grader, dict):
        return "Missing required parameter: 'grader'."
    kind = grader.get("type")
    if kind not in _GRADER_REQUIRED:
        return f"Invalid grader type: {kind!r}."
    for field_name in _GRADER_REQUIRED[kind]:
        if field_name not in grader:
            return f"Missing required parameter: 'grader.{field_name}'."
    if kind in ("score_model", "label_model") and grader["model"] not in GRADER_MODELS:
        return f"Model {grader['model']!r} is not supported for model graders."
    if kind == "multi":
        for name, sub in (grader.get("graders") or {}).items():
            inner = _grader_problem(sub)
            if inner:
                return f"graders.{name}: {inner}"
    return None
