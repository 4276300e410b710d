"""Start a serving engine's script (``serve-vllm.sh``) detached, and wait until it serves.

Used where ``vllm`` imports and a GPU is visible: the script ftwizard wrote runs in its own
process group (it outlives the app, like the local server), its output goes to a log beside
it, and readiness is the server answering ``/health`` and listing its models.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from ftwizard.providers.base import ProviderError
from ftwizard.providers.local.process import CHILDREN

READY_TIMEOUT_S = 1200.0
POLL_S = 2.0


def start_script(script: Path, *, env: dict[str, str] | None = None) -> int:
    """Run ``script`` detached with its output in ``<script>.log``; return its pid."""
    log = script.with_suffix(".log")
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["sh", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(script.parent),
            env=dict(os.environ if env is None else env),
            start_new_session=True,
        )
    CHILDREN[proc.pid] = proc
    return proc.pid


def wait_until_serving(url: str, pid: int, log: Path, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll the server at ``url`` until it answers; ``ProviderError`` if the process dies first."""
    from ftwizard.providers.openai.server_probe import probe_server

    deadline = time.monotonic() + timeout_s
    while True:
        proc = CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            tail = (
                "\n".join(log.read_text(errors="replace").splitlines()[-8:]) if log.exists() else ""
            )
            raise ProviderError(
                f"the server exited (code {proc.returncode}) before serving:\n{tail}",
                provider="local",
                hint=f"see {log}",
            )
        try:
            probe_server(url, timeout_s=5.0)
            return
        except ProviderError:
            if time.monotonic() > deadline:
                raise ProviderError(
                    f"the server did not answer within {timeout_s:.0f} s",
                    provider="local",
                    hint=f"see {log}",
                ) from None
        time.sleep(POLL_S)


__all__ = ["start_script", "wait_until_serving"]
