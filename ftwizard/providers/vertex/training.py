"""Gemini tuning on Vertex AI (SFT, preference tuning, reinforcement tuning) as a
:class:`~ftwizard.providers.training.TrainingProvider`.

- Uploads go to Cloud Storage with google-cloud-storage (the ``vertex`` extra), as
  ``gs://BUCKET/ftwizard/<key>/<role>.jsonl``: the bucket comes from the argument or
  ``FTWIZARD_GCS_BUCKET``. Uploading again overwrites the same objects, so a retried or resumed
  upload never leaves copies. Files already in Cloud Storage skip the upload: pass
  ``UploadedFiles(training="gs://...", validation="gs://...")`` to
  :func:`~ftwizard.providers.training.start_or_reattach`.
- Jobs are created with google-genai ``client.aio.tunings.tune`` and carry the idempotency key
  as the label ``ftwizard-key``; :meth:`find_job` lists the project's tuning jobs and matches
  the label, and a create whose reply was lost is looked up the same way before a retry.
- Vertex has no pause; :meth:`pause`/:meth:`resume` say so.
- The loss curves are not in the job: Vertex writes them to the TensorBoard behind the
  experiment the job names. :meth:`metrics` reads them from there with google-cloud-aiplatform
  (:mod:`~ftwizard.providers.vertex.training_metrics`); while a job names no experiment it
  returns no points and :class:`JobStatus` carries a note saying so. The job's own
  ``tuning_data_stats`` are in ``JobStatus.details``. Nothing is estimated.
- Deployment is the tuned model's endpoint; :meth:`deploy_check` calls it once.

Credentials, project, location and base URL are resolved exactly as for Gemini generation
(:class:`~ftwizard.providers.vertex.chat.VertexChatProvider`): ``GOOGLE_OAUTH_ACCESS_TOKEN`` or
Application Default Credentials, ``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION``,
``GOOGLE_VERTEX_BASE_URL``. Cloud Storage uses the same credentials; ``storage_base_url`` (or
``STORAGE_EMULATOR_HOST``, which google-cloud-storage reads itself) points it elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from ftwizard.errors import InputError
from ftwizard.providers.base import ChatMessage, GenerationRequest, ProviderError
from ftwizard.providers.media_files import gcs_uploader, place_file
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryEvent,
    RetryPolicy,
    call_with_retries,
)
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
from ftwizard.providers.vertex.chat import (
    ACCESS_TOKEN_ENV,
    URL_ADVICE,
    VertexChatProvider,
    translate_vertex_error,
)
from ftwizard.providers.vertex.storage_errors import translate_storage_error
from ftwizard.providers.vertex.training_shapes import (
    build_tuning_config,
    job_events,
    job_key,
    key_label,
    to_checkpoints,
    to_job_status,
    total_steps,
)

T = TypeVar("T")

BUCKET_ENV = "FTWIZARD_GCS_BUCKET"
DEFAULT_DEPLOY_PROMPT = "Reply with one short sentence to show that you are working."
# A project with more tuning jobs than this is scanned no further for an idempotency key.
_MAX_LISTED_JOBS = 5000
_PAGE_SIZE = 100


class _VertexClients(VertexChatProvider):
    """The Gemini chat provider, also handing out its google-genai client for tuning calls,
    so tuning and the deploy check share one set-up (credentials, project, base URL)."""

    def genai(self) -> Any:
        """google-genai's async API (``client.aio``) for the running loop."""
        return self._clients.get(self._token()).aio

    def token(self) -> str:
        """The bearer token from the environment ('' when ADC is used)."""
        return self._token()


