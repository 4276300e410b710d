"""The local backend seen through :class:`~ftwizard.providers.training.TrainingProvider`.

One run loop (:mod:`ftwizard.training.jobs` and :mod:`ftwizard.training.follow`) serves every
backend; this adapter maps :class:`~ftwizard.providers.local.job.LocalTrainingJob` onto that
protocol:

- a job id is the run folder's path; the run folder of an attempt is ``runs_root/<key>``, so
  :meth:`find_job` is "that folder already holds a job" and a restarted app re-attaches to the
  running worker instead of starting a second one;
- ``events`` and ``metrics`` read ``events.jsonl`` from a byte offset (the cursor);
- ``starting`` is queued, ``crashed`` is failed with the tail of the worker's log;
- local training cannot pause (the worker has no such signal): ``pause`` says so.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from pathlib import Path

from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.local.config import LocalTrainingConfig
from ftwizard.providers.local.events import TrainingEvent, read_events
from ftwizard.providers.local.job import LocalJobState, LocalTrainingJob
from ftwizard.providers.training import (
    CheckpointInfo,
    DeployCheck,
    JobEvent,
    JobState,
    JobStatus,
    MetricPoint,
    TrainingCapabilities,
    TrainingSpec,
    UploadedFiles,
)

_STATES: dict[LocalJobState, JobState] = {
    LocalJobState.starting: JobState.queued,
    LocalJobState.running: JobState.running,
    LocalJobState.succeeded: JobState.succeeded,
    LocalJobState.failed: JobState.failed,
    LocalJobState.cancelled: JobState.cancelled,
    LocalJobState.crashed: JobState.failed,
}
# The trainer's logging names -> MetricPoint fields.
_METRIC_NAMES: dict[str, str] = {
    "loss": "train_loss",
    "eval_loss": "valid_loss",
    "mean_token_accuracy": "train_accuracy",
    "eval_mean_token_accuracy": "valid_accuracy",
    "reward": "train_reward",
    "eval_reward": "valid_reward",
}
CANCEL_TIMEOUT_S = 60.0


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def planned_steps(config: LocalTrainingConfig, train_examples: int) -> int | None:
    """How many optimizer steps the run will take (``max_steps`` or epochs x batches)."""
    hp = config.hyperparameters
    if hp.max_steps is not None:
        return hp.max_steps
    if train_examples <= 0:
        return None
    from ftwizard.providers.local.job import process_count

    per_step = hp.batch_size * hp.grad_accumulation * process_count(config)
    if config.method == "rft":
        # GRPO generates num_generations completions per prompt inside the same batch.
        per_step = max(1, per_step // hp.num_generations)
    return max(1, math.ceil(train_examples / per_step) * math.ceil(hp.epochs))


def to_metric_point(event: TrainingEvent, total_steps: int | None) -> MetricPoint | None:
    """A ``metrics`` event as a :class:`MetricPoint` (``None`` when it has no known metric)."""
    fields = {_METRIC_NAMES[k]: v for k, v in event.metrics.items() if k in _METRIC_NAMES}
    if event.event != "metrics" or not fields or event.step is None:
        return None
    return MetricPoint(
        step=event.step,
        total_steps=total_steps,
        created_at=_when(event.time),
        raw=dict(event.metrics),
        **fields,
    )


def _message(event: TrainingEvent) -> str:
    if event.event == "metrics":
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(event.metrics.items()))
        return f"step {event.step}: {shown}"
    if event.event == "checkpoint":
        return f"checkpoint saved at step {event.step}: {event.path}"
    if event.event == "start":
        extra = event.model_extra or {}
        return (
            f"worker started ({event.message or ''}): {extra.get('train_examples', '?')} training "
            f"and {extra.get('valid_examples', '?')} validation examples"
        )
    if event.event == "done":
        return f"training finished at step {event.step}; adapter in {event.path}"
    if event.event == "cancelled":
        return event.message or "training stopped on request"
    return f"training failed: {event.message or 'no message'}"


class LocalTrainingProvider:
    """Local LoRA training as a :class:`TrainingProvider`.

    ``config`` is what a new job runs (its ``run_dir`` is replaced by ``runs_root/<key>``);
    re-attaching needs no config. ``env`` is the worker's environment (default: this one).
    """

    name = "local"
    capabilities = TrainingCapabilities(
        methods=("sft", "dpo", "rft"), pause=False, checkpoints=True, live_metrics=True
    )

    def __init__(
        self,
        runs_root: Path,
        config: LocalTrainingConfig | None = None,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        self.runs_root = Path(runs_root)
        self.config = config
        self.env = env

    def run_dir(self, key: str) -> Path:
        """The run folder of the attempt named ``key``."""
        return self.runs_root / key

    async def upload(self, spec: TrainingSpec) -> UploadedFiles:
        """Nothing to upload: the worker reads the files where they are."""
        validation = str(spec.validation_file) if spec.validation_file else None
        return UploadedFiles(training=str(spec.training_file), validation=validation)

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str:
        """Start the worker detached in ``runs_root/<key>``; return the folder as the id."""
        if self.config is None:
            raise ProviderError("no local training configuration to start", provider=self.name)
        config = self.config.model_copy(update={"run_dir": self.run_dir(spec.idempotency_key)})
        job = await asyncio.to_thread(LocalTrainingJob.start, config, env=self.env)
        return str(job.run_dir)

    async def find_job(self, idempotency_key: str) -> str | None:
        """The run folder of ``idempotency_key`` when it already holds a job."""
        job = LocalTrainingJob(self.run_dir(idempotency_key))
        return str(job.run_dir) if job.config_path.is_file() else None

    def _total_steps(self, job: LocalTrainingJob) -> int | None:
        try:
            config = job.config()
        except Exception:  # a folder without a readable config has no plan to read
            return None
        examples = 0
        for event in job.events()[:3]:
            if event.event == "start":
                examples = int((event.model_extra or {}).get("train_examples") or 0)
        return planned_steps(config, examples)

    async def get_job(self, job_id: str) -> JobStatus:
        """The job's status from its run folder and process."""
        return await asyncio.to_thread(self._status, job_id)

    def _status(self, job_id: str) -> JobStatus:
        job = LocalTrainingJob(job_id)
        if not job.config_path.is_file():
            raise ProviderError(f"no local training job in {job_id}", provider=self.name)
        local = job.status()
        record = job.worker()
        events = job.events()
        final = events[-1] if events and local.finished else None
        error = None
        if local.state in (LocalJobState.failed, LocalJobState.crashed):
            error = local.message or "the training worker failed"
            if local.log_tail:
                error += "\n" + local.log_tail
        total = self._total_steps(job)
        created = _when(record.started_at) if record else None
        estimated = None
        if (
            not local.finished
            and created is not None
            and local.step
            and total
            and total > local.step
        ):
            elapsed = datetime.now(UTC) - created
            estimated = created + elapsed * (total / local.step)
        num_tokens = local.metrics.get("num_tokens")
        return JobStatus(
            job_id=job_id,
            provider=self.name,
            state=_STATES[local.state],
            raw_status=local.state.value,
            base_model=job.config().base_model,
            fine_tuned_model=local.adapter_dir if local.state is LocalJobState.succeeded else None,
            trained_tokens=int(num_tokens) if num_tokens is not None else None,
            error=error,
            created_at=created,
            finished_at=_when(final.time) if final is not None else None,
            estimated_finish=estimated,
            details={"step": local.step, "epoch": local.epoch, "total_steps": total},
        )

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]:
        """The worker's events after byte offset ``after``, and the new offset."""
        job = LocalTrainingJob(job_id)
        total = self._total_steps(job)
        raw, offset = read_events(job.events_path, int(after or 0))
        out: list[JobEvent] = []
        start = int(after or 0)
        for index, event in enumerate(raw):
            level = "error" if event.event == "error" else "info"
            out.append(
                JobEvent(
                    id=f"{start}-{index}",
                    message=_message(event),
                    level=level,
                    created_at=_when(event.time),
                    metrics=to_metric_point(event, total),
                )
            )
        return out, str(offset)

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]:
        """The metric points logged after byte offset ``after``, and the new offset."""
        events, cursor = await self.events(job_id, after)
        return [e.metrics for e in events if e.metrics is not None], cursor

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """The saved checkpoints; ``name`` is the checkpoint folder (an adapter)."""
        local = await asyncio.to_thread(LocalTrainingJob(job_id).checkpoints)
        return [
            CheckpointInfo(
                id=f"step-{c.step}", name=c.path, step=c.step, epoch=c.epoch, metrics=c.metrics
            )
            for c in local
        ]

    async def cancel(self, job_id: str) -> JobStatus:
        """Stop the worker (it saves the adapter of the training so far)."""
        job = LocalTrainingJob(job_id)
        await asyncio.to_thread(job.cancel, CANCEL_TIMEOUT_S)
        return await self.get_job(job_id)

    async def pause(self, job_id: str) -> JobStatus:
        """Local training cannot pause; cancel keeps the adapter trained so far."""
        raise ProviderError(
            "local training cannot pause", provider=self.name, hint="cancel keeps the adapter"
        )

    async def resume(self, job_id: str) -> JobStatus:
        """Local training cannot pause, so there is nothing to resume."""
        raise ProviderError("local training cannot pause or resume", provider=self.name)

    async def deploy_check(self, model: str, prompt: str = "Hello") -> DeployCheck:
        """Generate once with a local model or adapter folder."""
        from ftwizard.providers.local.chat import LocalChatProvider

        provider = LocalChatProvider()
        try:
            reply = await provider.generate(
                GenerationRequest(
                    model=model, messages=[ChatMessage(role="user", content=prompt)], max_tokens=32
                )
            )
        finally:
            provider.close()
        return DeployCheck(
            model=model,
            prompt=prompt,
            reply=reply.text,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )


__all__ = ["LocalTrainingProvider", "planned_steps", "to_metric_point"]
