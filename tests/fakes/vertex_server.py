"""A fake Vertex AI ``generateContent`` endpoint on 127.0.0.1 (Gemini's wire format).

Point google-genai at it with ``vertexai=True``, any project and location, credentials
``google.oauth2.credentials.Credentials(token=server.token)`` and
``HttpOptions(base_url=server.base_url + "/", api_version="v1")``: anonymous credentials fail
in google-genai ("cannot be refreshed"), a bearer token does not.

Path: ``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:
generateContent``. Replies, in order of precedence: a queued reply (:meth:`reply_with`), then
``server.reply_fn(body)``, then the default: JSON satisfying the request's response schema, or
``"echo: <last user text>"``. Errors use Google's ``{"error": {code, message, status}}``.

Tuning jobs, tuned endpoints and Cloud Storage uploads live in ``server.tuning``
(:class:`~tests.fakes.vertex_tuning.VertexTuningSim`).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http_server import FakeHTTPServer, FakeResponse, RecordedRequest
from tests.fakes.openai_server import count_words
from tests.fakes.schema_sample import sample_for_schema
from tests.fakes.vertex_tuning import VertexTuningSim

DEFAULT_VERTEX_TOKEN = "ya29.fake-vertex-token-0123456789"
DEFAULT_VERTEX_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite")

GENERATE_PATH = (
    r"/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):generateContent"
)

# Google's canonical status names for the HTTP codes a test injects.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class GeminiReply:
    """A scripted candidate. Token counts default to word counts."""

    text: str
    finish_reason: str = "STOP"
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    model_version: str | None = None


GeminiReplyFn = Callable[[dict[str, Any]], "str | GeminiReply | FakeResponse"]


def _texts(content: Any) -> list[str]:
    if not isinstance(content, dict):
        return []
    return [p["text"] for p in content.get("parts") or [] if isinstance(p, dict) and "text" in p]


class FakeVertexServer(FakeHTTPServer):
    """Gemini ``generateContent`` on Vertex AI with scriptable replies, failures and auth.

    ``token=None`` accepts any bearer token. ``models=None`` accepts any model; otherwise an
    unknown one gets Vertex's 404 ``NOT_FOUND``.
    """

    def __init__(
        self,
        *,
        token: str | None = DEFAULT_VERTEX_TOKEN,
        models: Iterable[str] | None = DEFAULT_VERTEX_MODELS,
    ) -> None:
        super().__init__()
        self.token = token
        self.models: list[str] | None = list(models) if models is not None else None
        self.reply_fn: GeminiReplyFn | None = None
        self._replies: deque[str | GeminiReply | FakeResponse] = deque()
        self.route("POST", GENERATE_PATH, self._generate_content)
        self._register_tuning()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            # Without TCP_NODELAY the body, written after the headers, waits for the client's
            # delayed ACK: about 40 ms per reply on loopback.
            disable_nagle_algorithm = True

        return Handler

    def _register_tuning(self) -> None:
        """Tuning jobs, tuned endpoints and Cloud Storage uploads on a simulated clock:
        ``server.tuning`` (see tests/fakes/vertex_tuning.py)."""
        self.tuning = VertexTuningSim(self)
        self.tuning.register()

    # Wire format

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse:
        """Google's ``{"error": {"code", "message", "status"}}``."""
        name = error_type or _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")
        return FakeResponse(status, {"error": {"code": status, "message": message, "status": name}})

    def check_auth(self, request: RecordedRequest) -> FakeResponse | None:
        """Require ``Authorization: Bearer <token>`` when a token is configured."""
        if self.token is None or request.bearer_token() == self.token:
            return None
        return self.error_response(
            401, "Request had invalid authentication credentials.", error_type="UNAUTHENTICATED"
        )

    # Scripting

    def reply_with(self, *replies: str | GeminiReply | FakeResponse) -> None:
        """Queue replies; each generateContent request takes the next one."""
        self._replies.extend(replies)

    def generate_requests(self) -> list[RecordedRequest]:
        """Every generateContent request received, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(":generateContent")]

    def generate_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every generateContent request received, in order."""
        return [r.json() for r in self.generate_requests()]

    def default_reply(self, body: dict[str, Any]) -> GeminiReply:
        """Schema-valid JSON for structured requests, else an echo of the last user turn."""
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is not None:
            return GeminiReply(json.dumps(sample_for_schema(schema)))
        if config.get("responseMimeType") == "application/json":
            return GeminiReply("{}")
        last_user = next(
            (
                "".join(_texts(c))
                for c in reversed(body.get("contents") or [])
                if isinstance(c, dict) and c.get("role", "user") == "user"
            ),
            "",
        )
        return GeminiReply(f"echo: {last_user}")

    # generateContent

    def _invalid(self, message: str) -> FakeResponse:
        return self.error_response(400, message)

    def _generate_content(
        self,
        request: RecordedRequest,
        params: dict[str, str],
        *,
        reply_fn: GeminiReplyFn | None = None,
    ) -> FakeResponse:
        """Answer one request; ``reply_fn`` (a tuned endpoint's own behaviour) comes before
        ``server.reply_fn`` and after queued replies."""
        try:
            body = request.json()
        except ValueError:
            return self._invalid("Invalid JSON payload received.")
        if not isinstance(body, dict):
            return self._invalid("The request body must be a JSON object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return self._invalid("contents must not be empty.")
        for i, content in enumerate(contents):
            if not isinstance(content, dict) or content.get("role", "user") not in (
                "user",
                "model",
            ):
                return self._invalid(f"Please use a valid role: user, model (contents[{i}]).")
        model = params["model"]
        if self.models is not None and model not in self.models:
            return self.error_response(
                404,
                f"Publisher Model `projects/{params['project']}/locations/"
                f"{params['location']}/publishers/google/models/{model}` was not found or "
                "your project does not have access to it.",
            )
        scripted: str | GeminiReply | FakeResponse | None
        try:
            # Handler threads race for queued replies; popleft is atomic, check-then-pop is not.
            scripted = self._replies.popleft()
        except IndexError:
            scripted = None
        for fn in (reply_fn, self.reply_fn):
            if scripted is None and fn is not None:
                scripted = fn(body)
        if scripted is None:
            scripted = self.default_reply(body)
        if isinstance(scripted, FakeResponse):
            return scripted
        reply = GeminiReply(scripted) if isinstance(scripted, str) else scripted
        prompt = " ".join(
            [*_texts(body.get("systemInstruction")), *(t for c in contents for t in _texts(c))]
        )
        prompt_tokens = (
            reply.prompt_tokens if reply.prompt_tokens is not None else count_words(prompt)
        )
        output_tokens = (
            reply.output_tokens if reply.output_tokens is not None else count_words(reply.text)
        )
        return FakeResponse(
            200,
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": reply.text}]},
                        "finishReason": reply.finish_reason,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": output_tokens,
                    "totalTokenCount": prompt_tokens + output_tokens,
                },
                "modelVersion": reply.model_version or model,
            },
        )
