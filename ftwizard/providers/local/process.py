"""Processes the local backend starts: whether a recorded pid still runs, how many GPUs show.

Training workers and model servers run detached and are found again from a pid in a JSON file,
so telling a live process from a reused pid matters. Imports neither torch nor transformers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# Workers this process started: kept so they are reaped (a dead child stays a zombie, which
# looks alive to kill(pid, 0), until its parent waits for it).
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def proc_start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` (clock ticks since boot), or ``None``."""
    # Field 22 of /proc/<pid>/stat is the start time; the command name (field 2) may hold
    # spaces, so count from the closing parenthesis.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else None


def proc_is_zombie(pid: int) -> bool:
    """Whether ``pid`` exited but was not waited for yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether process ``pid`` runs and, when ``start_ticks`` is known, is the same process."""
    child = CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if proc_is_zombie(pid):
        return False
    if start_ticks is not None:
        now = proc_start_ticks(pid)
        if now is not None and now != start_ticks:
            return False
    return True


def visible_gpu_count() -> int:
    """GPUs this process could use, without importing torch (CUDA_VISIBLE_DEVICES, nvidia-smi)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip()]
        return 0 if not ids or ids[0].strip() == "-1" else len(ids)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


__all__ = ["CHILDREN", "pid_alive", "proc_is_zombie", "proc_start_ticks", "visible_gpu_count"]
