"""The OpenAI Batch API for the fake server: ``/v1/batches`` and ``/v1/files/{id}/content``.

A mixin of :class:`~tests.fakes.openai_server.FakeOpenAIServer`; its ``_register_batches``
group adds the routes. Input and output files live with the other files in ``server.tuning``
(uploaded through the existing ``POST /v1/files``, purpose ``batch``).

Batch items are answered exactly as ``POST /v1/chat/completions`` answers (the same
validation, queued replies and ``reply_fn``), so a test scripts a batch as it scripts single
calls; ``server.openai_batch_item_errors[custom_id] = "message"`` makes one item fail with a
400 in the error file. A batch is ``validating`` when created, ``in_progress`` on the next
retrievals, and ``completed`` on the ``server.openai_batch_polls_to_end``-th retrieval (``0``:
completed at once). A cancel makes it ``cancelling``, then ``cancelled`` on the next retrieval,
with nothing run: its unrun requests are in the error file as ``batch_cancelled``. An input
file with a bad line makes the batch ``failed`` with the line in ``errors``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes.http_server import FakeResponse, RecordedRequest
from tests.fakes.openai_files import SimFile

if TYPE_CHECKING:
    from tests.fakes.openai_tuning import FineTuningSim

ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
MAX_REQUESTS = 50_000


@dataclass
class FakeOpenAIBatch:
    """Server-side state of one batch."""

    id: str
    input_file_id: str
    endpoint: str
    lines: list[dict[str, Any]]
    created_at: int
    status: str = "validating"
    polls: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=dict)


class OpenAIBatchRoutes:
    """The Batch API group of the fake OpenAI server (mixed into ``FakeOpenAIServer``)."""

    if TYPE_CHECKING:
        # Provided by FakeOpenAIServer and FakeHTTPServer, which this class is mixed into.
        tuning: FineTuningSim

        def route(self, method: str, pattern: str, handler: Any) -> None: ...

        def error_response(
            self, status: int, message: str, *, error_type: str | None = None
        ) -> FakeResponse: ...

        def _chat_completion(
            self, request: RecordedRequest, params: dict[str, str]
        ) -> FakeResponse: ...

    def _register_batches(self) -> None:
        """Add the batch routes and their state (called from the server's ``__init__``)."""
        self.openai_batch_polls_to_end = 1
        self.openai_batch_item_errors: dict[str, str] = {}
        self.openai_batches: dict[str, FakeOpenAIBatch] = {}
        self._batch_lock = threading.RLock()
        self._batch_ids = itertools.count(1)
        self.route("POST", "/v1/batches", self._create_openai_batch)
        self.route("GET", "/v1/batches", self._list_openai_batches)
        self.route("GET", "/v1/batches/(?P<batch_id>[^/]+)", self._retrieve_openai_batch)
        self.route("POST", "/v1/batches/(?P<batch_id>[^/]+)/cancel", self._cancel_openai_batch)
        self.route("GET", "/v1/files/(?P<file_id>[^/]+)/content", self._file_content)

    # -- objects -----------------------------------------------------------------------------

    def _openai_batch_object(self, batch: FakeOpenAIBatch) -> dict[str, Any]:
        stamp = batch.stamps.get
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.created_at,
            "in_progress_at": stamp("in_progress"),
            "expires_at": batch.created_at + 24 * 3600,
            "finalizing_at": stamp("finalizing"),
            "completed_at": stamp("completed"),
            "failed_at": stamp("failed"),
            "expired_at": None,
            "cancelling_at": stamp("cancelling"),
            "cancelled_at": stamp("cancelled"),
            "request_counts": {
                "total": len(batch.lines),
                "completed": batch.counts.get("completed", 0),
                "failed": batch.counts.get("failed", 0),
            },
            "metadata": None,
        }

    def _invalid_batch(self, message: str, param: str | None = None) -> FakeResponse:
        reply = self.error_response(400, message)
        reply.body["error"]["param"] = param
        return reply

    def _store_batch_file(self, name: str, purpose: str, lines: list[dict[str, Any]]) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        sim = self.tuning
        with sim._lock:
            stored = SimFile(sim._next("file"), name, purpose, data, sim.clock)
            sim.files[stored.id] = stored
        return stored.id

    # -- running a batch ---------------------------------------------------------------------

    def _batch_answer(self, line: dict[str, Any]) -> dict[str, Any]:
        custom_id = line["custom_id"]
        if custom_id in self.openai_batch_item_errors:
            reply = self.error_response(400, self.openai_batch_item_errors[custom_id])
        else:
            # The very handler of /v1/chat/completions, so batch items follow the same script;
            # not recorded as a request: nobody called the endpoint.
            request = RecordedRequest(
                method="POST",
                path=line["url"],
                query={},
                headers={},
                body=json.dumps(line["body"]).encode(),
            )
            reply = self._chat_completion(request, {})
        return {
            "id": f"batch_req_{next(self._batch_ids)}",
            "custom_id": custom_id,
            "response": {
                "status_code": reply.status,
                "request_id": f"req_{next(self._batch_ids)}",
                "body": reply.body,
            },
            "error": None,
        }

    def _complete_batch(self, batch: FakeOpenAIBatch, now: int) -> None:
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for line in batch.lines:
            result = self._batch_answer(line)
            (done if result["response"]["status_code"] == 200 else failed).append(result)
        batch.output_file_id = self._store_batch_file("batch_output.jsonl", "batch_output", done)
        batch.error_file_id = self._store_batch_file("batch_errors.jsonl", "batch_output", failed)
        batch.counts = {"completed": len(done), "failed": len(failed)}
        batch.stamps.update(finalizing=now, completed=now)
        batch.status = "completed"

    def _cancel_unrun(self, batch: FakeOpenAIBatch, now: int) -> None:
        unrun = [
            {
                "id": f"batch_req_{next(self._batch_ids)}",
                "custom_id": line["custom_id"],
                "response": None,
                "error": {"code": "batch_cancelled", "message": "This request was cancelled."},
            }
            for line in batch.lines
        ]
        batch.error_file_id = self._store_batch_file("batch_errors.jsonl", "batch_output", unrun)
        batch.stamps["cancelled"] = now
        batch.status = "cancelled"

    # -- handlers ----------------------------------------------------------------------------

    def _parse_batch_input(
        self, data: bytes, endpoint: str
    ) -> tuple[list[dict[str, Any]], list[Any]]:
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                line = None
            problem = None
            if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
                problem = "the line is not a JSON object with a 'body' object"
            elif not isinstance(line.get("custom_id"), str) or line["custom_id"] in seen:
                problem = "custom_id must be a string unique within the file"
            elif line.get("method") != "POST" or line.get("url") != endpoint:
                problem = f"method must be POST and url must be {endpoint}"
            elif lines and line["body"].get("model") != lines[0]["body"].get("model"):
                problem = "every request in a batch must use the same model"
            if problem is not None:
                return [], [{"code": "invalid_request", "message": problem, "line": number}]
            assert isinstance(line, dict)
            seen.add(line["custom_id"])
            lines.append(line)
        if not lines:
            return [], [{"code": "empty_file", "message": "The input file is empty.", "line": None}]
        if len(lines) > MAX_REQUESTS:
            message = f"A batch may hold at most {MAX_REQUESTS} requests."
            return [], [{"code": "too_many_requests", "message": message, "line": None}]
        return lines, []

    def _create_openai_batch(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        body = request.json()
        if not isinstance(body, dict):
            return self._invalid_batch("The request body must be a JSON object.")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            return self._invalid_batch(f"Invalid endpoint: {endpoint!r}.", "endpoint")
        if body.get("completion_window") != "24h":
            return self._invalid_batch("completion_window must be '24h'.", "completion_window")
        file_id = body.get("input_file_id")
        with self.tuning._lock:
            stored = self.tuning.files.get(str(file_id))
        if stored is None:
            return self.error_response(404, f"No such file: {file_id}")
        if stored.purpose != "batch":
            message = f"File {file_id} has purpose {stored.purpose!r}; a batch needs 'batch'."
            return self._invalid_batch(message, "input_file_id")
        lines, errors = self._parse_batch_input(stored.data, str(endpoint))
        now = int(time.time())
        with self._batch_lock:
            batch = FakeOpenAIBatch(
                id=f"batch_fake{next(self._batch_ids)}",
                input_file_id=stored.id,
                endpoint=str(endpoint),
                lines=lines,
                created_at=now,
                errors=errors,
            )
            if errors:
                batch.status = "failed"
                batch.stamps["failed"] = now
            elif self.openai_batch_polls_to_end <= 0:
                self._complete_batch(batch, now)
            self.openai_batches[batch.id] = batch
            return FakeResponse(200, self._openai_batch_object(batch))

    def _find_batch(self, batch_id: str) -> FakeOpenAIBatch | FakeResponse:
        batch = self.openai_batches.get(batch_id)
        if batch is None:
            return self.error_response(404, f"No batch found with id '{batch_id}'.")
        return batch

    def _retrieve_openai_batch(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> FakeResponse:
        with self._batch_lock:
            batch = self._find_batch(params["batch_id"])
            if isinstance(batch, FakeResponse):
                return batch
            batch.polls += 1
            now = int(time.time())
            if batch.status == "cancelling":
                self._cancel_unrun(batch, now)
            elif batch.status in ("validating", "in_progress"):
                if batch.polls >= self.openai_batch_polls_to_end:
                    self._complete_batch(batch, now)
                else:
                    batch.status = "in_progress"
                    batch.stamps.setdefault("in_progress", now)
            return FakeResponse(200, self._openai_batch_object(batch))

    def _list_openai_batches(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        with self._batch_lock:
            data = [self._openai_batch_object(b) for b in reversed(self.openai_batches.values())]
        return FakeResponse(
            200,
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": False,
            },
        )

    def _cancel_openai_batch(
        self, request: RecordedRequest, params: dict[str, str]
    ) -> FakeResponse:
        with self._batch_lock:
            batch = self._find_batch(params["batch_id"])
            if isinstance(batch, FakeResponse):
                return batch
            if batch.status in ("validating", "in_progress", "finalizing"):
                batch.status = "cancelling"
                batch.stamps["cancelling"] = int(time.time())
            elif batch.status != "cancelling":
                return self._invalid_batch(
                    f"Cannot cancel a batch with status '{batch.status}'.", "batch_id"
                )
            return FakeResponse(200, self._openai_batch_object(batch))

    def _file_content(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self.tuning._lock:
            stored = self.tuning.files.get(params["file_id"])
        if stored is None:
            return self.error_response(404, f"No such file: {params['file_id']}")
        return FakeResponse(200, stored.data, content_type="application/octet-stream")
