"""OpenAI's files and fine-tuning API, simulated on a clock the test controls.

:class:`FineTuningSim` holds files and jobs; :class:`~tests.fakes.openai_server.FakeOpenAIServer`
routes ``/v1/files*`` and ``/v1/fine_tuning/jobs*`` to it (its ``_register_fine_tuning``). No
real time passes: ``server.tuning.advance(seconds)`` moves the simulated clock, and each job
walks its timeline as it does:

``validating_files`` (``validate_s``) -> ``queued`` (``queue_s``) -> ``running``: one step every
``step_s`` with a ``metrics`` event (SFT/DPO: ``train_loss``, ``train_mean_token_accuracy``,
``valid_*`` with a validation file; RFT: ``train_mean_reward``, ``full_valid_mean_reward`` at
eval steps) and a checkpoint every ``checkpoint_every`` steps -> ``succeeded`` with a
``fine_tuned_model``. A paused job's clock stands still until it is resumed. ``fail_at_step``
makes a job fail there.

Lists come back newest first, the way OpenAI sends them, and ``after=<id>`` continues with
older entries. ``drop_create_replies = n`` creates the next n jobs but closes the connection
instead of answering: the "created, but the id never reached the client" case.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.fakes.http_server import DROP, FakeResponse, RecordedRequest, Scripted
from tests.fakes.openai_files import FileRoutes, SimFile
from tests.fakes.openai_job_checks import JobChecks, step_metrics

EPOCH_BASE = 1_800_000_000  # created_at of everything made at simulated time 0
_FINISHED = ("succeeded", "failed", "cancelled")


class _Server(Protocol):
    def route(self, method: str, pattern: str, handler: Any) -> None: ...

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse: ...


GraderCheck = Any  # Callable[[Any], str | None]: the fake's grader validation


@dataclass
class SimJob:
    """A fine-tuning job and its timeline."""

    id: str
    body: dict[str, Any]
    created: float
    total_steps: int
    checkpoint_every: int
    fail_at_step: int | None
    status: str = "validating_files"
    active_s: float = 0.0  # simulated seconds the job has progressed (not while paused)
    step: int = 0
    finished: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None

    @property
    def method(self) -> str:
        return str((self.body.get("method") or {}).get("type") or "supervised")


class FineTuningSim(FileRoutes, JobChecks):
    """Files and fine-tuning jobs on a simulated clock (thread-safe: the server is threaded)."""

    def __init__(self, server: _Server, grader_check: GraderCheck | None = None) -> None:
        self.server = server
        self.grader_check = grader_check
        self.clock = 0.0
        self.validate_s = 10.0
        self.queue_s = 10.0
        self.step_s = 10.0
        self.total_steps = 6
        self.checkpoint_every = 2
        self.fail_at_step: int | None = None
        self.file_processing_s = 0.0
        self.drop_create_replies = 0
        self.files: dict[str, SimFile] = {}
        self.jobs: dict[str, SimJob] = {}
        self._lock = threading.RLock()
        self._counter = 0

    # -- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the simulated clock; every job progresses by what it can do in that time."""
        with self._lock:
            self.clock += seconds
            for job in self.jobs.values():
                if job.status not in ("paused", *_FINISHED):
                    job.active_s += seconds
                    self._tick(job)

    def run_to_end(self, limit_s: float = 100_000.0, step_s: float = 5.0) -> None:
        """Advance until no job is active (paused jobs stay paused)."""
        spent = 0.0
        while spent < limit_s and any(
            j.status not in ("paused", *_FINISHED) for j in self.jobs.values()
        ):
            self.advance(step_s)
            spent += step_s

    @property
    def job_count(self) -> int:
        """How many jobs were created (the number idempotency tests assert on)."""
        with self._lock:
            return len(self.jobs)

    def register(self) -> None:
        """Add the routes to the server."""
        r = self.server.route
        r("POST", "/v1/files", self._create_file)
        r("GET", "/v1/files", self._list_files)
        r("GET", "/v1/files/(?P<file_id>[^/]+)", self._get_file)
        r("GET", "/v1/files/(?P<file_id>[^/]+)/content", self._file_content)
        r("POST", "/v1/fine_tuning/jobs", self._create_job)
        r("GET", "/v1/fine_tuning/jobs", self._list_jobs)
        r("GET", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)", self._get_job)
        r("GET", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)/events", self._list_events)
        r("GET", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)/checkpoints", self._list_checkpoints)
        r("POST", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)/cancel", self._cancel)
        r("POST", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)/pause", self._pause)
        r("POST", "/v1/fine_tuning/jobs/(?P<job_id>[^/]+)/resume", self._resume)

    # -- helpers -----------------------------------------------------------------------------

    def _next(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self._counter:06d}"

    def _ts(self, t: float) -> int:
        return EPOCH_BASE + int(t)

    def _invalid(self, message: str, param: str | None = None) -> FakeResponse:
        reply = self.server.error_response(400, message)
        reply.body["error"]["param"] = param
        return reply

    def _not_found(self, what: str, ident: str) -> FakeResponse:
        return self.server.error_response(404, f"No such {what}: {ident}")

    @staticmethod
    def _page(items: list[dict[str, Any]], request: RecordedRequest, default_limit: int) -> dict:
        # Newest first; "after" continues with the entries older than the given id.
        after = (request.query.get("after") or [None])[0]
        limit = int((request.query.get("limit") or [default_limit])[0])
        ordered = list(reversed(items))
        if after is not None:
            ids = [i["id"] for i in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        data = ordered[:limit]
        page: dict[str, Any] = {"object": "list", "data": data, "has_more": len(ordered) > limit}
        if data:
            page["first_id"], page["last_id"] = data[0]["id"], data[-1]["id"]
        return page

    # -- files -------------------------------------------------------------------------------

    # -- jobs --------------------------------------------------------------------------------

    def _job_object(self, job: SimJob) -> dict[str, Any]:
        body = job.body
        method = dict(body.get("method") or {"type": "supervised", "supervised": {}})
        hyper = dict((method.get(method["type"]) or {}).get("hyperparameters") or {})
        return {
            "id": job.id,
            "object": "fine_tuning.job",
            "created_at": self._ts(job.created),
            "error": job.error,
            "fine_tuned_model": job.fine_tuned_model,
            "finished_at": self._ts(job.finished) if job.finished is not None else None,
            "hyperparameters": {
                "batch_size": hyper.get("batch_size", "auto"),
                "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
                "n_epochs": hyper.get("n_epochs", "auto"),
            },
            "model": body["model"],
            "organization_id": "org-fake",
            "result_files": [],
            "status": job.status,
            "trained_tokens": job.trained_tokens,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "seed": body.get("seed", 42),
            "metadata": body.get("metadata"),
            "method": method,
            "user_provided_suffix": body.get("suffix"),
            "estimated_finish": None,
            "integrations": [],
        }

    def _create_job(self, request: RecordedRequest, _: dict[str, str]) -> Scripted:
        try:
            body = request.json()
        except ValueError:
            return self._invalid("We could not parse the JSON body of your request.")
        with self._lock:
            invalid = self._validate_job(body)
            if invalid is not None:
                return invalid
            job = SimJob(
                id=self._next("ftjob"),
                body=body,
                created=self.clock,
                total_steps=self.total_steps,
                checkpoint_every=self.checkpoint_every,
                fail_at_step=self.fail_at_step,
            )
            self.jobs[job.id] = job
            self._event(job, f"Created fine-tuning job: {job.id}")
            self._event(job, f"Validating training file: {body['training_file']}")
            if self.drop_create_replies > 0:
                self.drop_create_replies -= 1
                return DROP
            return FakeResponse(200, self._job_object(job))

    def _list_jobs(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        wanted = {
            key[len("metadata[") : -1]: values[0]
            for key, values in request.query.items()
            if key.startswith("metadata[") and key.endswith("]")
        }
        with self._lock:
            items = [
                self._job_object(j)
                for j in self.jobs.values()
                if all((j.body.get("metadata") or {}).get(k) == v for k, v in wanted.items())
            ]
        return FakeResponse(200, self._page(items, request, 20))

    def _job(self, job_id: str) -> SimJob | None:
        return self.jobs.get(job_id)

    def _get_job(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job(params["job_id"])
            if job is None:
                return self._not_found("fine-tuning job", params["job_id"])
            return FakeResponse(200, self._job_object(job))

    def _list_events(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job(params["job_id"])
            if job is None:
                return self._not_found("fine-tuning job", params["job_id"])
            return FakeResponse(200, self._page(job.events, request, 20))

    def _list_checkpoints(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job(params["job_id"])
            if job is None:
                return self._not_found("fine-tuning job", params["job_id"])
            return FakeResponse(200, self._page(job.checkpoints, request, 10))

    def _control(self, params: dict[str, str], action: str) -> FakeResponse:
        with self._lock:
            job = self._job(params["job_id"])
            if job is None:
                return self._not_found("fine-tuning job", params["job_id"])
            if action == "cancel":
                if job.status in _FINISHED:
                    return self._invalid(f"Job {job.id} has already completed ({job.status}).")
                job.status, job.finished = "cancelled", self.clock
                self._event(job, "Fine-tuning job cancelled")
            elif action == "pause":
                if job.status != "running":
                    return self._invalid(f"Job {job.id} is {job.status}; only running jobs pause.")
                job.status = "paused"
                self._event(job, "Fine-tuning job paused")
            else:
                if job.status != "paused":
                    return self._invalid(f"Job {job.id} is {job.status}; only paused jobs resume.")
                job.status = "running"
                self._event(job, "Fine-tuning job resumed")
            return FakeResponse(200, self._job_object(job))

    def _cancel(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        return self._control(params, "cancel")

    def _pause(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        return self._control(params, "pause")

    def _resume(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        return self._control(params, "resume")

    # -- the timeline ------------------------------------------------------------------------

    def _event(
        self,
        job: SimJob,
        message: str,
        *,
        kind: str = "message",
        data: dict[str, Any] | None = None,
        level: str = "info",
    ) -> None:
        job.events.append(
            {
                "id": self._next("ftevent"),
                "object": "fine_tuning.job.event",
                "created_at": self._ts(self.clock),
                "level": level,
                "message": message,
                "type": kind,
                "data": data or {},
            }
        )

    def _tick(self, job: SimJob) -> None:
        if job.status == "validating_files" and job.active_s >= self.validate_s:
            job.status = "queued"
            self._event(job, "Files validated, moving job to queued state")
        start = self.validate_s + self.queue_s
        if job.status == "queued" and job.active_s >= start:
            job.status = "running"
            self._event(job, "Fine-tuning job started")
        if job.status != "running":
            return
        due = min(job.total_steps, int((job.active_s - start) // self.step_s))
        with_validation = job.body.get("validation_file") is not None
        while job.step < due:
            job.step += 1
            if job.fail_at_step is not None and job.step >= job.fail_at_step:
                job.status, job.finished = "failed", self.clock
                job.error = {"code": "server_error", "message": "Training diverged.", "param": None}
                self._event(job, "Fine-tuning job failed: Training diverged.", level="error")
                return
            data: dict[str, Any] = {"step": job.step, "total_steps": job.total_steps}
            data.update(step_metrics(job.method, job.step, with_validation))
            summary = ", ".join(f"{k}={v}" for k, v in data.items() if k != "total_steps")
            self._event(
                job, f"Step {job.step}/{job.total_steps}: {summary}", kind="metrics", data=data
            )
            if job.step % job.checkpoint_every == 0 or job.step == job.total_steps:
                self._checkpoint(job, data)
        if job.step >= job.total_steps:
            job.status, job.finished = "succeeded", self.clock
            suffix = job.body.get("suffix") or ""
            job.fine_tuned_model = f"ft:{job.body['model']}:fake-org:{suffix}:{job.id[-6:]}"
            training = self.files[job.body["training_file"]]
            method = job.body.get("method") or {}
            hyper = (method.get(job.method) or {}).get("hyperparameters") or {}
            n_epochs = hyper.get("n_epochs", "auto")
            job.trained_tokens = len(training.data.split()) * (
                3 if n_epochs == "auto" else n_epochs
            )
            self._event(job, f"New fine-tuned model created: {job.fine_tuned_model}")
            self._event(job, "The job has successfully completed")

    def _checkpoint(self, job: SimJob, data: dict[str, Any]) -> None:
        metrics = {k: v for k, v in data.items() if k != "total_steps"}
        if "valid_loss" in metrics:
            metrics["full_valid_loss"] = metrics["valid_loss"]
            metrics["full_valid_mean_token_accuracy"] = metrics["valid_mean_token_accuracy"]
        suffix = job.body.get("suffix") or ""
        job.checkpoints.append(
            {
                "id": self._next("ftckpt"),
                "object": "fine_tuning.job.checkpoint",
                "created_at": self._ts(self.clock),
                "fine_tuned_model_checkpoint": (
                    f"ft:{job.body['model']}:fake-org:{suffix}:{job.id[-6:]}:ckpt-step-{job.step}"
                ),
                "fine_tuning_job_id": job.id,
                "step_number": job.step,
                "metrics": metrics,
            }
        )
