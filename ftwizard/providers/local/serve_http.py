"""The HTTP side of the local server: OpenAI's chat-completions routes over a :class:`Batcher`.

``POST /v1/chat/completions`` (JSON or SSE stream, ``n``, ``stop``, ``seed``,
``max_completion_tokens``, ``logprobs`` / ``top_logprobs``), ``GET /v1/models`` and
``/v1/models/{id}`` under the deployment's public name, ``GET /health``. Errors are the spec's
error object; a full queue answers 503 with ``Retry-After``. Each connection gets a thread;
generation itself is batched on one thread.
"""

from __future__ import annotations

import json
import queue
import sys
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class OpenAIServer(ThreadingHTTPServer):
    """A threading HTTP server with a backlog for many simultaneous clients."""

    # The default backlog of 5 drops connections when many clients call at once.
    request_queue_size = 128
    daemon_threads = True


def make_handler(name: str, batcher: Batcher, created: int) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving ``batcher``'s model as ``name``."""

    class Handler(BaseHTTPRequestHandler):
        """OpenAI chat completions over one local model, published as ``name``."""

        def log_message(self, format: str, *args: Any) -> None:
            # One short line per request in server.log, not the default stderr chatter.
            sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

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
                length = int(self.headers.get("Content-Length", "0"))
                body = parse_request(self.rfile.read(length))
                if body.model != name:
                    raise _unknown_model(body.model)
                job = batcher.submit(_job(body, batcher))
            except WireError as exc:
                self._error(exc)
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
    return GenerationJob(
        prompt=prompt,
        images=images,
        n=body.n,
        max_tokens=body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_NEW_TOKENS,
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
