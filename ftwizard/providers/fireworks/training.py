"""Fireworks managed fine-tuning (SFT, DPO, RFT) as a
:class:`~ftwizard.providers.training.TrainingProvider`.

- Uploads: each file becomes a dataset (``POST datasets`` with ``userUploaded``, then
  ``POST datasets/ID:upload`` as multipart), polled until ``READY``. Dataset ids come from the
  idempotency key, so a repeated upload finds the dataset it made (409) instead of a copy.
- Jobs: the job id is the key itself (lower-cased), passed as ``?supervisedFineTuningJobId=``
  (``dpoJobId``, ``reinforcementFineTuningJobId``). :meth:`find_job` is a GET of that name in
  each collection; a create whose reply was lost answers 409 on the retry and is adopted.
- RFT: ``spec.reward_config`` carries ``{"fireworks_evaluator": FireworksEvaluator JSON}``
  (see :mod:`ftwizard.graders.export_fireworks`), created as ``evaluators/<key>-eval`` and
  awaited until ``ACTIVE``, or ``{"evaluator": "accounts/A/evaluators/ID"}`` for one made
  elsewhere (Fireworks refuses evaluator creation to some API keys).
- Metrics are ``jobProgress`` (percent on a 0-100 axis); Fireworks' API has no event log and
  no checkpoint list, so :meth:`events` returns the job's milestones and
  ``capabilities.checkpoints`` is off. Cancel is ``:cancel``; there is no pause.
- Deployment: the tuned model is ``accounts/A/models/<key>``; :meth:`deploy_check` calls it
  once through Fireworks' OpenAI-compatible ``/inference/v1/chat/completions``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.fireworks.api import INFERENCE_PATH, AlreadyExists, FireworksAPI, NotFound
from ftwizard.providers.fireworks.shapes import (
    COLLECTIONS,
    build_job_body,
    dataset_id_for,
    evaluator_id_for,
    job_events,
    job_id_for,
    method_of,
    progress_point,
    to_job_status,
)
from ftwizard.providers.media_files import place_file
from ftwizard.providers.retry import RetryEvent, RetryPolicy
from ftwizard.providers.training import (
    CheckpointInfo,
    DeployCheck,
    JobEvent,
    JobStatus,
    MetricPoint,
    TrainingCapabilities,
    TrainingMethod,
    TrainingSpec,
    UploadedFiles,
)

DEFAULT_DEPLOY_PROMPT = "Reply with one short sentence to show that you are working."
# How long to wait for a dataset to be READY or an evaluator ACTIVE, polling every poll_s.
_READY_WAIT_S = 600.0


class FireworksTrainingProvider:
    """Fine-tuning jobs on one Fireworks account."""

    name = "fireworks"
    capabilities = TrainingCapabilities(
        methods=("sft", "dpo", "rft"), pause=False, checkpoints=False, live_metrics=True
    )

    def __init__(
        self,
        *,
        account_id: str | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        poll_s: float = 5.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api = FireworksAPI(
            account_id=account_id,
            base_url=base_url,
            retry=retry,
            timeout_s=timeout_s,
            on_retry=on_retry,
            sleep=sleep,
        )
        self.poll_s = poll_s
        self.sleep = sleep

    # -- datasets ----------------------------------------------------------------------------

    async def _wait_for(self, path: str, ready: str, failed: tuple[str, ...], what: str) -> None:
        waited = 0.0
        while True:
            resource = await self.api.call("GET", path)
            state = str(resource.get("state") or "")
            if state == ready:
                return
            if state in failed:
                message = (resource.get("status") or {}).get("message") or state
                raise ProviderError(f"{what} failed on Fireworks: {message}", provider=self.name)
            if waited >= _READY_WAIT_S:
                raise ProviderError(
                    f"{what} is still {state or 'not ready'} after {waited:.0f} s",
                    provider=self.name,
                    hint="Try again later: ftwizard finds what it already made",
                )
            await self.sleep(self.poll_s)
            waited += self.poll_s

    async def _upload_one(self, path: Any, key: str, role: str) -> str:
        if not path.is_file():
            raise InputError(f"{role} file not found", path=path)
        # Fireworks reads images only as base64 data URIs: local image files are embedded.
        path = await asyncio.to_thread(place_file, path, "fireworks")
        data = path.read_bytes()
        dataset_id = dataset_id_for(key, role)
        name = self.api.resource("datasets", dataset_id)
        url_path = self.api.account_path("datasets", dataset_id)
        body = {
            "datasetId": dataset_id,
            "dataset": {
                "displayName": f"ftwizard {role} {key}"[:128],
                "exampleCount": str(sum(1 for line in data.splitlines() if line.strip())),
                "userUploaded": {},
            },
        }
        try:
            await self.api.call("POST", self.api.account_path("datasets"), json_body=body)
        except AlreadyExists:
            existing = await self.api.call("GET", url_path)
            if existing.get("state") == "READY":
                return name
        await self.api.call(
            "POST",
            f"{url_path}:upload",
            files={"file": (path.name, data, "application/jsonl")},
        )
        await self._wait_for(url_path, "READY", ("UPLOAD_FAILED",), f"dataset {dataset_id}")
        return name

    async def upload(self, spec: TrainingSpec) -> UploadedFiles:
        """Upload the training (and validation) JSONL as datasets named after the key."""
        training = await self._upload_one(spec.training_file, spec.idempotency_key, "train")
        validation = None
        if spec.validation_file is not None:
            validation = await self._upload_one(
                spec.validation_file, spec.idempotency_key, "validation"
            )
        return UploadedFiles(training=training, validation=validation)

    # -- evaluators --------------------------------------------------------------------------

    async def _evaluator(self, spec: TrainingSpec) -> str:
        config = spec.reward_config or {}
        if isinstance(config.get("evaluator"), str):
            return str(config["evaluator"])
        exported = config.get("fireworks_evaluator")
        if not isinstance(exported, dict):
            raise InputError(
                "a Fireworks RFT job needs the grader exported as a Fireworks evaluator",
                field="reward_config",
            )
        from ftwizard.graders.export_fireworks import FireworksEvaluator

        evaluator = FireworksEvaluator.model_validate(exported)
        # Named after the key whatever the caller chose, so a retry finds the one it made.
        evaluator_id = evaluator_id_for(spec.idempotency_key)
        evaluator = evaluator.model_copy(update={"evaluator_id": evaluator_id})
        name = self.api.resource("evaluators", evaluator_id)
        # AlreadyExists: made by an earlier attempt with this key.
        with contextlib.suppress(AlreadyExists):
            await self.api.call(
                "POST", self.api.account_path("evaluatorsV2"), json_body=evaluator.create_body()
            )
        await self._wait_for(
            f"/v1/{name}", "ACTIVE", ("BUILD_FAILED",), f"evaluator {evaluator_id}"
        )
        return name

    # -- jobs --------------------------------------------------------------------------------

    def _job_name(self, method: TrainingMethod, job_id: str) -> str:
        return self.api.resource(COLLECTIONS[method][0], job_id)

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str:
        """Create the job with the key as its id; never two for one key."""
        evaluator = await self._evaluator(spec) if spec.method == "rft" else None
        job_id = job_id_for(spec.idempotency_key)
        body = build_job_body(spec, uploaded, account=self.api.account(), evaluator=evaluator)
        _, id_param = COLLECTIONS[spec.method]
        try:
            job = await self.api.call(
                "POST",
                self.api.account_path(COLLECTIONS[spec.method][0]),
                json_body=body,
                params={id_param: job_id},
                model=spec.base_model,
            )
        except AlreadyExists:
            # An earlier attempt (or a retry whose first reply was lost) made it.
            return self._job_name(spec.method, job_id)
        return str(job.get("name") or self._job_name(spec.method, job_id))

    async def find_job(self, idempotency_key: str) -> str | None:
        """The name of the job whose id is the key, in whichever collection holds it."""
        job_id = job_id_for(idempotency_key)
        for method in COLLECTIONS:
            name = self._job_name(method, job_id)
            try:
                job = await self.api.call("GET", f"/v1/{name}")
            except NotFound:
                continue
            return str(job.get("name") or name)
        return None

    async def _get(self, job_id: str) -> dict[str, Any]:
        try:
            return dict(await self.api.call("GET", f"/v1/{job_id}"))
        except NotFound:
            raise ProviderError(f"Fireworks has no job {job_id}", provider=self.name) from None

    async def get_job(self, job_id: str) -> JobStatus:
        """The job's current status."""
        status = to_job_status(await self._get(job_id))
        return status.model_copy(update={"job_id": status.job_id or job_id})

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]:
        """The job's milestones after the cursor ``after``."""
        events = job_events(await self._get(job_id))
        ids = [e.id for e in events]
        if after in ids:
            events = events[ids.index(after) + 1 :]
        return events, events[-1].id if events else after

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]:
        """The job's progress (percent done) when it moved past the cursor."""
        point = progress_point(await self._get(job_id))
        last = int(after) if after is not None and after.isdigit() else None
        if point is None or (last is not None and point.step <= last):
            return [], after
        return [point], str(point.step)

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """Fireworks' API lists no checkpoints of a fine-tuning job: the output model is it."""
        return []

    async def cancel(self, job_id: str) -> JobStatus:
        """``POST NAME:cancel``; the job says ``CANCELLING`` (running) until it is cancelled."""
        method_of(job_id)  # a clear error for a name that is not a fine-tuning job
        await self.api.call("POST", f"/v1/{job_id}:cancel", json_body={})
        return await self.get_job(job_id)

    async def pause(self, job_id: str) -> JobStatus:
        """Fireworks fine-tuning jobs cannot be paused: always raises :class:`ProviderError`."""
        raise ProviderError(
            "Fireworks fine-tuning jobs cannot be paused",
            provider=self.name,
            hint="Let the job run, or cancel it",
        )

    async def resume(self, job_id: str) -> JobStatus:
        """Resume a DPO or RFT job that stopped (``NAME:resume``); SFT has no resume."""
        if method_of(job_id) == "sft":
            raise ProviderError(
                "Fireworks supervised fine-tuning jobs cannot be resumed", provider=self.name
            )
        await self.api.call("POST", f"/v1/{job_id}:resume", json_body={})
        return await self.get_job(job_id)

    # -- deployment --------------------------------------------------------------------------

    async def deploy_check(self, model: str, prompt: str = DEFAULT_DEPLOY_PROMPT) -> DeployCheck:
        """Call the tuned model once through Fireworks' OpenAI-compatible chat endpoint."""
        name = model.removeprefix("fireworks:")
        body = {
            "model": name,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 64,
        }
        try:
            reply = await self.api.call(
                "POST", f"{INFERENCE_PATH}/chat/completions", json_body=body, model=name
            )
        except NotFound:
            raise ProviderError(
                f"Fireworks does not serve {name}",
                provider=self.name,
                model=name,
                hint="A tuned LoRA model is served once deployed: "
                f"`firectl create deployment {name}` (or load it on a serverless base)",
            ) from None
        choices = reply.get("choices") or [{}]
        text = ((choices[0] or {}).get("message") or {}).get("content") or ""
        usage = reply.get("usage") or {}
        return DeployCheck(
            model=f"fireworks:{name}",
            prompt=prompt,
            reply=str(text),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.api.aclose()


__all__ = ["FireworksTrainingProvider"]
