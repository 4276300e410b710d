"""One hostile client cannot kill the local server, hold its threads or make it run away.

Each hostile request below gets a spec-shaped error (or is cut off on time), and after each one
a normal request with the openai SDK still succeeds.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ftwizard.providers.local import http_limits, serve_http
from ftwizard.providers.local.batcher import Batcher
from tests.local.openapi_spec import assert_matches_spec
from tests.local.test_serve import MESSAGES, NAME, Served, loaded

__all__ = ["loaded"]


@pytest.fixture(scope="module")
def served(loaded: Any) -> Iterator[Served]:
    with pytest.MonkeyPatch.context() as mp:
        # Short waits so the slow-client cases take a second, not the real limits.
        mp.setattr(serve_http, "HEADER_TIMEOUT_S", 1.0)
        mp.setattr(http_limits, "BODY_TIMEOUT_S", 1.0)
        mp.setattr(http_limits.LimitedServer, "max_connections", 8)
        server = Served(Batcher(loaded, batch_size=16, max_queue=64))
        yield server
        server.close()


def _still_serving(served: Served) -> None:
    reply = served.client().chat.completions.create(
        model=NAME, messages=MESSAGES, max_completion_tokens=2
    )
    assert reply.choices[0].finish_reason in ("stop", "length")


def _raw(served: Served, data: bytes, *, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """Send ``data`` as it is; the status and JSON body of the answer."""
    port = served.httpd.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body)


def _post(body: bytes, length: str | None = None) -> bytes:
    size = str(len(body)) if length is None else length
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {size}\r\n\r\n".encode()
        + body
    )


def _chat(**fields: Any) -> bytes:
    return json.dumps({"model": NAME, "messages": MESSAGES, **fields}).encode()


@pytest.mark.parametrize(
    ("request_bytes", "status", "param"),
    [
        (_chat(max_tokens=True), 400, "max_tokens"),
        (_chat(max_completion_tokens=False), 400, "max_completion_tokens"),
        (_chat(max_tokens=10**12), 400, "max_tokens"),
        (_chat(n=True), 400, "n"),
        (_chat(stream="yes"), 400, "stream"),
        (_chat(seed=2**80), 400, "seed"),
        (_chat(seed=-(2**70)), 400, "seed"),
        (_chat(temperature="hot"), 400, "temperature"),
        (b'{"model": "' + NAME.encode() + b'", "messages": [{"role": "user", "content": '
         b'"a\\ud800b"}]}', 400, "messages[0].content"),
        (b'{"model": "x", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, None),
        (b"[" * 100_000 + b"]" * 100_000, 400, None),
        (b'{"a": ' * 50_000 + b"1" + b"}" * 50_000, 400, None),
        (b"not json", 400, None),
        (b"", 400, "model"),
    ],
)  # fmt: skip
def test_malformed_bodies_get_a_spec_400_and_the_server_keeps_serving(
    served: Served, request_bytes: bytes, status: int, param: str | None
) -> None:
    code, body = _raw(served, _post(request_bytes))
    assert code == status
    assert_matches_spec("ErrorResponse", body)
    if param is not None:
        assert body["error"]["param"] == param
    _still_serving(served)


@pytest.mark.parametrize(
    ("length", "body", "status"),
    [
        ("abc", b"{}", 400),
        ("-1", b"{}", 400),
        ("1e3", b"{}", 400),
        ("10" + "0" * 18, b"{}", 413),
        (str(http_limits.MAX_BODY_BYTES + 1), b"{}", 413),
        ("100", b"{}", 408),  # shorter than declared, connection left open: cut off on time
    ],
)
def test_bad_content_lengths_are_refused_without_reading_or_waiting_forever(
    served: Served, length: str, body: bytes, status: int
) -> None:
    started = time.monotonic()
    code, answer = _raw(served, _post(body, length))
    assert code == status
    assert_matches_spec("ErrorResponse", answer)
    assert time.monotonic() - started < 5
    _still_serving(served)


def test_a_large_body_is_refused_413_before_it_is_read(served: Served) -> None:
    big = _chat(messages=[{"role": "user", "content": "x" * (3 * http_limits.MAX_BODY_BYTES)}])
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        reply = http.post("/chat/completions", content=big)
    assert reply.status_code == 413
    assert "1,048,576 bytes" in reply.json()["error"]["message"]
    _still_serving(served)


def test_a_prompt_over_the_context_is_a_400_naming_it(served: Served) -> None:
    long_prompt = [{"role": "user", "content": "bird " * 5000}]  # under the byte cap
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        reply = http.post("/chat/completions", json={"model": NAME, "messages": long_prompt})
        assert reply.status_code == 400
        error = reply.json()["error"]
        assert error["code"] == "context_length_exceeded" and error["param"] == "messages"
        context = http_limits.context_tokens(served.batcher.loaded)
        assert f"{context} tokens" in error["message"]
        # a max_tokens that fits beside the prompt is accepted; one past the context is not
        fits = http.post("/chat/completions", content=_chat(max_tokens=2))
        assert fits.status_code == 200
        over = http.post("/chat/completions", content=_chat(max_tokens=context))
        assert over.status_code == 400 and over.json()["error"]["param"] == "max_tokens"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"BREW /v1/models HTTP/1.1\r\n\r\n",
    ],
)
def test_malformed_http_gets_a_json_error_not_silence(served: Served, request_bytes: bytes) -> None:
    code, body = _raw(served, request_bytes)
    assert 400 <= code < 600
    assert_matches_spec("ErrorResponse", body)
    _still_serving(served)


def test_slow_clients_are_cut_off_and_connections_are_bounded(served: Served) -> None:
    port = served.httpd.server_address[1]
    # More half-sent requests than the server serves at once: the extra ones get 503 at once,
    # all are closed within the header timeout, and the server then answers as before.
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(12)]
    for sock in socks:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    statuses = []
    for sock in socks:
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        statuses.append(int(answer.split()[1]) if answer else 0)
        sock.close()
    assert time.monotonic() - started < 5
    assert statuses.count(503) >= 4 and set(statuses) <= {408, 503}, statuses
    _still_serving(served)
