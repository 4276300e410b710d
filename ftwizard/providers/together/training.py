"""Together fine-tuning (SFT, DPO; LoRA or full) as a :class:`TrainingProvider`, on httpx
against the published spec (see :mod:`ftwizard.providers.together.client` for why not the SDK).

- Uploads go to ``POST /files/upload`` named ``ftwizard-<sha256 of the content>-<role>.jsonl``;
  ``GET /files`` is read first, so the same data is uploaded once however often the price is
  estimated or a start is retried.
- :meth:`estimate` is ``POST /fine-tunes/estimate-price``: the confirmation screen shows it
  before any job exists, and :meth:`start_job` asks again and refuses when Together answers
  ``allowed_to_proceed: false`` (the account's limit).
- Jobs carry the idempotency key in ``suffix`` (``ftw-`` and a digest of the key, see
  :func:`~ftwizard.providers.together.wire.key_suffix`). :meth:`find_job` lists the jobs and
  matches it; a create whose reply was lost is looked up the same way before it is retried,
  so a retry never makes a second job.
- Events and checkpoints are whole lists; :meth:`events` returns those after the cursor (a
  count). :meth:`metrics` asks ``/metrics`` from the step after the cursor. Together has no
  pause; :meth:`cancel` is ``POST /fine-tunes/{id}/cancel``.
- Deployment: the fine-tuned model's name (``model_output_name``) is served by Together's
  OpenAI-compatible chat completions; :meth:`deploy_check` calls it once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError
from ftwizard.providers.media_files import may_reference_images, place_file
from ftwizard.providers.retry import (
    CallFailure,
    RetryEvent,
    RetryPolicy,
    backoff_delay,
    failure_hint,
)
from ftwizard.providers.together.client import TogetherClient, translate_http_error
from ftwizard.providers.together.wire import (
    PriceEstimate,
    TogetherEvent,
    TogetherFile,
    TogetherJob,
    build_create_body,
    build_estimate_body,
    check_spec,
    key_suffix,
    to_checkpoint,
    to_job_event,
    to_job_status,
    to_metric_point,
)
from ftwizard.providers.training import (
    CheckpointInfo,
    DeployCheck,
    JobEvent,
    JobStatus,
    MetricPoint,
    PriceQuote,
    TrainingCapabilities,
    TrainingSpec,
    UploadedFiles,
)

DEFAULT_DEPLOY_PROMPT = "Reply with one short sentence to show that you are working."


def upload_name(path: Path, role: str) -> str:
    """The name an upload gets: the content's digest, so the same data is found again."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return f"ftwizard-{digest}-{role}.jsonl"


