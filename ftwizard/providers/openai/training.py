"""OpenAI fine-tuning (SFT, DPO, RFT) through the ``openai`` SDK, as a :class:`TrainingProvider`.

- Uploads are JSONL files with purpose ``fine-tune``, named ``ftwizard-<key>-<role>.jsonl`` so a
  retried or resumed upload reuses the file instead of uploading it twice; the upload waits
  (boundedly) until OpenAI has processed the file and reports a file OpenAI rejected.
- Jobs are created with ``method`` (the top-level ``hyperparameters`` are deprecated), the
  ``suffix`` and ``metadata = {"ftwizard_key": <idempotency key>}``. :meth:`find_job` lists
  jobs filtered by that metadata, so a resumed session re-attaches instead of creating a second
  job; a create whose reply was lost is looked up the same way before it is retried.
- Events are listed newest first by the API; :meth:`events` walks back to the cursor and
  returns what is new, oldest first.
- OpenAI accepts no new jobs from 2027-01-06: :meth:`start_job` refuses then (with the way to
  Vertex or local) and calls ``on_notice`` with the dated warning before it.

Every call goes through :func:`~ftwizard.providers.retry.call_with_retries` with the SDK's own
retries off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError
from ftwizard.providers.client_cache import ClientCache
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.media_files import place_file
from ftwizard.providers.openai.chat import URL_ADVICE, translate_openai_error
from ftwizard.providers.openai.cutoff import (
    cutoff_warning,
    refuse_after_cutoff,
    refuse_if_base_shuts_down,
)
from ftwizard.providers.openai.training_parse import (
    to_checkpoint,
    to_job_event,
    to_job_status,
)
from ftwizard.providers.openai.training_request import (
    METADATA_KEY,
    build_job_params,
    check_spec,
    upload_name,
)
from ftwizard.providers.retry import RateGate, RetryEvent, RetryPolicy, call_with_retries
from ftwizard.providers.training import (
    CheckpointInfo,
    DeployCheck,
    JobEvent,
    JobStatus,
    MetricPoint,
    TrainingCapabilities,
    TrainingSpec,
    UploadedFiles,
)

T = TypeVar("T")

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_DEPLOY_PROMPT = "Reply with one short sentence to show that you are working."

# Bounds on list walks: more pages than this means something is wrong, not more to read.
_PAGE_LIMIT = 100
_MAX_PAGES = 50


class OpenAITrainingProvider:
    """OpenAI fine-tuning jobs. ``today`` and ``sleep`` are injectable for tests (the cutoff
    date, the wait for file processing)."""

    name = "openai"
    capabilities = TrainingCapabilities(
        methods=("sft", "dpo", "rft"), pause=True, checkpoints=True, live_metrics=True
    )

    def __init__(
        self,
        *,
        api_key_env: str = API_KEY_ENV,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        today: Callable[[], date] = date.today,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        file_poll_s: float = 2.0,
        file_poll_attempts: int = 150,
        chat: ChatProvider | None = None,
    ) -> None:
        self.api_key_env = api_key_env
        self.base_url = base_url
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_retry = on_retry
        self.on_notice = on_notice
        self.today = today
        self.sleep = sleep
        self.file_poll_s = file_poll_s
        self.file_poll_attempts = file_poll_attempts
        self._chat = chat
        self.gate = RateGate()
        self._clients: ClientCache[Any] = ClientCache(self._build_client)

    # -- plumbing ----------------------------------------------------------------------------

    def _build_client(self, api_key: str) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,  # retries are ours (ftwizard.providers.retry), never stacked
            timeout=self.timeout_s,
        )

    def _client(self) -> Any:
        key = read_api_key(self.api_key_env, provider=self.name)
        return self._clients.get(key)

    async def _call(self, attempt: Callable[[Any], Awaitable[T]], *, model: str | None = None) -> T:
        async def once() -> T:
            return await attempt(self._client())

        return await call_with_retries(
            once,
            translate=translate_openai_error,
            policy=self.retry,
            provider=self.name,
            model=model,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            url_advice=URL_ADVICE,
            gate=self.gate,
            on_retry=self.on_retry,
            sleep=self.sleep,
        )

    # -- uploads -----------------------------------------------------------------------------

    async def _existing_upload(self, filename: str, size: int) -> Any | None:
        after: str | None = None
        for _ in range(_MAX_PAGES):
            page = await self._call(
                lambda c, a=after: c.files.list(
                    purpose="fine-tune", limit=_PAGE_LIMIT, **({"after": a} if a else {})
                )
            )
            for item in page.data:
                if item.filename == filename and item.bytes == size and item.status != "error":
                    return item
            if not page.data or not getattr(page, "has_more", False):
                return None
            after = page.data[-1].id
        return None

    async def _wait_processed(self, file: Any, path: Path) -> None:
        for _ in range(self.file_poll_attempts):
            if file.status == "processed":
                return
            if file.status == "error":
                detail = getattr(file, "status_details", None) or "no details given"
                raise InputError(f"OpenAI rejected the file: {detail}", path=path)
            await self.sleep(self.file_poll_s)
            file = await self._call(lambda c, i=file.id: c.files.retrieve(i))
        # Still "uploaded": OpenAI validates the file again when the job starts, and its
        # verdict then lands in the job's error; waiting longer here would only stall.

    async def _upload_one(self, path: Path, key: str, role: str) -> str:
        if not path.is_file():
            raise InputError(f"{role} file not found", path=path)
        # OpenAI fetches image URLs itself; local image files go inline as data URIs.
        path = await asyncio.to_thread(place_file, path, "openai")
        data = path.read_bytes()
        filename = upload_name(key, role)
        existing = await self._existing_upload(filename, len(data))
        if existing is not None:
            await self._wait_processed(existing, path)
            return str(existing.id)

        async def create(client: Any) -> Any:
            return await client.files.create(file=(filename, data), purpose="fine-tune")

        created = await self._call(create)
        await self._wait_processed(created, path)
        return str(created.id)

    async def upload(self, spec: TrainingSpec) -> UploadedFiles:
        """Upload the training (and validation) JSONL; reuse a file this key uploaded before.

        Refused, like :meth:`start_job`, from the cutoff date on: the files would be of no use.
        """
        refuse_after_cutoff(self.today(), spec.method, spec.base_model)
        refuse_if_base_shuts_down(self.today(), spec.method, spec.base_model)
        check_spec(spec)
        training = await self._upload_one(spec.training_file, spec.idempotency_key, "train")
        validation = None
        if spec.validation_file is not None:
            validation = await self._upload_one(
                spec.validation_file, spec.idempotency_key, "validation"
            )
        return UploadedFiles(training=training, validation=validation)

    # -- jobs --------------------------------------------------------------------------------

    def preflight(self, spec: TrainingSpec) -> str | None:
        """Check that a job may start today; return the dated warning to show (or ``None``).

        Raises :class:`ProviderError` on and after the cutoff, with the way to Vertex/local.
        """
        today = self.today()
        refuse_after_cutoff(today, spec.method, spec.base_model)
        refuse_if_base_shuts_down(today, spec.method, spec.base_model)
        check_spec(spec)
        return cutoff_warning(today)

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str:
        """Create the job and return its id; never creates a second job for the same key.

        Before the cutoff ``on_notice`` receives the dated warning; from it on, this raises.
        """
        warning = self.preflight(spec)
        if warning and self.on_notice is not None:
            self.on_notice(warning)
        params = build_job_params(spec, uploaded)
        attempts = 0

        async def create(client: Any) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The previous attempt may have created the job before its reply was lost.
                found = await self._find_once(client, spec.idempotency_key)
                if found is not None:
                    return found
            return await client.fine_tuning.jobs.create(**params)

        job = await self._call(create, model=spec.base_model)
        return str(job.id)

    async def _find_once(self, client: Any, key: str) -> Any | None:
        after: str | None = None
        matches: list[Any] = []
        for _ in range(_MAX_PAGES):
            extra = {"after": after} if after else {}
            page = await client.fine_tuning.jobs.list(
                metadata={METADATA_KEY: key}, limit=_PAGE_LIMIT, **extra
            )
            # The filter is the server's; checking again here keeps a server that ignores
            # it from handing back someone else's job.
            matches.extend(
                j
                for j in page.data
                if (getattr(j, "metadata", None) or {}).get(METADATA_KEY) == key
            )
            if not page.data or not getattr(page, "has_more", False):
                break
            after = page.data[-1].id
        if not matches:
            return None
        # There should be one; if a race made two, the live one (else the newest) is it.
        live = [j for j in matches if j.status not in ("failed", "cancelled")]
        return max(live or matches, key=lambda j: j.created_at or 0)

    async def find_job(self, idempotency_key: str) -> str | None:
        """The id of the job created with ``idempotency_key``, or ``None``."""
        job = await self._call(lambda c: self._find_once(c, idempotency_key))
        return None if job is None else str(job.id)

    async def get_job(self, job_id: str) -> JobStatus:
        """The job's current status."""
        job = await self._call(lambda c: c.fine_tuning.jobs.retrieve(job_id))
        return to_job_status(job, self.name)

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]:
        """Events newer than the cursor ``after`` (an event id), oldest first, and the new cursor.

        A cursor that is no longer listed (events expire) gives every event still listed.
        """
        newest_first: list[Any] = []
        page_after: str | None = None
        for _ in range(_MAX_PAGES):
            page = await self._call(
                lambda c, a=page_after: c.fine_tuning.jobs.list_events(
                    job_id, limit=_PAGE_LIMIT, **({"after": a} if a else {})
                )
            )
            reached = False
            for event in page.data:
                if after is not None and event.id == after:
                    reached = True
                    break
                newest_first.append(event)
            if reached or not page.data or not getattr(page, "has_more", False):
                break
            page_after = page.data[-1].id
        cursor = str(newest_first[0].id) if newest_first else after
        return [to_job_event(e) for e in reversed(newest_first)], cursor

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]:
        """The metric points of the events newer than ``after``, and the new cursor."""
        events, cursor = await self.events(job_id, after)
        return [e.metrics for e in events if e.metrics is not None], cursor

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """The checkpoints OpenAI kept, by step."""
        found: list[CheckpointInfo] = []
        page_after: str | None = None
        for _ in range(_MAX_PAGES):
            page = await self._call(
                lambda c, a=page_after: c.fine_tuning.jobs.checkpoints.list(
                    job_id, limit=_PAGE_LIMIT, **({"after": a} if a else {})
                )
            )
            found.extend(to_checkpoint(c) for c in page.data)
            if not page.data or not getattr(page, "has_more", False):
                break
            page_after = page.data[-1].id
        return sorted(found, key=lambda c: (c.step is None, c.step or 0))

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel the job (a finished job cannot be cancelled: OpenAI answers 400)."""
        job = await self._call(lambda c: c.fine_tuning.jobs.cancel(job_id))
        return to_job_status(job, self.name)

    async def pause(self, job_id: str) -> JobStatus:
        """Pause a running job (OpenAI saves a checkpoint; ``resume`` continues from it)."""
        job = await self._call(lambda c: c.fine_tuning.jobs.pause(job_id))
        return to_job_status(job, self.name)

    async def resume(self, job_id: str) -> JobStatus:
        """Resume a paused job."""
        job = await self._call(lambda c: c.fine_tuning.jobs.resume(job_id))
        return to_job_status(job, self.name)

    # -- deployment --------------------------------------------------------------------------

    def _chat_provider(self) -> ChatProvider:
        if self._chat is None:
            from ftwizard.providers.openai.chat import OpenAIChatProvider

            self._chat = OpenAIChatProvider(
                api_key_env=self.api_key_env,
                base_url=self.base_url,
                retry=self.retry,
                timeout_s=self.timeout_s,
                on_retry=self.on_retry,
            )
        return self._chat

    async def deploy_check(self, model: str, prompt: str = DEFAULT_DEPLOY_PROMPT) -> DeployCheck:
        """Call the fine-tuned model once. On OpenAI the model id *is* the deployment."""
        if not model:
            raise ProviderError("the job has no fine-tuned model yet", provider=self.name)
        reply = await self._chat_provider().generate(
            GenerationRequest(
                model=model,
                messages=[ChatMessage(role="user", content=prompt)],
                max_tokens=64,
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
        await self._clients.aclose()
        aclose = getattr(self._chat, "aclose", None)
        if aclose is not None:
            await aclose()


__all__ = ["OpenAITrainingProvider"]
