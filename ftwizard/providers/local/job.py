"""A local training job seen from the app: start it detached, follow it, re-attach, cancel.

The run folder is the job's whole state, so any process can pick a job up again from it:

- ``config.json``: the :class:`LocalTrainingConfig` the worker runs;
- ``worker.json``: the worker's pid, process group and start time (to tell it from a new
  process that got the same pid after a reboot);
- ``events.jsonl``: the worker's event log (see :mod:`ftwizard.providers.local.events`);
- ``worker.log``: the worker's stdout and stderr, whose tail explains a crash;
- ``checkpoints/`` and ``adapter/``: what training produced.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.local.config import LocalTrainingConfig
from ftwizard.providers.local.events import TERMINAL_EVENTS, TrainingEvent, read_events
from ftwizard.providers.local.process import (
    CHILDREN,
    pid_alive,
    proc_start_ticks,
    visible_gpu_count,
)
from ftwizard.providers.local.worker import EVENTS_FILE

CONFIG_FILE = "config.json"
WORKER_FILE = "worker.json"
LOG_FILE = "worker.log"
LOG_TAIL_LINES = 30


class LocalJobState(StrEnum):
    """Where a local job stands."""

    starting = "starting"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    crashed = "crashed"


FINISHED_STATES = frozenset(
    {LocalJobState.succeeded, LocalJobState.failed, LocalJobState.cancelled, LocalJobState.crashed}
)


class WorkerRecord(BaseModel):
    """What ``worker.json`` holds about the worker process."""

    pid: int
    start_ticks: int | None = None
    command: list[str]
    started_at: float


class CheckpointInfo(BaseModel):
    """A saved checkpoint and the metrics at its step."""

    step: int
    path: str
    epoch: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class LocalJobStatus(BaseModel):
    """A snapshot of a job, rebuilt from the run folder alone."""

    state: LocalJobState
    pid: int | None = None
    alive: bool = False
    step: int | None = None
    epoch: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    checkpoints: list[CheckpointInfo] = Field(default_factory=list)
    adapter_dir: str | None = None
    message: str | None = None
    log_tail: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job will not change any more."""
        return self.state in FINISHED_STATES


def process_count(config: LocalTrainingConfig) -> int:
    """How many training processes the job runs (``processes``, else one per visible GPU)."""
    processes = config.hyperparameters.processes or config.num_processes
    if processes is None:
        processes = 1 if config.device == "cpu" else max(1, visible_gpu_count())
    return processes