class TogetherTrainingProvider:
    """Together's managed fine-tuning."""

    name = "together"
    capabilities = TrainingCapabilities(
        methods=("sft", "dpo"), pause=False, checkpoints=True, live_metrics=True
    )

    def __init__(
        self,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        chat: ChatProvider | None = None,
    ) -> None:
        self.client = TogetherClient(
            base_url=base_url, retry=retry, timeout_s=timeout_s, on_retry=on_retry
        )
        self.sleep: Callable[[float], Awaitable[None]] = sleep or asyncio.sleep
        self._chat = chat

    @property
    def base_url(self) -> str:
        """Where the calls go."""
        return self.client.base_url

    # -- uploads and the price ---------------------------------------------------------------

    async def _upload_one(self, path: Path, role: str) -> str:
        if not path.is_file():
            raise InputError(f"{role} file not found", path=path)
        # Together reads images only as base64 data URIs: local image files are embedded.
        path = await asyncio.to_thread(place_file, path, "together")
        filename = upload_name(path, role)
        size = path.stat().st_size
        listing = await self.client.call("GET", "files")
        for item in listing.get("data", []):
            file = TogetherFile.model_validate(item)
            if file.filename == filename and file.bytes == size and file.purpose == "fine-tune":
                return file.id
        reply = await self.client.upload(path, filename)
        return TogetherFile.model_validate(reply).id

    async def supports_vision(self, model: str) -> bool:
        """Whether Together's model limits say ``model`` tunes on images."""
        from urllib.parse import quote

        reply = await self.client.call(
            "GET", f"fine-tunes/models/limits?model_name={quote(model, safe='')}", model=model
        )
        return bool(reply.get("supports_vision"))

    async def upload(self, spec: TrainingSpec) -> UploadedFiles:
        """Upload the training (and validation) file, or find the earlier upload of it.

        A file with images is refused before any upload when Together's model limits say the
        base model takes none.
        """
        check_spec(spec)
        if may_reference_images(spec.training_file) and not await self.supports_vision(
            spec.base_model
        ):
            raise InputError(
                f"the training file has images, but Together's limits for {spec.base_model} "
                "say it does not tune on images; choose a vision base such as "
                "Qwen/Qwen3-VL-8B-Instruct",
                path=spec.training_file,
                field="base_model",
            )
        training = await self._upload_one(spec.training_file, "train")
        validation = None
        if spec.validation_file is not None:
            validation = await self._upload_one(spec.validation_file, "valid")
        return UploadedFiles(training=training, validation=validation)

    async def estimate(self, spec: TrainingSpec, uploaded: UploadedFiles) -> PriceEstimate:
        """Together's price for the job ``spec`` would create; creates nothing but uploads."""
        reply = await self.client.call(
            "POST", "fine-tunes/estimate-price", json=build_estimate_body(spec, uploaded)
        )
        return PriceEstimate.model_validate(reply)

    async def quote(self, spec: TrainingSpec) -> PriceQuote:
        """Upload the files (once) and ask Together's price for the job; no job is created."""
        estimate = await self.estimate(spec, await self.upload(spec))
        return PriceQuote(
            usd=estimate.estimated_total_price,
            allowed=estimate.allowed_to_proceed,
            summary=estimate.summary(),
        )

    # -- jobs --------------------------------------------------------------------------------

    async def _create_once_or_find(self, spec: TrainingSpec, body: dict[str, object]) -> str:
        """Create the job; after a failed attempt, look for the job by its suffix before
        trying again, because a create can succeed even though its reply was lost."""
        policy = self.client.retry
        attempt = 0
        while True:
            attempt += 1
            await self.client.gate.wait()
            try:
                reply = await self.client.once("POST", "fine-tunes", json=body)
                return TogetherJob.model_validate(reply).id
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = translate_http_error(exc)
                if failure is None:
                    raise
            found = await self.find_job(spec.idempotency_key)
            if found is not None:
                return found
            if not failure.retryable or attempt >= policy.max_attempts:
                raise self._final(failure, spec, attempt)
            if failure.retry_after_s is not None:
                self.client.gate.hold(failure.retry_after_s)
            await self.sleep(backoff_delay(policy, attempt, failure.retry_after_s))

    def _final(self, failure: CallFailure, spec: TrainingSpec, attempts: int) -> ProviderError:
        return ProviderError(
            failure.detail,
            provider=self.name,
            model=spec.base_model,
            status_code=failure.status_code,
            hint=failure_hint(
                failure,
                provider=self.name,
                api_key_env=self.client.api_key_env,
                base_url=self.base_url,
            ),
            attempts=attempts,
            retryable=failure.retryable,
        )

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str:
        """Create the job, after Together's price check allows it."""
        estimate = await self.estimate(spec, uploaded)
        if not estimate.allowed_to_proceed:
            raise ProviderError(
                estimate.summary(),
                provider=self.name,
                model=spec.base_model,
                hint="Raise the limit or add credit on together.ai, or train on less data",
            )
        return await self._create_once_or_find(spec, build_create_body(spec, uploaded))

    async def find_job(self, idempotency_key: str) -> str | None:
        """The job whose ``suffix`` carries the key, newest first; ``None`` when none does."""
        suffix = key_suffix(idempotency_key)
        listing = await self.client.call("GET", "fine-tunes")
        matches = [TogetherJob.model_validate(j) for j in listing.get("data", [])]
        matches = [j for j in matches if j.suffix == suffix]
        if not matches:
            return None
        matches.sort(key=lambda j: j.created_at.timestamp() if j.created_at else 0.0)
        return matches[-1].id

    async def _job(self, job_id: str) -> TogetherJob:
        return TogetherJob.model_validate(await self.client.call("GET", f"fine-tunes/{job_id}"))

    async def get_job(self, job_id: str) -> JobStatus:
        """The job's state, normalized."""
        return to_job_status(await self._job(job_id), self.name)

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]:
        """The events after the cursor (how many were returned before), oldest first."""
        reply = await self.client.call("GET", f"fine-tunes/{job_id}/events")
        rows = reply.get("data", [])
        start = int(after) if after and after.isdigit() else 0
        events = [to_job_event(TogetherEvent.model_validate(r), i) for i, r in enumerate(rows)][
            start:
        ]
        return events, str(len(rows))

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]:
        """The logged steps after the cursor (the last step returned)."""
        body = {"global_step_from": int(after) + 1} if after and after.isdigit() else None
        reply = await self.client.call("GET", f"fine-tunes/{job_id}/metrics", json=body)
        total = None
        points: list[MetricPoint] = []
        for row in reply.get("metrics", []):
            point = to_metric_point(row, total)
            if point is not None and (after is None or point.step > int(after)):
                points.append(point)
        points.sort(key=lambda p: p.step)
        cursor = str(points[-1].step) if points else after
        return points, cursor

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """The checkpoints Together kept, by step."""
        job = await self._job(job_id)
        reply = await self.client.call("GET", f"fine-tunes/{job_id}/checkpoints")
        rows = sorted(reply.get("data", []), key=lambda r: int(r.get("step", 0)))
        return [to_checkpoint(row, job) for row in rows]

    async def cancel(self, job_id: str) -> JobStatus:
        """Ask Together to cancel the job (it goes through ``cancel_requested``)."""
        reply = await self.client.call("POST", f"fine-tunes/{job_id}/cancel")
        return to_job_status(TogetherJob.model_validate(reply), self.name)

    async def pause(self, job_id: str) -> JobStatus:
        """Together jobs cannot be paused."""
        raise ProviderError(
            "Together fine-tuning jobs cannot be paused",
            provider=self.name,
            hint="Cancel the job, then start a new attempt (from_checkpoint keeps its steps)",
        )

    async def resume(self, job_id: str) -> JobStatus:
        """Together jobs cannot be paused, so there is nothing to resume."""
        raise ProviderError("Together fine-tuning jobs cannot be paused", provider=self.name)

    # -- deployment --------------------------------------------------------------------------

    def _chat_provider(self) -> ChatProvider:
        if self._chat is None:
            from ftwizard.providers.openai.http import LeanOpenAIChatProvider

            self._chat = LeanOpenAIChatProvider(
                name=self.name,
                api_key_env=self.client.api_key_env,
                base_url=self.base_url,
                compatible=True,
                retry=self.client.retry,
                on_retry=self.client.on_retry,
            )
        return self._chat

    async def deploy_check(self, model: str, prompt: str = DEFAULT_DEPLOY_PROMPT) -> DeployCheck:
        """Call the fine-tuned model once through Together's chat completions."""
        if not model:
            raise ProviderError("the job has no fine-tuned model yet", provider=self.name)
        reply = await self._chat_provider().generate(
            GenerationRequest(
                model=model, messages=[ChatMessage(role="user", content=prompt)], max_tokens=64
            )
        )
        return DeployCheck(
            model=model,
            endpoint=self.base_url,
            prompt=prompt,
            reply=reply.text,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients opened on the running loop."""
        await self.client.aclose()
        aclose = getattr(self._chat, "aclose", None)
        if aclose is not None:
            await aclose()
