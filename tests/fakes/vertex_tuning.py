"""Vertex AI tuning jobs and Cloud Storage uploads, simulated on a clock the test controls.

:class:`VertexTuningSim` adds, to a :class:`~tests.fakes.vertex_server.FakeVertexServer`:

- ``POST /v1/projects/{p}/locations/{l}/tuningJobs`` (google-genai ``tunings.tune``), ``GET`` of
  one job and of the list (``pageSize``/``pageToken``), ``POST {name}:cancel``;
- ``POST /v1/projects/{p}/locations/{l}/endpoints/{id}:generateContent``: a tuned model's
  endpoint, or one of its checkpoints' endpoints, answering like its base model unless
  ``checkpoint_reply_fn`` scripts what each checkpoint says;
- Cloud Storage JSON API: ``POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart`` (what
  google-cloud-storage sends for files up to 8 MiB) and ``GET /storage/v1/b/{bucket}/o/{name}``.

Timeline, moved by ``server.tuning.advance(seconds)``: ``JOB_STATE_PENDING`` (``pending_s``) ->
``JOB_STATE_RUNNING`` (one epoch every ``epoch_s``, a checkpoint per epoch) ->
``JOB_STATE_SUCCEEDED`` with ``tunedModel.model``/``endpoint`` and
``tunedModel.checkpoints[]`` (``checkpointId``, ``epoch``, ``step``, ``endpoint``; int64 as JSON
strings), each checkpoint deployed on its own endpoint as the TunedModelCheckpoint reference
documents (``projects/{p}/locations/{l}/endpoints/{e}``). ``:cancel`` answers ``{}`` and
puts the job in ``JOB_STATE_CANCELLING``; the next ``advance`` makes it ``JOB_STATE_CANCELLED``.
``tuningDataStats`` appear once the job runs.

Loss curves: each job names an ``experiment`` (unless ``with_experiment = False``), a Vertex ML
Metadata context whose ``backing_tensorboard_resource`` holds one run with the scalar series
Gemini tuning writes (``/train_total_loss``, ``/train_fraction_of_correct_next_step_preds``,
``/eval_*`` at epoch ends with a validation set), ``steps_per_epoch`` points per epoch. Served
as aiplatform's REST transport asks: ``GET {context}``, ``GET {experiment}/runs``,
``GET {run}/timeSeries``, ``GET {series}:read``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from tests.fakes.http_server import DROP, FakeResponse, RecordedRequest, Scripted
from tests.fakes.image_rules import gemini_image_problem
from tests.fakes.vertex_storage import StorageRoutes

_PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_SPECS = ("supervisedTuningSpec", "preferenceOptimizationSpec", "reinforcementTuningSpec")
_FINISHED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
_LABEL_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
_ADAPTER_SIZES = (
    "ADAPTER_SIZE_ONE",
    "ADAPTER_SIZE_TWO",
    "ADAPTER_SIZE_FOUR",
    "ADAPTER_SIZE_EIGHT",
    "ADAPTER_SIZE_SIXTEEN",
    "ADAPTER_SIZE_THIRTY_TWO",
)
T0 = datetime(2026, 11, 22, tzinfo=UTC)


class _Server(Protocol):
    models: list[str] | None

    def route(self, method: str, pattern: str, handler: Any) -> None: ...

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse: ...

    def _generate_content(
        self, request: RecordedRequest, params: dict[str, str], *, reply_fn: Any = None
    ) -> FakeResponse: ...


@dataclass(frozen=True)
class SimCheckpoint:
    """An intermediate checkpoint of a tuning job, deployed on its own endpoint."""

    checkpoint_id: str
    epoch: int
    step: int
    endpoint: str

    def wire(self) -> dict[str, str]:
        """As ``tunedModel.checkpoints[]`` carries it (int64 fields as JSON strings)."""
        return {
            "checkpointId": self.checkpoint_id,
            "epoch": str(self.epoch),
            "step": str(self.step),
            "endpoint": self.endpoint,
        }


# What a checkpoint answers to a generateContent body: a str, a GeminiReply or a FakeResponse
# (typed Any here: vertex_server imports this module, not the other way round).
CheckpointReplyFn = Callable[[SimCheckpoint, dict[str, Any]], Any]


@dataclass
class SimTuningJob:
    """A tuning job and its timeline."""

    name: str
    body: dict[str, Any]
    created: float
    epochs: int
    state: str = "JOB_STATE_PENDING"
    active_s: float = 0.0
    epoch: int = 0
    step: int = 0
    # TensorBoard scalars: tag -> [(step, value)].
    scalars: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    checkpoints: list[SimCheckpoint] = field(default_factory=list)
    error: dict[str, Any] | None = None
    tuned_model: dict[str, Any] | None = None

    @property
    def spec_key(self) -> str:
        return next(k for k in _SPECS if k in self.body)

    @property
    def job_number(self) -> str:
        return self.name.rsplit("/", 1)[-1]


class VertexTuningSim(StorageRoutes):
    """Tuning jobs, tuned endpoints and a Cloud Storage bucket store (thread-safe)."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.clock = 0.0
        self.pending_s = 10.0
        self.epoch_s = 20.0
        self.steps_per_epoch = 5
        self.default_epochs = 3
        self.with_experiment = True  # name an experiment whose TensorBoard holds the curves
        self.fail_at_epoch: int | None = None
        # Scripted answers of checkpoint endpoints; None: they answer like the base model.
        self.checkpoint_reply_fn: CheckpointReplyFn | None = None
        self.drop_create_replies = 0
        self.page_size_cap = 2  # small pages, so listing must follow nextPageToken
        self.jobs: dict[str, SimTuningJob] = {}
        self.objects: dict[tuple[str, str], bytes] = {}  # (bucket, name) -> bytes
        self._lock = threading.RLock()
        self._counter = 1000

    # -- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the simulated clock; every job progresses by what it can do in that time."""
        with self._lock:
            self.clock += seconds
            for job in self.jobs.values():
                if job.state == "JOB_STATE_CANCELLING":
                    job.state, job.ended = "JOB_STATE_CANCELLED", self.clock
                    job.error = {"code": 1, "message": "CANCELLED"}
                elif job.state not in _FINISHED:
                    job.active_s += seconds
                    self._tick(job)

    @property
    def job_count(self) -> int:
        """How many tuning jobs were created."""
        with self._lock:
            return len(self.jobs)

    def register(self) -> None:
        """Add the routes to the server."""
        r = self.server.route
        r("POST", f"{_PARENT}/tuningJobs", self._create)
        r("GET", f"{_PARENT}/tuningJobs", self._list)
        r("GET", f"{_PARENT}/tuningJobs/(?P<job>[^/:]+)", self._get)
        r("POST", f"{_PARENT}/tuningJobs/(?P<job>[^/:]+):cancel", self._cancel)
        r("POST", f"{_PARENT}/endpoints/(?P<endpoint>[^/:]+):generateContent", self._endpoint)
        tb = f"{_PARENT}/tensorboards/(?P<tb>[^/]+)/experiments/(?P<experiment>[^/]+)"
        r("GET", f"{_PARENT}/metadataStores/default/contexts/(?P<context>[^/]+)", self._context)
        r("GET", f"{tb}/runs", self._runs)
        r("GET", f"{tb}/runs/(?P<run>[^/]+)/timeSeries", self._series_list)
        r("GET", f"{tb}/runs/(?P<run>[^/]+)/timeSeries/(?P<series>[^/:]+):read", self._series_read)
        r("POST", "/upload/storage/v1/b/(?P<bucket>[^/]+)/o", self._upload)
        r("GET", "/storage/v1/b/(?P<bucket>[^/]+)", self._bucket)
        r("GET", "/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)", self._object)

    # -- helpers -----------------------------------------------------------------------------

    def _time(self, t: float | None) -> str | None:
        if t is None:
            return None
        return (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")

    def _error(self, status: int, message: str, kind: str | None = None) -> FakeResponse:
        return self.server.error_response(status, message, error_type=kind)

    def _job_json(self, job: SimTuningJob) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": job.name,
            "baseModel": job.body["baseModel"],
            "state": job.state,
            "createTime": self._time(job.created),
            "updateTime": self._time(self.clock),
            job.spec_key: job.body[job.spec_key],
        }
        for key in ("tunedModelDisplayName", "description", "labels"):
            if key in job.body:
                out[key] = job.body[key]
        if job.started is not None:
            out["startTime"] = self._time(job.started)
            out["tuningDataStats"] = self._stats(job)
        if job.ended is not None:
            out["endTime"] = self._time(job.ended)
        if job.error is not None:
            out["error"] = job.error
        if job.tuned_model is not None:
            out["tunedModel"] = {
                **job.tuned_model,
                "checkpoints": [c.wire() for c in job.checkpoints],
            }
        if self.with_experiment:
            out["experiment"] = self._experiment(job)
        return out

    def _parent(self, job: SimTuningJob) -> str:
        return job.name.split("/tuningJobs/")[0]

    def _experiment(self, job: SimTuningJob) -> str:
        return (
            f"{self._parent(job)}/metadataStores/default/contexts/"
            f"tuning-experiment-{job.job_number}"
        )

    def _tensorboard(self, job: SimTuningJob) -> str:
        return f"{self._parent(job)}/tensorboards/77"

    def _stats(self, job: SimTuningJob) -> dict[str, Any]:
        uri = job.body[job.spec_key].get("trainingDatasetUri", "")
        data = self._read_gcs(uri) or b""
        lines = [line for line in data.splitlines() if line.strip()]
        # int64 fields travel as JSON strings, as Vertex sends them.
        stats = {
            "tuningDatasetExampleCount": str(len(lines)),
            "totalBillableTokenCount": str(len(data.split())),
            "tuningStepCount": str(len(lines) * job.epochs),
        }
        key = {
            "supervisedTuningSpec": "supervisedTuningDataStats",
            "preferenceOptimizationSpec": "preferenceOptimizationDataStats",
            "reinforcementTuningSpec": "reinforcementTuningDataStats",
        }[job.spec_key]
        if key == "supervisedTuningDataStats":
            return {key: stats}
        return {key: {"tuningDatasetExampleCount": stats["tuningDatasetExampleCount"]}}

    # -- tuning jobs -------------------------------------------------------------------------

    def _validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Invalid JSON payload received."
        if not isinstance(body.get("baseModel"), str):
            return "baseModel is required."
        specs = [k for k in _SPECS if k in body]
        if len(specs) != 1:
            return "Exactly one tuning spec must be set."
        spec = body[specs[0]]
        uri = spec.get("trainingDatasetUri")
        if not isinstance(uri, str) or not uri.startswith("gs://"):
            return "trainingDatasetUri must be a gs:// URI."
        for key in ("trainingDatasetUri", "validationDatasetUri"):
            value = spec.get(key)
            if value is not None and value.startswith("gs://") and self._read_gcs(value) is None:
                return f"Dataset {value} does not exist or is not accessible."
            data = self._read_gcs(value) if value else None
            problem = gemini_image_problem(data, self._read_gcs) if data else None
            if problem is not None:
                return f"Dataset {value}: {problem}."
        hyper = spec.get("hyperParameters") or {}
        epochs = hyper.get("epochCount")
        if epochs is not None and (not isinstance(epochs, int) or not 1 <= epochs <= 100):
            return f"epochCount must be an integer in [1, 100], not {epochs!r}."
        size = hyper.get("adapterSize")
        if size is not None and size not in _ADAPTER_SIZES:
            return f"Invalid adapterSize: {size!r}."
        if specs[0] == "reinforcementTuningSpec" and not (
            "singleRewardConfig" in spec or "compositeRewardConfig" in spec
        ):
            return "Reinforcement tuning needs singleRewardConfig or compositeRewardConfig."
        for k, v in (body.get("labels") or {}).items():
            if not k or not _LABEL_RE.match(k) or not _LABEL_RE.match(str(v)):
                return f"Invalid label {k}={v}: use lowercase letters, digits, '-' and '_'."
        return None

    def _create(self, request: RecordedRequest, params: dict[str, str]) -> Scripted:
        try:
            body = request.json()
        except ValueError:
            return self._error(400, "Invalid JSON payload received.")
        with self._lock:
            problem = self._validate(body)
            if problem:
                return self._error(400, problem)
            self._counter += 1
            name = (
                f"projects/{params['project']}/locations/{params['location']}"
                f"/tuningJobs/{self._counter}"
            )
            hyper = body[next(k for k in _SPECS if k in body)].get("hyperParameters") or {}
            job = SimTuningJob(
                name, body, self.clock, int(hyper.get("epochCount") or self.default_epochs)
            )
            self.jobs[job.job_number] = job
            if self.drop_create_replies > 0:
                self.drop_create_replies -= 1
                return DROP
            return FakeResponse(200, self._job_json(job))

    def _list(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        size = min(int((request.query.get("pageSize") or ["50"])[0]), self.page_size_cap)
        start = int((request.query.get("pageToken") or ["0"])[0])
        with self._lock:
            # Newest first, as Vertex lists them.
            jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            page = jobs[start : start + size]
            body: dict[str, Any] = {"tuningJobs": [self._job_json(j) for j in page]}
            if start + size < len(jobs):
                body["nextPageToken"] = str(start + size)
        return FakeResponse(200, body)

    def _find(self, params: dict[str, str]) -> SimTuningJob | FakeResponse:
        job = self.jobs.get(params["job"])
        if job is None:
            return self._error(404, f"TuningJob {params['job']} not found.")
        return job

    def _get(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._find(params)
            if isinstance(job, FakeResponse):
                return job
            return FakeResponse(200, self._job_json(job))

    def _cancel(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._find(params)
            if isinstance(job, FakeResponse):
                return job
            if job.state in (*_FINISHED, "JOB_STATE_CANCELLING"):
                return self._error(
                    400,
                    f"Cannot cancel tuning job {job.name} in state {job.state}.",
                    "FAILED_PRECONDITION",
                )
            job.state = "JOB_STATE_CANCELLING"
            return FakeResponse(200, {})

    def _deployed(self, endpoint: str) -> tuple[str, SimCheckpoint | None] | None:
        """The base model behind ``endpoint`` and the checkpoint it serves (``None``: the
        tuned model's own endpoint); ``None`` when nothing is deployed there."""
        with self._lock:
            for job in self.jobs.values():
                # Checkpoints are listed, and so callable, once the tuned model exists.
                if job.tuned_model is None:
                    continue
                base = job.body["baseModel"]
                if job.tuned_model["endpoint"] == endpoint:
                    return base, None
                for checkpoint in job.checkpoints:
                    if checkpoint.endpoint == endpoint:
                        return base, checkpoint
        return None

    def _endpoint(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        name = (
            f"projects/{params['project']}/locations/{params['location']}"
            f"/endpoints/{params['endpoint']}"
        )
        found = self._deployed(name)
        if found is None:
            return self._error(404, f"Endpoint {name} not found.")
        base, checkpoint = found
        script = self.checkpoint_reply_fn
        reply_fn = None
        if checkpoint is not None and script is not None:
            reply_fn = partial(script, checkpoint)
        # A tuned endpoint answers like its base model would, unless its checkpoint is scripted.
        return self.server._generate_content(request, {**params, "model": base}, reply_fn=reply_fn)

    def _tick(self, job: SimTuningJob) -> None:
        if job.state == "JOB_STATE_PENDING" and job.active_s >= self.pending_s:
            job.state, job.started = "JOB_STATE_RUNNING", self.clock
        if job.state != "JOB_STATE_RUNNING":
            return
        per_step = self.epoch_s / self.steps_per_epoch
        total = job.epochs * self.steps_per_epoch
        due = min(total, int((job.active_s - self.pending_s) // per_step))
        with_validation = "validationDatasetUri" in job.body[job.spec_key]
        while job.step < due:
            job.step += 1
            # Deterministic curves that improve with the step, so tests can tell points apart.
            loss = round(2.0 / (1 + 0.5 * job.step), 4)
            self._scalar(job, "/train_total_loss", loss)
            self._scalar(job, "/train_fraction_of_correct_next_step_preds", round(1 - loss / 3, 4))
            if job.step % self.steps_per_epoch:
                continue
            job.epoch += 1
            if with_validation:
                self._scalar(job, "/eval_total_loss", round(loss * 1.1, 4))
                self._scalar(
                    job, "/eval_fraction_of_correct_next_step_preds", round(1 - loss * 1.1 / 3, 4)
                )
            if self.fail_at_epoch is not None and job.epoch >= self.fail_at_epoch:
                job.state, job.ended = "JOB_STATE_FAILED", self.clock
                job.error = {"code": 13, "message": "Internal error while tuning."}
                return
            job.checkpoints.append(
                SimCheckpoint(
                    checkpoint_id=str(job.epoch),
                    epoch=job.epoch,
                    step=job.step,
                    endpoint=f"{self._parent(job)}/endpoints/{job.job_number}{job.epoch:02d}",
                )
            )
        if job.step >= total:
            job.state, job.ended = "JOB_STATE_SUCCEEDED", self.clock
            job.tuned_model = {
                "model": f"{self._parent(job)}/models/{job.job_number}@1",
                "endpoint": f"{self._parent(job)}/endpoints/{job.job_number}",
            }

    def _scalar(self, job: SimTuningJob, tag: str, value: float) -> None:
        job.scalars.setdefault(tag, []).append((job.step, value))

    # -- Vertex ML Metadata and TensorBoard (the experiment's curves) ------------------------

    # -- Cloud Storage -----------------------------------------------------------------------
