"""Serving a local model on an OpenAI-compatible endpoint on 127.0.0.1 (the local deployment).

``python -m ftwizard.providers.local.serve --model MODEL --name NAME --port PORT`` loads MODEL
and answers OpenAI's chat-completions routes under the public model id NAME (see
:mod:`ftwizard.providers.local.serve_http`), batched by
:class:`~ftwizard.providers.local.batcher.Batcher`, so any OpenAI client (and ftwizard's own
``openai_compatible`` provider) can call the tuned model. MODEL is anything the
local provider takes: ``builtin-tiny``, a model folder, a merged export or an adapter folder.

:class:`LocalServer` starts it detached (like the training worker), records pid, port and model
in ``server.json`` in its folder, re-attaches from that file, and stops it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.local.process import pid_alive

SERVER_FILE = "server.json"
SERVER_LOG = "server.log"


class ServerRecord(BaseModel):
    """What ``server.json`` holds about a running server."""

    pid: int
    host: str
    port: int
    model: str
    name: str = ""
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
        name: str,
        host: str = "127.0.0.1",
        port: int | None = None,
        timeout_s: float = 120.0,
        env: dict[str, str] | None = None,
    ) -> LocalServer:
        """Start serving ``model`` detached as ``name`` (the model id clients send) and wait
        until it answers ``/health``. ``host`` stays 127.0.0.1 unless the caller asks for more."""
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
            "--name",
            name,
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
            pid=proc.pid, host=host, port=port, model=model, name=name, started_at=time.time()
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


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until SIGTERM."""
    parser = argparse.ArgumentParser(description="Serve a local model (OpenAI-compatible).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True, help="the public model name clients send")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-queue", type=int, default=64)
    args = parser.parse_args(argv)

    # Load before listening, so /health means "ready to answer".
    from ftwizard.providers.local.batcher import Batcher
    from ftwizard.providers.local.chat import LocalChatProvider
    from ftwizard.providers.local.serve_http import OpenAIServer, make_handler

    loaded = LocalChatProvider(device=args.device).load(args.model)
    batcher = Batcher(loaded, batch_size=args.batch_size, max_queue=args.max_queue)
    httpd = OpenAIServer((args.host, args.port), make_handler(args.name, batcher, int(time.time())))

    def shut_down(signum: int, frame: Any) -> None:
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    print(f"serving {args.model} as {args.name} on http://{args.host}:{args.port}/v1", flush=True)
    httpd.serve_forever()
    httpd.server_close()
    return 0


__all__ = ["LocalServer", "ServerRecord", "free_port"]


if __name__ == "__main__":
    raise SystemExit(main())
