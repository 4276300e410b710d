"""The HTTP side of the local server: OpenAI's chat-completions routes over a :class:`Batcher`.

``POST /v1/chat/completions`` (JSON or SSE stream, ``n``, ``stop``, ``seed``,
``max_completion_tokens``, ``logprobs`` / ``top_logprobs``), ``GET /v1/models`` and
``/v1/models/{id}`` under the deployment's public name, ``GET /health``. Errors are the spec's
error object, for malformed HTTP too; a full queue answers 503 with ``Retry-After``. Each
connection gets a thread (at most :data:`~http_limits.MAX_CONNECTIONS`); generation itself is
batched on one thread. What one client may send is bounded by :mod:`http_limits`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.local.batcher import (
    Batcher,
    Delta,
    Done,
    Event,
    Failed,
    Finish,
    GenerationJob,
    QueueFull,
)
from ftwizard.providers.local.chat import DEFAULT_MAX_NEW_TOKENS
from ftwizard.providers.local.http_limits import (
    HEADER_TIMEOUT_S,
    LimitedServer,
    check_context,
    content_length,
    error_bytes,
    read_body,
)
from ftwizard.providers.local.logprobs import TokenLogprob
from ftwizard.providers.local.openai_wire import (
    ChatCompletionBody,
    WireError,
    completion_response,
    model_object,
    parse_request,
    stream_chunk,
    usage,
)
from ftwizard.providers.local.vision import image_messages

# How long a request waits for its next token before it is answered with an error.
GENERATION_TIMEOUT_S = 600.0


class OpenAIServer(LimitedServer):
    """A threading HTTP server with a backlog for many clients and a bound on connections."""


def make_handler(name: str, batcher: Batcher, created: int) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving ``batcher``'s model as ``name``."""

    class Handler(BaseHTTPRequestHandler):
        """OpenAI chat completions over one local model, published as ``name``."""

        # The timer set in setup() bounds the request line and headers in all (a client sending
        # a byte at a time cannot hold a thread) and answers 408; each read waits a little
        # longer than that, so the timer, not a silent read timeout, ends a slow client.
        timeout = HEADER_TIMEOUT_S + 2.0

        def setup(self) -> None:
            super().setup()
            self._headers_done = threading.Event()
            self._watch = threading.Timer(HEADER_TIMEOUT_S, self._headers_late)
            self._watch.daemon = True
            self._watch.start()

        def _headers_late(self) -> None:
            if self._headers_done.is_set():
                return
            late = WireError(
                408, f"the request headers did not arrive within {HEADER_TIMEOUT_S:g} s"
            )
            with contextlib.suppress(OSError):
                self.connection.settimeout(1.0)
                self.connection.sendall(error_bytes(late))
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def parse_request(self) -> bool:
            parsed = super().parse_request()  # reads the headers too
            self._headers_done.set()
            self._watch.cancel()
            return parsed

        def finish(self) -> None:
            self._headers_done.set()
            self._watch.cancel()
            super().finish()

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            # http.server's own refusals (a 100 KB URL, too many headers, a garbled request
            # line) answer with the spec's JSON error object, not an HTML page.
            self.close_connection = True
            # A garbled request line reads as HTTP/0.9, which has no headers: answer in 1.0.
            self.request_version = "HTTP/1.0"
            error = WireError(code, message or explain or "malformed request")
            with contextlib.suppress(OSError):
                self._send(code, error.body(), {"Connection": "close"})

        def log_message(self, format: str, *args: Any) -> None:
            # One short line per request in server.log, not the default stderr chatter; what
            # a client sent is cut short and escaped, so it cannot flood or forge log lines.
            command = (getattr(self, "command", None) or "-")[:16]
            path = (getattr(self, "path", None) or "-")[:200]
            status = args[1] if len(args) > 1 else ""
            sys.stdout.write(f"{command!s} {path.encode('unicode_escape').decode()} {status}\n")

        def _send(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: WireError, headers: dict[str, str] | None = None) -> None:
            self._send(error.status, error.body(), headers)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/health":
                self._send(200, {"status": "ok"})
            elif path == "/v1/models":
                self._send(200, {"object": "list", "data": [model_object(name, created)]})
            elif path == f"/v1/models/{name}":
                self._send(200, model_object(name, created))
            elif path.startswith("/v1/models/"):
                self._error(_unknown_model(path.removeprefix("/v1/models/")))
            else:
                self._error(WireError(404, f"no route {self.path}", code="not_found"))

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0].rstrip("/") != "/v1/chat/completions":
                self._error(WireError(404, f"no route {self.path}", code="not_found"))
                return
            try:
                length = content_length(self.headers.get("Content-Length"))
                body = parse_request(read_body(self.rfile, self.connection, length))
                if body.model != name:
                    raise _unknown_model(body.model)
                job = batcher.submit(_job(body, batcher))
            except WireError as exc:
                self.close_connection = True
                self._error(exc, {"Connection": "close"})
                return
            except QueueFull:
                self._error(
                    WireError(
                        503,
                        "the server is busy; retry shortly",
                        type="server_error",
                        code="server_busy",
                    ),
                    {"Retry-After": "1"},
                )
                return
            completion_id = f"chatcmpl-{uuid.uuid4().hex}"
            now = int(time.time())
            if body.stream:
                self._stream(job, body, completion_id, now)
            else:
                self._complete(job, body, completion_id, now)

        def _complete(
            self, job: GenerationJob, body: ChatCompletionBody, completion_id: str, now: int
        ) -> None:
            texts = [""] * job.n
            reasons = ["length"] * job.n
            entries: list[list[TokenLogprob]] = [[] for _ in range(job.n)]
            completion_tokens = 0
            for event in _events(job):
                if isinstance(event, Delta):
                    texts[event.index] += event.text
                    entries[event.index].extend(event.logprobs)
                elif isinstance(event, Finish):
                    reasons[event.index] = event.reason
                    completion_tokens += event.completion_tokens
                    entries[event.index].extend(event.logprobs)
                elif isinstance(event, Failed):
                    self._error(WireError(500, event.message, type="server_error"))
                    return
                else:
                    self._send(
                        200,
                        completion_response(
                            completion_id=completion_id,
                            created=now,
                            model=name,
                            choices=[(t.strip(), r) for t, r in zip(texts, reasons, strict=True)],
                            prompt_tokens=event.prompt_tokens,
                            completion_tokens=completion_tokens,
                            logprobs=entries if job.logprobs else None,
                        ),
                    )

        def _stream(
            self, job: GenerationJob, body: ChatCompletionBody, completion_id: str, now: int
        ) -> None:
            with_usage = body.include_usage()

            def chunk(**fields: Any) -> bytes:
                data = stream_chunk(
                    completion_id=completion_id,
                    created=now,
                    model=name,
                    with_usage_field=with_usage,
                    **fields,
                )
                return b"data: " + json.dumps(data).encode() + b"\n\n"

            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            completion_tokens = 0
            try:
                for i in range(job.n):
                    self.wfile.write(chunk(index=i, delta={"role": "assistant", "content": ""}))
                self.wfile.flush()
                for event in _events(job):
                    if isinstance(event, Delta):
                        self.wfile.write(
                            chunk(
                                index=event.index,
                                delta={"content": event.text},
                                logprobs=event.logprobs if job.logprobs else None,
                            )
                        )
                    elif isinstance(event, Finish):
                        completion_tokens += event.completion_tokens
                        # Tokens whose text never showed (a stop string) end with the stream.
                        leftover = event.logprobs if job.logprobs and event.logprobs else None
                        self.wfile.write(
                            chunk(index=event.index, finish_reason=event.reason, logprobs=leftover)
                        )
                    elif isinstance(event, Failed):
                        error = WireError(500, event.message, type="server_error")
                        self.wfile.write(b"data: " + json.dumps(error.body()).encode() + b"\n\n")
                        break
                    else:
                        if with_usage:
                            self.wfile.write(
                                chunk(
                                    index=None,
                                    usage_body=usage(event.prompt_tokens, completion_tokens),
                                )
                            )
                        self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                job.cancelled.set()  # the client left: free its rows in the batch
            self.close_connection = True

    return Handler


