"""Serving a local model on an OpenAI-compatible endpoint on 127.0.0.1 (the local deployment).

``python -m ftwizard.providers.local.serve --model MODEL --port PORT`` answers
``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /health`` with the standard library's
HTTP server and :class:`~ftwizard.providers.local.chat.LocalChatProvider`, so any OpenAI client (and
ftwizard's own ``openai_compatible`` provider) can call the tuned model. MODEL is anything the
local provider takes: ``builtin-tiny``, a model folder, a merged export or an adapter folder.

:class:`LocalServer` starts it detached (like the training worker), records pid, port and model
in ``server.json`` in its folder, re-attaches from that file, and stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ftwizard.errors import FtwizardError, InputError
from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.local.job import pid_alive

SERVER_FILE = "server.json"
SERVER_LOG = "server.log"


class ServerRecord(BaseModel):
    """What ``server.json`` holds about a running server."""

    pid: int
    host: str
    port: int
    model: str
    started_at: float

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A served local model whose state lives in ``folder`` (``server.json``, ``server.log``)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.record_path = self.folder / SERVER_FILE
        self.log_path = self.folder / SERVER_LOG

    @classmethod
    def start(
        cls,
        model: str,
        folder: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout_s: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> LocalServer:
        """Start serving ``model`` detached and wait until it answers ``/health``."""
        server = cls(folder)
        if server.record() is not None and server.is_alive():
            raise InputError("a server already runs from this folder; stop it first", path=folder)
        server.folder.mkdir(parents=True, exist_ok=True)
        port = port or free_port(host)
        command = [
            sys.executable,
            "-m",
            "ftwizard.providers.local.serve",
            "--model",
            model,
            "--host",
            host,
            "--port",
            str(port),
        ]
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("HF_HUB_OFFLINE", "1")
        with server.log_path.open("ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env,
                start_new_session=True,
            )
        record = ServerRecord(
            pid=proc.pid, host=host, port=port, model=model, started_at=time.time()
        )
        server.record_path.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProviderError(
                    f"the model server exited at start-up:\n{server.log_tail()}",
                    provider="local",
                    model=model,
                )
            if server.healthy():
                return server
            time.sleep(0.2)
        server.stop()
        raise ProviderError(
            f"the model server did not answer within {timeout_s:.0f} s",
            provider="local",
            model=model,
        )

    def record(self) -> ServerRecord | None:
        """The recorded server, or ``None``."""
        try:
            return ServerRecord.model_validate_json(self.record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def is_alive(self) -> bool:
        """Whether the server process runs."""
        record = self.record()
        return record is not None and pid_alive(record.pid)

    def healthy(self) -> bool:
        """Whether the server answers ``/health``."""
        record = self.record()
        if record is None:
            return False
        try:
            with urllib.request.urlopen(f"http://{record.host}:{record.port}/health", timeout=2):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's output."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        record = self.record()
        if record is None or not pid_alive(record.pid):
            return
        for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(record.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not pid_alive(record.pid):
                    return
                time.sleep(0.1)


# -- the server process ----------------------------------------------------------------------


def _make_handler(model: str, provider: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """OpenAI chat completions over one local model."""

        def log_message(self, format: str, *args: Any) -> None:
            # One short line per request in server.log, not the default stderr chatter.
            sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self._error(404, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                request = GenerationRequest(
                    model=model,
                    messages=[ChatMessage(**m) for m in body.get("messages", [])],
                    max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                    temperature=body.get("temperature"),
                )
            except (ValueError, TypeError, ValidationError) as exc:
                self._error(400, f"bad request: {exc}")
                return
            if not request.messages:
                self._error(400, "messages must not be empty")
                return
            try:
                reply = provider.generate_sync([request])[0]
            except FtwizardError as exc:
                self._error(400, str(exc))
                return
            self._send(
                200,
                {
                    "id": f"chatcmpl-local-{time.time_ns()}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model") or model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.text},
                            "finish_reason": reply.finish_reason or "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": reply.input_tokens,
                        "completion_tokens": reply.output_tokens,
                        "total_tokens": reply.input_tokens + reply.output_tokens,
                    },
                },
            )

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until SIGTERM."""
    parser = argparse.ArgumentParser(description="Serve a local model (OpenAI-compatible).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)

    from ftwizard.providers.local.chat import LocalChatProvider

    provider = LocalChatProvider(device=args.device)
    # Load before listening, so /health means "ready to answer".
    provider.preload(args.model)
    httpd = ThreadingHTTPServer((args.host, args.port), _make_handler(args.model, provider))

    def shut_down(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    print(f"serving {args.model} on http://{args.host}:{args.port}/v1", flush=True)
    httpd.serve_forever()
    httpd.server_close()
    return 0


__all__ = ["LocalServer", "ServerRecord", "free_port"]


if __name__ == "__main__":
    raise SystemExit(main())
