"""A real HTTP server on 127.0.0.1 for provider fakes: routing, scripting, a request log.

Provider SDKs (openai >= 3, anthropic >= 1) use httpx2, which respx cannot intercept, so the
fakes are real servers the SDKs reach over loopback. Each provider fake subclasses
:class:`FakeHTTPServer`, registers routes for its wire format and decides how errors look.

Scripting, per test:

* ``server.fail_next(429, headers={"retry-after": "0.01"}, times=2)``: the next two requests
  (optionally only those to a path) get that error, in the provider's error format;
* ``server.drop_next()``: the next request's connection is closed without a reply;
* ``server.inject(FakeResponse(...))``: any canned response, queued;
* ``server.delay_s = 0.05``: every request waits before answering (to observe concurrency);
* ``server.requests``: every request received, in arrival order; ``server.max_in_flight``.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RecordedRequest:
    """One request as the server saw it. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")

    def bearer_token(self) -> str | None:
        """The token from ``Authorization: Bearer ...``, if any."""
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None


@dataclass
class FakeResponse:
    """What the server sends back. ``body``: dict/list as JSON, str/bytes as given."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None

    def encode(self) -> tuple[bytes, str]:
        """The body bytes and their content type."""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        if self.body is None:
            return b"", self.content_type or "application/json"
        return json.dumps(self.body).encode(), self.content_type or "application/json"


class DropConnection:
    """Scripted reply: close the socket without answering (a dropped connection)."""


DROP = DropConnection()

Scripted = FakeResponse | DropConnection
RouteHandler = Callable[[RecordedRequest, dict[str, str]], FakeResponse]


@dataclass
class _Injection:
    reply: Scripted
    path: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive handler threads may still be waiting on an idle client socket at shutdown;
    # joining them would hang the test session.
    block_on_close = False
    allow_reuse_address = True
    # Clients open many connections at once (concurrency 16+); the default backlog of 5 stalls
    # them for about a second and a half.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply (a cancelled run, a timeout test) is expected here;
        # anything else is still reported.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeHTTPServer:
    """Base for the provider fakes. Start with :meth:`start` or use as a context manager."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []
        self._lock = threading.Lock()
        self._injections: deque[_Injection] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    # Provider-specific behaviour (subclasses override)

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse:
        """An error reply as the real service would shape it."""
        return FakeResponse(status, {"error": {"message": message, "type": error_type}})

    def check_auth(self, request: RecordedRequest) -> FakeResponse | None:
        """``None`` if the request may proceed, else the 401 to send. Subclasses override."""
        return None

    # Routing

    def route(self, method: str, pattern: str, handler: RouteHandler) -> None:
        """Serve ``method`` requests whose path matches ``pattern`` (a regex with named groups,
        anchored at both ends) with ``handler(request, path_params)``."""
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    # Scripting

    def inject(self, *replies: Scripted, path: str | None = None) -> None:
        """Queue replies for the next requests (to ``path`` only, if given), in order."""
        with self._lock:
            self._injections.extend(_Injection(r, path) for r in replies)

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        message: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` in the provider's error format."""
        reply = self.error_response(status, message or f"injected failure {status}")
        reply.headers.update(headers or {})
        self.inject(*([reply] * times), path=path)

    def drop_next(self, *, times: int = 1, path: str | None = None) -> None:
        """Close the connection of the next ``times`` requests without replying."""
        self.inject(*([DROP] * times), path=path)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The logged requests to exactly ``path`` (and ``method``, if given)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    def _take_injection(self, path: str) -> Scripted | None:
        with self._lock:
            for i, injection in enumerate(self._injections):
                if injection.path is None or injection.path == path:
                    del self._injections[i]
                    return injection.reply
        return None

    # Lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash, no ``/v1``)."""
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHTTPServer:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Request handling

    @contextmanager
    def _counting(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def handle(self, request: RecordedRequest) -> Scripted:
        """Decide the reply to ``request``: injections first, then auth, then the route."""
        with self._lock:
            self.requests.append(request)
        with self._counting():
            if self.delay_s > 0:
                time.sleep(self.delay_s)
            injected = self._take_injection(request.path)
            if injected is not None:
                return injected
            denied = self.check_auth(request)
            if denied is not None:
                return denied
            path_known = False
            for method, pattern, handler in self._routes:
                match = pattern.match(request.path)
                if match is None:
                    continue
                path_known = True
                if method == request.method:
                    return handler(request, match.groupdict())
            if path_known:
                return self.error_response(405, f"method {request.method} not allowed")
            return self.error_response(
                404, f"no route for {request.method} {request.path}", error_type="not_found_error"
            )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Nagle's algorithm holds small replies back for ~40 ms each.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep pytest output clean; the request log is fake.requests

            def _read_body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("content-length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self._read_body(),
                )
                reply = fake.handle(request)
                if isinstance(reply, DropConnection):
                    self.close_connection = True
                    with suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body, content_type = reply.encode()
                self.send_response(reply.status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        return Handler
