"""The local server's limits: what one client may send, and how long it may take to send it.

Every limit answers with the spec's error object and leaves the server serving: a body over
:data:`MAX_BODY_BYTES` is refused (413) before it is read; a ``Content-Length`` that is not a
non-negative number is refused (400); headers must arrive within :data:`HEADER_TIMEOUT_S` and
the whole body within :data:`BODY_TIMEOUT_S` (408), so a slow or silent client cannot hold a
thread; at most :data:`MAX_CONNECTIONS` connections are served at once (more get 503 and are
closed at once). The prompt and ``max_tokens`` are checked against the model's context by
:func:`check_context`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from ftwizard.providers.local.openai_wire import WireError

MAX_BODY_BYTES = 1024 * 1024
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 64
# A model whose config states no context is served as if it had this many positions.
FALLBACK_CONTEXT_TOKENS = 2048


def error_bytes(error: WireError, headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.0 response carrying ``error``'s spec body, for a connection we then close."""
    from http import HTTPStatus

    data = json.dumps(error.body()).encode()
    try:
        reason = HTTPStatus(error.status).phrase
    except ValueError:
        reason = "Error"
    lines = [
        f"HTTP/1.0 {error.status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def content_length(raw: str | None) -> int:
    """The body's declared size, or a :class:`WireError`: missing, malformed or over the cap."""
    if raw is None:
        raise WireError(411, "a request body needs a Content-Length header", code="length_required")
    text = raw.strip()
    if not text.isdigit() or not text.isascii():
        raise WireError(400, f"Content-Length {raw[:40]!r} is not a non-negative whole number")
    if len(text) > 12 or int(text) > MAX_BODY_BYTES:
        raise WireError(
            413,
            f"the request body is over the server's limit of {MAX_BODY_BYTES:,} bytes",
            code="request_too_large",
        )
    return int(text)


def read_body(rfile: Any, connection: socket.socket, length: int) -> bytes:
    """Exactly ``length`` bytes of body within :data:`BODY_TIMEOUT_S` in all, or a 408/400."""
    deadline = time.monotonic() + BODY_TIMEOUT_S
    parts: list[bytes] = []
    left = length
    while left > 0:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _slow_body()
        connection.settimeout(remaining)
        try:
            chunk = rfile.read1(min(left, 65536))
        except TimeoutError:
            raise _slow_body() from None
        if not chunk:
            raise WireError(400, f"the body ended after {length - left} of {length} bytes")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _slow_body() -> WireError:
    return WireError(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s")


def context_tokens(loaded: Any) -> int:
    """How many positions (prompt and answer together) the loaded model can attend to."""
    config = getattr(getattr(loaded, "model", None), "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(getattr(loaded, "tokenizer", None), "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10**7:  # tokenizers say 1e30 for "unknown"
        return value
    return FALLBACK_CONTEXT_TOKENS


def check_context(loaded: Any, prompt: str, max_tokens: int | None, default: int) -> int:
    """The answer's token budget, or a 400 when the prompt or ``max_tokens`` cannot fit."""
    context = context_tokens(loaded)
    prompt_tokens = _count_tokens(loaded.tokenizer, prompt)
    if prompt_tokens >= context:
        raise WireError(
            400,
            f"This model's maximum context length is {context} tokens; the messages hold "
            f"{prompt_tokens}. Shorten the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    room = context - prompt_tokens
    if max_tokens is not None and max_tokens > room:
        raise WireError(
            400,
            f"max_tokens is too large: {max_tokens}. This model's maximum context length is "
            f"{context} tokens and the messages hold {prompt_tokens}, so at most {room} "
            "completion tokens fit.",
            param="max_tokens",
            code="context_length_exceeded",
        )
    return max_tokens if max_tokens is not None else min(default, room)


def _count_tokens(tokenizer: Any, text: str) -> int:
    # The batcher's thread pads with the same fast tokenizer, and a Rust tokenizer being
    # reconfigured answers another thread with "Already borrowed": try again a few times.
    for _ in range(20):
        try:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])
        except RuntimeError:
            time.sleep(0.005)
    return len(text.encode())  # a token is at least one byte: never an undercount


class LimitedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most :data:`MAX_CONNECTIONS` connections at once."""

    # The default backlog of 5 drops connections when many clients call at once.
    request_queue_size = 128
    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            busy = WireError(
                503,
                f"the server is serving its limit of {self.max_connections} connections; "
                "retry shortly",
                type="server_error",
                code="server_busy",
            )
            try:
                request.settimeout(1.0)
                request.sendall(error_bytes(busy, {"Retry-After": "1"}))
                request.shutdown(socket.SHUT_WR)
                # Closing with unread bytes resets the connection and can lose the answer:
                # take what already arrived (without waiting) first.
                request.setblocking(False)
                while request.recv(65536):
                    pass
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


__all__ = [
    "BODY_TIMEOUT_S",
    "HEADER_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "MAX_CONNECTIONS",
    "LimitedServer",
    "check_context",
    "content_length",
    "context_tokens",
    "error_bytes",
    "read_body",
]
