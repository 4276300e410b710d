"""A fake Anthropic API on 127.0.0.1: ``/v1/messages`` and the Message Batches endpoints.

Point the SDK at it with ``AsyncAnthropic(base_url=server.base_url, api_key=server.api_key)``
(the SDK adds ``/v1`` itself).

Replies, in order of precedence: a queued reply (:meth:`FakeAnthropicServer.reply_with`), then
``server.reply_fn(params)``, then the default: JSON satisfying ``output_config.format.schema``,
or ``"echo: <last user message>"``. Batch items go through the same choice, so a test scripts
a batch exactly as it scripts single calls; ``server.batch_item_errors[custom_id] = "message"``
makes one item come back ``errored``.

A batch stays ``in_progress`` for ``server.batch_polls_to_end`` retrievals, then ends; its
``results_url`` is an absolute URL on this server, as the real API's is on its own host.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.http_server import FakeHTTPServer, FakeResponse, RecordedRequest
from tests.fakes.openai_server import count_words
from tests.fakes.schema_sample import sample_for_schema

DEFAULT_ANTHROPIC_KEY = "fake-anthropic-key-0123456789abcdefghij"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class MessageReply:
    """A scripted Claude message. Token counts default to word counts."""

    text: str
    stop_reason: str = "end_turn"
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None


MessageReplyFn = Callable[[dict[str, Any]], "str | MessageReply | FakeResponse"]


@dataclass
class FakeBatch:
    """Server-side state of one Message Batch."""

    id: str
    requests: list[dict[str, Any]]
    created_at: datetime
    polls: int = 0
    canceled: bool = False
    results: list[dict[str, Any]] | None = None
    ended_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


class FakeAnthropicServer(FakeHTTPServer):
    """Anthropic's wire format with scriptable replies, failures, auth and batches.

    Auth: ``x-api-key: <key>`` or ``Authorization: Bearer <key>`` (anthropic 2.x sends the
    latter); ``api_key=None`` accepts any. Every request must carry ``anthropic-version``.
    ``temperature_rejected`` lists models that answer a ``temperature`` with the 400 that
    Opus 4.7 and later send.
    """

    def __init__(self, *, api_key: str | None = DEFAULT_ANTHROPIC_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.reply_fn: MessageReplyFn | None = None
        self.temperature_rejected: set[str] = set()
        self.batch_polls_to_end = 1
        self.batch_item_errors: dict[str, str] = {}
        self.batches: dict[str, FakeBatch] = {}
        self._replies: deque[str | MessageReply | FakeResponse] = deque()
        self._ids = itertools.count(1)
        self.route("POST", "/v1/messages", self._create_message)
        self.route("POST", "/v1/messages/batches", self._create_batch)
        self.route("GET", "/v1/messages/batches", self._list_batches)
        self.route("GET", "/v1/messages/batches/(?P<batch_id>[^/]+)", self._retrieve_batch)
        self.route("POST", "/v1/messages/batches/(?P<batch_id>[^/]+)/cancel", self._cancel_batch)
        self.route("GET", "/v1/messages/batches/(?P<batch_id>[^/]+)/results", self._batch_results)

    # Wire format

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse:
        """Anthropic's ``{"type": "error", "error": {type, message}}``."""
        kind = error_type or _ERROR_TYPES.get(status, "api_error")
        return FakeResponse(
            status,
            {"type": "error", "error": {"type": kind, "message": message}},
            headers={"request-id": f"req_fake_{next(self._ids)}"},
        )

    def check_auth(self, request: RecordedRequest) -> FakeResponse | None:
        """Require the version header, and the key in either auth header when one is set."""
        if "anthropic-version" not in request.headers:
            return self.error_response(400, "anthropic-version: header is required")
        if self.api_key is None:
            return None
        if self.api_key in (request.headers.get("x-api-key"), request.bearer_token()):
            return None
        return self.error_response(401, "invalid x-api-key")

    # Scripting

    def reply_with(self, *replies: str | MessageReply | FakeResponse) -> None:
        """Queue replies; each message (or batch item) takes the next one."""
        self._replies.extend(replies)

    def message_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every ``/v1/messages`` request received, in order."""
        return [r.json() for r in self.requests_to("/v1/messages", "POST")]

    # /v1/messages

    def _validate(self, params: Any) -> str | None:
        if not isinstance(params, dict):
            return "body: must be a JSON object"
        for name in ("model", "max_tokens", "messages"):
            if name not in params:
                return f"{name}: Field required"
        if not isinstance(params["max_tokens"], int) or params["max_tokens"] < 1:
            return "max_tokens: must be a positive integer"
        messages = params["messages"]
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if "temperature" in params and params["model"] in self.temperature_rejected:
            return "`temperature` is deprecated for this model."
        fmt = (params.get("output_config") or {}).get("format")
        if fmt is not None and (fmt.get("type") != "json_schema" or "schema" not in fmt):
            return "output_config.format: expected {type: json_schema, schema: {...}}"
        return None

    def default_reply(self, params: dict[str, Any]) -> MessageReply:
        """Schema-valid JSON for structured requests, else an echo of the last user turn."""
        fmt = (params.get("output_config") or {}).get("format")
        if fmt is not None:
            return MessageReply(json.dumps(sample_for_schema(fmt["schema"])))
        last_user = next(
            (m.get("content") for m in reversed(params["messages"]) if m.get("role") == "user"),
            "",
        )
        if isinstance(last_user, list):
            last_user = " ".join(str(b.get("text", "")) for b in last_user)
        return MessageReply(f"echo: {last_user}")

    def _reply_for(self, params: dict[str, Any]) -> FakeResponse:
        scripted: str | MessageReply | FakeResponse | None
        try:
            # Handler threads race for queued replies; popleft is atomic, a check-then-pop is not.
            scripted = self._replies.popleft()
        except IndexError:
            scripted = None
        if scripted is None and self.reply_fn is not None:
            scripted = self.reply_fn(params)
        if scripted is None:
            scripted = self.default_reply(params)
        if isinstance(scripted, FakeResponse):
            return scripted
        reply = MessageReply(scripted) if isinstance(scripted, str) else scripted
        prompt = " ".join(
            [str(params.get("system", ""))] + [str(m.get("content")) for m in params["messages"]]
        )
        return FakeResponse(
            200,
            {
                "id": f"msg_fake_{next(self._ids)}",
                "type": "message",
                "role": "assistant",
                "model": reply.model or params["model"],
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": reply.stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": reply.input_tokens
                    if reply.input_tokens is not None
                    else count_words(prompt),
                    "output_tokens": reply.output_tokens
                    if reply.output_tokens is not None
                    else count_words(reply.text),
                },
            },
        )

    def _create_message(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        try:
            body = request.json()
        except ValueError:
            return self.error_response(400, "body: invalid JSON")
        problem = self._validate(body)
        if problem is not None:
            return self.error_response(400, problem)
        return self._reply_for(body)

    # /v1/messages/batches

    def _batch_object(self, batch: FakeBatch) -> dict[str, Any]:
        ended = batch.results is not None
        status = "ended" if ended else ("canceling" if batch.canceled else "in_progress")
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if ended:
            counts.update(batch.counts)
        else:
            counts["processing"] = len(batch.requests)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + timedelta(hours=24)),
            "ended_at": _iso(batch.ended_at),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.created_at) if batch.canceled else None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch.id}/results"
            if ended
            else None,
        }

    def _finish(self, batch: FakeBatch) -> None:
        results: list[dict[str, Any]] = []
        counts = {"succeeded": 0, "errored": 0, "canceled": 0}
        for item in batch.requests:
            custom_id, params = item["custom_id"], item["params"]
            if batch.canceled:
                result: dict[str, Any] = {"type": "canceled"}
            elif custom_id in self.batch_item_errors:
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": self.batch_item_errors[custom_id],
                        },
                    },
                }
            else:
                problem = self._validate(params)
                reply = (
                    self.error_response(400, problem)
                    if problem is not None
                    else self._reply_for(params)
                )
                if reply.status == 200:
                    result = {"type": "succeeded", "message": reply.body}
                else:
                    result = {"type": "errored", "error": reply.body}
            counts[result["type"]] += 1
            results.append({"custom_id": custom_id, "result": result})
        batch.results = results
        batch.counts = counts
        batch.ended_at = datetime.now(UTC)

    def _create_batch(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        body = request.json()
        items = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return self.error_response(400, "requests: at least one request is required")
        seen: set[str] = set()
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "custom_id" not in item or "params" not in item:
                return self.error_response(400, f"requests.{i}: custom_id and params required")
            if item["custom_id"] in seen:
                return self.error_response(400, f"requests.{i}.custom_id: duplicate")
            seen.add(item["custom_id"])
        batch = FakeBatch(
            id=f"msgbatch_fake_{next(self._ids)}",
            requests=items,
            created_at=datetime.now(UTC),
        )
        self.batches[batch.id] = batch
        if self.batch_polls_to_end <= 0:
            self._finish(batch)
        return FakeResponse(200, self._batch_object(batch))

    def _get_batch(self, batch_id: str) -> FakeBatch | FakeResponse:
        batch = self.batches.get(batch_id)
        if batch is None:
            return self.error_response(404, f"batch {batch_id} not found")
        return batch

    def _retrieve_batch(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        batch = self._get_batch(params["batch_id"])
        if isinstance(batch, FakeResponse):
            return batch
        batch.polls += 1
        if batch.results is None and batch.polls >= self.batch_polls_to_end:
            self._finish(batch)
        return FakeResponse(200, self._batch_object(batch))

    def _list_batches(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        data = [self._batch_object(b) for b in reversed(self.batches.values())]
        return FakeResponse(
            200,
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            },
        )

    def _cancel_batch(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        batch = self._get_batch(params["batch_id"])
        if isinstance(batch, FakeResponse):
            return batch
        if batch.results is None:
            batch.canceled = True
        return FakeResponse(200, self._batch_object(batch))

    def _batch_results(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        batch = self._get_batch(params["batch_id"])
        if isinstance(batch, FakeResponse):
            return batch
        if batch.results is None:
            return self.error_response(
                404, f"batch {batch.id} has not finished processing; no results yet"
            )
        lines = "".join(json.dumps(r) + "\n" for r in batch.results)
        return FakeResponse(200, lines.encode(), content_type="application/binary")