def _unknown_model(model: str) -> WireError:
    return WireError(
        404,
        f"The model '{model}' does not exist",
        param="model",
        code="model_not_found",
    )


def _job(body: ChatCompletionBody, batcher: Batcher) -> GenerationJob:
    from ftwizard.providers.local.chat_format import render_prompt

    messages = [
        {"role": m.role, "content": m.text(), "images": m.image_urls()} for m in body.messages
    ]
    images = _images(messages, batcher)
    try:
        messages, _ = image_messages(messages)
        prompt = render_prompt(batcher.loaded.tokenizer, messages)
    except InputError as exc:
        raise WireError(400, str(exc), param="messages") from None
    except Exception as exc:  # the model's template refused the conversation
        raise WireError(
            400, f"the chat template refused the messages: {exc}", param="messages"
        ) from None
    asked = body.max_completion_tokens or body.max_tokens
    return GenerationJob(
        prompt=prompt,
        images=images,
        n=body.n,
        max_tokens=check_context(batcher.loaded, prompt, asked, DEFAULT_MAX_NEW_TOKENS),
        temperature=body.temperature or 0.0,
        top_p=body.top_p or 1.0,
        seed=body.seed,
        stop=body.stop_list(),
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs or 0,
    )


def _images(messages: list[dict[str, Any]], batcher: Batcher) -> list[Any]:
    """The request's images decoded (in the handler's thread), or a 400 saying why not."""
    from ftwizard.providers.local.vision import load_images
    from ftwizard.providers.media import reference_kind

    refs = [ref for m in messages for ref in m["images"]]
    if not refs:
        return []
    if batcher.loaded.processor is None:
        raise WireError(
            400,
            "this model does not take images (it has no vision tower); send text only",
            param="messages",
            code="image_not_supported",
        )
    for ref in refs:
        if reference_kind(ref) in ("https", "http", "gs"):
            raise WireError(
                400,
                "the local server runs offline and does not fetch image URLs; send the image "
                "as a data URI (data:image/png;base64,...) or a local file path",
                param="messages",
                code="image_url_not_fetched",
            )
    try:
        return load_images(refs)
    except InputError as exc:
        raise WireError(400, str(exc), param="messages", code="invalid_image") from None


def _events(job: GenerationJob) -> Iterator[Event]:
    """The job's events until its :class:`Done` (or a failure)."""
    while True:
        try:
            event = job.events.get(timeout=GENERATION_TIMEOUT_S)
        except queue.Empty:
            yield Failed(f"no token within {GENERATION_TIMEOUT_S:.0f} s")
            return
        yield event
        if isinstance(event, Done | Failed):
            return


__all__ = ["GENERATION_TIMEOUT_S", "OpenAIServer", "make_handler"]