def free_port() -> int:
    """A TCP port nobody listens on now, for the ranks' rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_command(config: LocalTrainingConfig, config_path: Path, python: str) -> list[str]:
    """The command line that runs the worker: plain, or ``accelerate launch`` for N processes.

    ``--multi_gpu`` also serves CPU ranks: the worker gives the trainer ``use_cpu=True``, so
    the ranks join one gloo process group (``--cpu --num_processes N`` would start one).
    """
    processes = process_count(config)
    module = ["-m", "ftwizard.providers.local.worker", str(config_path)]
    if processes <= 1:
        return [python, *module]
    return [
        python,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        # Its own port, so two jobs on one machine never join each other's group.
        "--main_process_port",
        str(free_port()),
        *module,
    ]


class LocalTrainingJob:
    """A training job in ``run_dir``: a fresh one from :meth:`start`, or an existing one."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.events_path = self.run_dir / EVENTS_FILE
        self.log_path = self.run_dir / LOG_FILE
        self.config_path = self.run_dir / CONFIG_FILE
        self.worker_path = self.run_dir / WORKER_FILE
        self._offset = 0

    @classmethod
    def start(
        cls,
        config: LocalTrainingConfig,
        *,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> LocalTrainingJob:
        """Write the config and start the worker detached (its own session); return the job.

        Refuses a run folder that already holds a job: re-attach to it with
        ``LocalTrainingJob(run_dir)`` instead of starting a second one.
        """
        config = _absolute_paths(config)
        job = cls(config.run_dir)
        if job.config_path.exists():
            raise InputError(
                "this run folder already holds a training job; re-attach to it instead",
                path=job.run_dir,
            )
        for path, what in ((config.train_file, "training"), (config.valid_file, "validation")):
            if path is not None and not Path(path).is_file():
                raise InputError(f"{what} file not found", path=path)
        job.run_dir.mkdir(parents=True, exist_ok=True)
        job.config_path.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
        command = worker_command(config, job.config_path, python or sys.executable)
        child_env = dict(os.environ if env is None else env)
        # The worker must never reach the network: the base model is on disk or it fails.
        child_env.setdefault("HF_HUB_OFFLINE", "1")
        child_env.setdefault("TOKENIZERS_PARALLELISM", "false")
        child_env["PYTHONUNBUFFERED"] = "1"
        try:
            with job.log_path.open("ab") as log:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(cwd) if cwd is not None else None,
                    env=child_env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ProviderError(
                f"cannot start the training worker ({command[0]}): {exc}",
                provider="local",
                hint="check that the Python interpreter exists and has the 'local' extra",
            ) from None
        CHILDREN[proc.pid] = proc
        record = WorkerRecord(
            pid=proc.pid,
            start_ticks=proc_start_ticks(proc.pid),
            command=command,
            started_at=time.time(),
        )
        tmp = job.worker_path.with_suffix(".tmp")
        tmp.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, job.worker_path)
        return job

    # -- reading ---------------------------------------------------------------------------

    def worker(self) -> WorkerRecord | None:
        """The recorded worker process, or ``None`` when none was started here.

        Without ``worker.json`` (the app died between starting the worker and writing it),
        the pid comes from the worker's own ``start`` event.
        """
        try:
            return WorkerRecord.model_validate_json(self.worker_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        for event in self.events():
            pid = (event.model_extra or {}).get("pid")
            if event.event == "start" and isinstance(pid, int):
                return WorkerRecord(pid=pid, command=[], started_at=event.time)
        return None

    def config(self) -> LocalTrainingConfig:
        """The config this job runs."""
        try:
            return LocalTrainingConfig.model_validate_json(self.config_path.read_text("utf-8"))
        except OSError:
            raise InputError("no training job in this folder", path=self.run_dir) from None

    def read_events(self, offset: int = 0) -> tuple[list[TrainingEvent], int]:
        """Events from byte ``offset`` on, and the next offset (see :func:`read_events`)."""
        return read_events(self.events_path, offset)

    def poll(self) -> list[TrainingEvent]:
        """Events written since the previous ``poll`` on this object."""
        events, self._offset = read_events(self.events_path, self._offset)
        return events

    def events(self) -> list[TrainingEvent]:
        """All events so far."""
        return read_events(self.events_path, 0)[0]

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the worker's stdout and stderr."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64_000))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def is_alive(self) -> bool:
        """Whether the worker process is still running."""
        record = self.worker()
        return record is not None and pid_alive(record.pid, record.start_ticks)

    def status(self) -> LocalJobStatus:
        """The job's state from its event log and its process, after a restart too.

        A worker that died without writing a final event (killed, out of memory) is
        ``crashed``, with the tail of its output as ``log_tail``.
        """
        record = self.worker()
        # Liveness first: a worker that writes its last event and exits between the two reads
        # must not look crashed.
        alive = self.is_alive()
        events = self.events()
        status = LocalJobStatus(
            state=LocalJobState.starting, pid=record.pid if record else None, alive=alive
        )
        for event in events:
            if event.step is not None:
                status.step = event.step
            if event.epoch is not None:
                status.epoch = event.epoch
            if event.event == "start":
                status.state = LocalJobState.running
            elif event.event == "metrics":
                status.metrics.update(event.metrics)
            elif event.event == "checkpoint" and event.path and event.step is not None:
                status.checkpoints.append(
                    CheckpointInfo(
                        step=event.step, path=event.path, epoch=event.epoch, metrics=event.metrics
                    )
                )
        final = next((e for e in reversed(events) if e.event in TERMINAL_EVENTS), None)
        if final is not None:
            status.metrics.update(final.metrics)
            status.message = final.message
            status.adapter_dir = final.path
            if final.event == "done":
                status.state = LocalJobState.succeeded
            elif final.event == "cancelled":
                status.state = LocalJobState.cancelled
            else:
                status.state = LocalJobState.failed
                status.log_tail = final.traceback or self.log_tail()
        elif record is None:
            status.message = "the worker was never started"
            status.state = LocalJobState.crashed
        elif not alive:
            status.state = LocalJobState.crashed
            status.message = "the training worker died without reporting why"
            status.log_tail = self.log_tail()
        return status

    def checkpoints(self) -> list[CheckpointInfo]:
        """Saved checkpoints with their metrics, in order."""
        return self.status().checkpoints

    def best_checkpoint(
        self, metric: str | None = None, mode: Literal["min", "max"] | None = None
    ) -> CheckpointInfo | None:
        """The checkpoint with the best ``metric``: lowest ``eval_loss`` by default, highest
        ``eval_reward`` / ``reward`` for RFT. ``None`` when no checkpoint has the metric."""
        return best_checkpoint(self.checkpoints(), metric=metric, mode=mode)

    # -- control ---------------------------------------------------------------------------

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.2) -> LocalJobStatus:
        """Block until the job finished (or ``timeout_s`` passed); return its status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.status()
            if status.finished or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll_s)

    async def follow(self, poll_s: float = 0.5) -> AsyncIterator[TrainingEvent]:
        """Yield events as they are written until the job finished (for the training screen)."""
        offset = 0
        while True:
            events, offset = read_events(self.events_path, offset)
            for event in events:
                yield event
            if not events and self.status().finished:
                # One last read: the final event may have landed after the previous one.
                events, offset = read_events(self.events_path, offset)
                for event in events:
                    yield event
                return
            await asyncio.sleep(poll_s)

    def _signal(self, sig: signal.Signals) -> bool:
        record = self.worker()
        if record is None or not pid_alive(record.pid, record.start_ticks):
            return False
        # The worker leads its own session, so its group holds every rank and helper.
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            raise ProviderError(
                f"not allowed to signal the training worker (pid {record.pid}): {exc}",
                provider="local",
            ) from None
        return True

    def cancel(self, timeout_s: float = 60.0) -> LocalJobStatus:
        """Ask the worker to stop (SIGTERM: it finishes the step and saves the adapter); kill
        it when it has not stopped within ``timeout_s``."""
        if not self._signal(signal.SIGTERM):
            return self.status()
        deadline = time.monotonic() + timeout_s
        status = self.wait(timeout_s=timeout_s)
        # The final event comes a moment before the process exits; give it the rest of the time.
        while self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.is_alive():
            self._signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                self._reap()
            status = self.wait(timeout_s=5)
        return status

    def _reap(self) -> None:
        record = self.worker()
        if record is not None and record.pid in CHILDREN:
            CHILDREN[record.pid].wait(timeout=5)


def _absolute_paths(config: LocalTrainingConfig) -> LocalTrainingConfig:
    # The worker may run in another directory; relative paths would point elsewhere there.
    update: dict[str, object] = {
        "run_dir": config.run_dir.resolve(),
        "train_file": config.train_file.resolve(),
        "valid_file": config.valid_file.resolve() if config.valid_file else None,
    }
    if config.reward is not None and config.reward.grader_file is not None:
        update["reward"] = config.reward.model_copy(
            update={"grader_file": config.reward.grader_file.resolve()}
        )
    return config.model_copy(update=update)


def best_checkpoint(
    checkpoints: list[CheckpointInfo],
    metric: str | None = None,
    mode: Literal["min", "max"] | None = None,
) -> CheckpointInfo | None:
    """The best of ``checkpoints`` by ``metric`` (see :meth:`LocalTrainingJob.best_checkpoint`)."""
    if metric is None:
        for candidate in ("eval_loss", "eval_reward", "reward", "loss"):
            if any(candidate in c.metrics for c in checkpoints):
                metric = candidate
                break
        else:
            return None
    if mode is None:
        mode = "max" if "reward" in metric or "accuracy" in metric else "min"
    scored = [c for c in checkpoints if metric in c.metrics]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda c: c.metrics[metric])


__all__ = [
    "FINISHED_STATES",
    "CheckpointInfo",
    "LocalJobState",
    "LocalJobStatus",
    "LocalTrainingJob",
    "WorkerRecord",
    "best_checkpoint",
    "free_port",
    "process_count",
    "worker_command",
]
