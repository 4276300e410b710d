"""The fine-tuning job routes of :class:`~tests.fakes.fireworks_server.FakeFireworksServer`.

``supervisedFineTuningJobs`` take their settings flat, ``dpoJobs`` and
``reinforcementFineTuningJobs`` under ``trainingConfig`` (Gateway REST API v4.259.0); the
client picks the id with ``?<collection>Id=``; a second create with the same id is a 409 and an
unknown field a 400, as the gateway answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_server import DROP, FakeResponse, RecordedRequest, Scripted

EPOCH = "2026-12-04T00:00:00Z"

_TRAINING_CONFIG = {
    "outputModel",
    "baseModel",
    "warmStartFrom",
    "jinjaTemplate",
    "learningRate",
    "maxContextLength",
    "loraRank",
    "region",
    "epochs",
    "batchSize",
    "gradientAccumulationSteps",
    "learningRateWarmupSteps",
    "batchSizeSamples",
    "optimizerWeightDecay",
}
_COLLECTIONS: dict[str, tuple[str, set[str]]] = {
    "supervisedFineTuningJobs": (
        "supervisedFineTuningJobId",
        {
            "dataset",
            "displayName",
            "evaluationDataset",
            "isTurbo",
            "evalAutoCarveout",
            "nodes",
            "earlyStop",
            "wandbConfig",
            "mtpEnabled",
        }
        | _TRAINING_CONFIG,
    ),
    "dpoJobs": (
        "dpoJobId",
        {"dataset", "displayName", "trainingConfig", "wandbConfig", "lossConfig"},
    ),
    "reinforcementFineTuningJobs": (
        "reinforcementFineTuningJobId",
        {
            "dataset",
            "evaluator",
            "displayName",
            "evaluationDataset",
            "evalAutoCarveout",
            "trainingConfig",
            "wandbConfig",
            "inferenceParameters",
            "chunkSize",
            "mcpServer",
            "nodeCount",
            "lossConfig",
        },
    ),
}


@dataclass
class SimJob:
    """One fine-tuning job and its place on the timeline."""

    name: str
    collection: str
    body: dict[str, Any]
    state: str = "JOB_STATE_CREATING"
    active_s: float = 0.0
    percent: float = 0.0
    completed: float | None = None
    message: str = ""
    events: list[str] = field(default_factory=list)


def _ts(seconds: float) -> str:
    whole = int(seconds)
    return f"2026-12-04T{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}Z"


class FireworksJobRoutes:
    """Job routes and the job timeline; the server supplies the state, the timing and
    ``error_response`` / ``_account_ok`` / ``_name``."""

    jobs: dict[str, SimJob]
    datasets: dict[str, dict[str, Any]]
    evaluators: dict[str, dict[str, Any]]
    clock: float
    create_s: float
    queue_s: float
    percent_per_s: float
    write_s: float
    fail_at_percent: float | None
    drop_create_replies: int
    advance_per_get: float
    advance: Any
    _sim_lock: threading.RLock
    error_response: Any
    _account_ok: Any
    _name: Any

    def register_jobs(self, route: Any, prefix: str) -> None:
        """Add the job routes under ``prefix`` (``/v1/accounts/(?P<acct>...)``)."""
        for collection in _COLLECTIONS:
            base = f"{prefix}/(?P<coll>{collection})"
            route("POST", base, self._create_job)
            route("GET", base, self._list_jobs)
            route("GET", f"{base}/(?P<id>[^/:]+)", self._get_job)
            route("POST", f"{base}/(?P<id>[^/:]+):cancel", self._cancel)
            route("POST", f"{base}/(?P<id>[^/:]+):resume", self._resume)

    def _tick(self, job: SimJob, seconds: float) -> None:
        if job.completed is not None or job.state == "JOB_STATE_PAUSED":
            return
        if job.state == "JOB_STATE_CANCELLING":
            job.state, job.completed = "JOB_STATE_CANCELLED", self.clock
            return
        job.active_s += seconds
        t = job.active_s
        if t < self.create_s:
            return
        if t < self.create_s + self.queue_s:
            job.state = "JOB_STATE_PENDING"
            return
        running = t - self.create_s - self.queue_s
        job.percent = min(100.0, running * self.percent_per_s)
        if self.fail_at_percent is not None and job.percent >= self.fail_at_percent:
            job.percent = self.fail_at_percent
            job.state, job.completed = "JOB_STATE_FAILED", self.clock
            job.message = f"training failed at {self.fail_at_percent:g}%: out of memory"
            return
        if job.percent < 100.0:
            job.state = "JOB_STATE_RUNNING"
            return
        if running - 100.0 / self.percent_per_s < self.write_s:
            job.state = "JOB_STATE_WRITING_RESULTS"
            return
        job.state, job.completed = "JOB_STATE_COMPLETED", self.clock

    # -- jobs --------------------------------------------------------------------------------

    def _job_problem(self, collection: str, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "the body must be a JSON object"
        unknown = sorted(set(body) - _COLLECTIONS[collection][1])
        if unknown:
            return f'Unknown name "{unknown[0]}": Cannot find field.'
        config = body if collection == "supervisedFineTuningJobs" else body.get("trainingConfig")
        if not isinstance(config, dict):
            return "trainingConfig is required"
        unknown = sorted(set(config) - _TRAINING_CONFIG) if config is not body else []
        if unknown:
            return f'Unknown name "{unknown[0]}" in trainingConfig'
        if not str(config.get("baseModel", "")).startswith("accounts/"):
            return "baseModel must be a model resource name (accounts/.../models/...)"
        for key in ("dataset", "evaluationDataset"):
            if key in body:
                dataset_id = str(body[key]).rsplit("/", 1)[-1]
                dataset = self.datasets.get(dataset_id)
                if dataset is None or not str(body[key]).startswith(self._name("datasets")):
                    return f"{key} {body[key]} not found"
                if dataset["state"] != "READY":
                    return f"{key} {body[key]} is not READY"
        if "dataset" not in body:
            return "dataset is required"
        if collection == "reinforcementFineTuningJobs":
            evaluator_id = str(body.get("evaluator", "")).rsplit("/", 1)[-1]
            evaluator = self.evaluators.get(evaluator_id)
            if evaluator is None:
                return f"evaluator {body.get('evaluator')} not found"
            if evaluator["state"] != "ACTIVE":
                return f"evaluator {body.get('evaluator')} is {evaluator['state']}, not ACTIVE"
        return None

    def _job_object(self, job: SimJob) -> dict[str, Any]:
        out = {
            **job.body,
            "name": job.name,
            "createTime": EPOCH,
            "state": job.state,
            "status": {"code": "OK" if not job.message else "INTERNAL", "message": job.message},
            "createdBy": "dev@example.com",
        }
        if job.completed is not None:
            out["completedTime"] = _ts(job.completed)
        if job.collection == "supervisedFineTuningJobs":
            out["jobProgress"] = {
                "percent": int(job.percent),
                "epoch": int(job.percent // (100 / max(1, int(job.body.get("epochs", 1))))),
                "inputTokens": 1000 * int(job.percent),
            }
        return out

    def _create_job(self, request: RecordedRequest, params: dict[str, str]) -> Scripted:
        denied = self._account_ok(params)
        if denied:
            return denied
        collection = params["coll"]
        id_param = _COLLECTIONS[collection][0]
        job_id = (request.query.get(id_param) or [f"job{len(self.jobs) + 1}"])[0]
        body = request.json()
        with self._sim_lock:
            problem = self._job_problem(collection, body)
            if problem:
                return self.error_response(400, problem)
            if job_id in self.jobs:
                return self.error_response(409, f"{collection} {job_id} already exists")
            job = SimJob(name=self._name(collection, job_id), collection=collection, body=body)
            self.jobs[job_id] = job
            if self.drop_create_replies > 0:
                self.drop_create_replies -= 1
                return DROP
            return FakeResponse(200, self._job_object(job))

    def _list_jobs(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        jobs = [self._job_object(j) for j in self.jobs.values() if j.collection == params["coll"]]
        return FakeResponse(
            200, {params["coll"]: jobs, "nextPageToken": "", "totalSize": len(jobs)}
        )

    def _job(self, params: dict[str, str]) -> SimJob | None:
        job = self.jobs.get(params["id"])
        return job if job is not None and job.collection == params["coll"] else None

    def _get_job(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        if self.advance_per_get:  # for headless runs that poll: each look moves the clock
            self.advance(self.advance_per_get)
        job = self._job(params)
        if job is None:
            return self.error_response(404, f"{params['coll']} {params['id']} not found")
        return FakeResponse(200, self._job_object(job))

    def _cancel(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._job(params)
        if job is None:
            return self.error_response(404, f"{params['coll']} {params['id']} not found")
        with self._sim_lock:
            if job.completed is not None:
                return self.error_response(400, f"job is already {job.state}")
            job.state = "JOB_STATE_CANCELLING"
        return FakeResponse(200, {})

    def _resume(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._job(params)
        if job is None or job.collection == "supervisedFineTuningJobs":
            return self.error_response(404, f"{params['coll']} {params['id']} cannot resume")
        with self._sim_lock:
            if job.state not in ("JOB_STATE_FAILED", "JOB_STATE_PAUSED", "JOB_STATE_CANCELLED"):
                return self.error_response(400, f"job is {job.state}")
            job.state, job.completed, job.message = "JOB_STATE_RUNNING", None, ""
        return FakeResponse(200, self._job_object(job))