class VertexTrainingProvider:
    """Vertex AI tuning jobs for Gemini models."""

    name = "vertex"
    capabilities = TrainingCapabilities(
        methods=("sft", "dpo", "rft"), pause=False, checkpoints=True, live_metrics=True
    )

    def __init__(
        self,
        *,
        project: str | None = None,
        location: str | None = None,
        base_url: str | None = None,
        credentials: Any | None = None,
        access_token_env: str | None = ACCESS_TOKEN_ENV,
        bucket: str | None = None,
        storage_base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bucket = bucket
        self.storage_base_url = storage_base_url
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self.sleep = sleep
        self.gate = RateGate()
        self.clients = _VertexClients(
            project=project,
            location=location,
            base_url=base_url,
            credentials=credentials,
            access_token_env=access_token_env,
            retry=self.retry,
            timeout_s=timeout_s,
            on_retry=on_retry,
        )
        self._storage: Any | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def _project(self) -> str:
        project = self.clients.resolved_project()
        if project is None:
            raise ProviderError(
                "no Google Cloud project is set",
                provider=self.name,
                hint="Set GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION, default us-central1)",
            )
        return project

    async def _call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        model: str | None = None,
        translate: Callable[[BaseException], CallFailure | None] = translate_vertex_error,
    ) -> T:
        try:
            return await call_with_retries(
                attempt,
                translate=translate,
                policy=self.retry,
                provider=self.name,
                model=model,
                api_key_env=self.clients.access_token_env,
                base_url=self.clients.resolved_base_url(),
                url_advice=URL_ADVICE,
                gate=self.gate,
                on_retry=self.on_retry,
                sleep=self.sleep,
            )
        except ProviderError as exc:
            token = self.clients.token()
            if token and token in exc.message:
                exc.message = exc.message.replace(
                    token, f"[redacted:{self.clients.access_token_env}]"
                )
                exc.args = (exc.message,)
            raise

    def _tunings(self) -> Any:
        self._project()
        return self.clients.genai().tunings

    # -- uploads -----------------------------------------------------------------------------

    def resolved_bucket(self) -> str | None:
        """The Cloud Storage bucket uploads go to (argument, then ``FTWIZARD_GCS_BUCKET``)."""
        bucket = self.bucket or os.environ.get(BUCKET_ENV) or None
        return (
            bucket[len("gs://") :].strip("/") if bucket and bucket.startswith("gs://") else bucket
        )

    def _google_credentials(self) -> Any | None:
        """The credentials google-cloud-* clients use: the explicit ones, else a bearer token
        from the environment, else ``None`` (Application Default Credentials)."""
        credentials = self.clients.credentials
        token = self.clients.token()
        if credentials is None and token:
            import google.oauth2.credentials

            credentials = google.oauth2.credentials.Credentials(token=token)
        return credentials

    def _storage_client(self) -> Any:
        if self._storage is None:
            from google.cloud import storage

            credentials = self._google_credentials()
            options = {"api_endpoint": self.storage_base_url} if self.storage_base_url else None
            self._storage = storage.Client(
                project=self._project(), credentials=credentials, client_options=options
            )
        return self._storage

    async def _upload_one(self, path: Path, bucket: str, key: str, role: str) -> str:
        if not path.is_file():
            raise InputError(f"{role} file not found", path=path)
        path = await self._place_images(path, bucket, key)
        name = f"ftwizard/{key}/{role}.jsonl"

        def upload() -> None:
            blob = self._storage_client().bucket(bucket).blob(name)
            # retry=None: ours (call_with_retries) is the only retry loop.
            blob.upload_from_filename(str(path), content_type="application/jsonl", retry=None)

        await self._call(lambda: asyncio.to_thread(upload), translate=translate_storage_error)
        return f"gs://{bucket}/{name}"

    async def _place_images(self, path: Path, bucket: str, key: str) -> Path:
        """Local and inline images of ``path`` uploaded beside it in the bucket (each distinct
        image once, named by its digest), and a copy of ``path`` that names their gs:// URIs."""

        def upload_image(data: bytes, name: str, mime: str) -> str:
            blob = self._storage_client().bucket(bucket).blob(name)
            blob.upload_from_string(data, content_type=mime, retry=None)
            return f"gs://{bucket}/{name}"

        uploader = gcs_uploader(upload_image, f"ftwizard/{key}")
        return await self._call(
            lambda: asyncio.to_thread(place_file, path, "vertex", uploader=uploader),
            translate=translate_storage_error,
        )

    async def upload(self, spec: TrainingSpec) -> UploadedFiles:
        """Upload the training (and validation) JSONL to ``gs://BUCKET/ftwizard/<key>/``."""
        bucket = self.resolved_bucket()
        if bucket is None:
            raise InputError(
                f"no Cloud Storage bucket for the training files: set {BUCKET_ENV}=BUCKET, or "
                "upload the files yourself and give their gs:// URIs",
                field="bucket",
            )
        training = await self._upload_one(spec.training_file, bucket, spec.idempotency_key, "train")
        validation = None
        if spec.validation_file is not None:
            validation = await self._upload_one(
                spec.validation_file, bucket, spec.idempotency_key, "validation"
            )
        return UploadedFiles(training=training, validation=validation)

    # -- jobs --------------------------------------------------------------------------------

    async def start_job(self, spec: TrainingSpec, uploaded: UploadedFiles) -> str:
        """Create the tuning job and return its resource name; never two for one key."""
        from google.genai import types
        from google.genai.errors import ExperimentalWarning

        try:
            config = types.CreateTuningJobConfig(**build_tuning_config(spec, uploaded))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise InputError(
                f"google-genai rejects these tuning settings: {problems}", field="reward_config"
            ) from None
        attempts = 0

        async def create() -> Any:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The previous attempt may have created the job before its reply was lost.
                found = await self._find_once(spec.idempotency_key)
                if found is not None:
                    return found
            tunings = self._tunings()
            with warnings.catch_warnings():
                # tune() is marked experimental; the warning would land in the user's terminal.
                warnings.simplefilter("ignore", ExperimentalWarning)
                pending = tunings.tune(
                    base_model=spec.base_model,
                    training_dataset=types.TuningDataset(gcs_uri=uploaded.training),
                    config=config,
                )
            return await pending

        job = await self._call(create, model=spec.base_model)
        return str(job.name)

    async def _find_once(self, key: str) -> Any | None:
        wanted = key_label(key)
        matches: list[Any] = []
        pager = await self._tunings().list(config={"page_size": _PAGE_SIZE})
        seen = 0
        async for job in pager:
            seen += 1
            if job_key(job) == wanted:
                matches.append(job)
            if seen >= _MAX_LISTED_JOBS:
                break
        if not matches:
            return None
        # There should be one; if a race made two, the live one (else the newest) is it.
        dead = (JobState.failed, JobState.cancelled)
        live = [j for j in matches if to_job_status(j).state not in dead]
        return max(live or matches, key=lambda j: j.create_time.timestamp() if j.create_time else 0)

    async def find_job(self, idempotency_key: str) -> str | None:
        """The resource name of the tuning job labelled with ``idempotency_key``, or ``None``."""
        job = await self._call(lambda: self._find_once(idempotency_key))
        return None if job is None else str(job.name)

    async def _get(self, job_id: str) -> Any:
        return await self._call(lambda: self._tunings().get(name=job_id))

    async def get_job(self, job_id: str) -> JobStatus:
        """The job's current status, with its ``tuning_data_stats`` in ``details``."""
        return to_job_status(await self._get(job_id), self.name)

    async def events(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[JobEvent], str | None]:
        """The job's milestones (created, started, ended) after the cursor ``after``."""
        events = job_events(await self._get(job_id))
        ids = [e.id for e in events]
        if after in ids:
            events = events[ids.index(after) + 1 :]
        cursor = events[-1].id if events else after
        return events, cursor

    async def metrics(
        self, job_id: str, after: str | None = None
    ) -> tuple[list[MetricPoint], str | None]:
        """Points newer than the cursor (a step number), read from the TensorBoard of the job's
        experiment; none while the job names no experiment (``JobStatus.notes`` says so)."""
        job = await self._get(job_id)
        experiment = getattr(job, "experiment", None)
        if not experiment:
            return [], after
        from ftwizard.providers.vertex.training_metrics import (
            api_endpoint,
            read_experiment_metrics,
        )

        endpoint = api_endpoint(self.clients.resolved_location(), self.clients.resolved_base_url())
        credentials = self._google_credentials()
        points = await self._call(
            lambda: asyncio.to_thread(
                read_experiment_metrics, experiment, credentials=credentials, endpoint=endpoint
            ),
            translate=translate_storage_error,
        )
        last = int(after) if after is not None and after.isdigit() else None
        fresh = [p for p in points if last is None or p.step > last]
        steps = total_steps(job)
        for point in fresh:
            point.total_steps = steps
        return fresh, str(fresh[-1].step) if fresh else after

    async def checkpoints(self, job_id: str) -> list[CheckpointInfo]:
        """The tuned model's checkpoints, each with its own endpoint (known once it ends)."""
        return to_checkpoints(await self._get(job_id))

    async def cancel(self, job_id: str) -> JobStatus:
        """Ask Vertex to cancel the job; the status is ``running`` until it is ``cancelled``."""
        await self._call(lambda: self._tunings().cancel(name=job_id))
        return await self.get_job(job_id)

    async def pause(self, job_id: str) -> JobStatus:
        """Vertex AI tuning jobs cannot be paused: always raises :class:`ProviderError`."""
        raise ProviderError(
            "Vertex AI tuning jobs cannot be paused",
            provider=self.name,
            hint="Let the job run, or cancel it (a cancelled job cannot be resumed)",
        )

    async def resume(self, job_id: str) -> JobStatus:
        """Vertex AI tuning jobs cannot be paused, so none can be resumed."""
        raise ProviderError("Vertex AI tuning jobs cannot be paused or resumed", provider=self.name)

    # -- deployment --------------------------------------------------------------------------

    async def deploy_check(self, model: str, prompt: str = DEFAULT_DEPLOY_PROMPT) -> DeployCheck:
        """Call the tuned model's endpoint (``JobStatus.endpoint``) once."""
        if "/endpoints/" not in model:
            raise ProviderError(
                f"'{model}' is not a Vertex endpoint",
                provider=self.name,
                hint="Call the tuned model through its endpoint "
                "(projects/P/locations/L/endpoints/ID), the job's `endpoint`",
            )
        reply = await self.clients.generate(
            GenerationRequest(
                model=model, messages=[ChatMessage(role="user", content=prompt)], max_tokens=64
            )
        )
        return DeployCheck(
            model=model,
            endpoint=model,
            prompt=prompt,
            reply=reply.text,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients opened on the running loop."""
        await self.clients.aclose()
        if self._storage is not None:
            self._storage.close()
            self._storage = None


__all__ = ["BUCKET_ENV", "VertexTrainingProvider"]
