"""Together's files, fine-tuning and chat API on 127.0.0.1, on a clock the test controls.

The wire format is ``together-openapi-2026-04.yaml``: every JSON request is checked against the
path's request schema (an invalid one gets Together's 400) and every reply against its response
schema; a reply that does not match is recorded in ``server.spec_errors`` so tests can assert
the fake itself speaks the spec. Chat completions are the OpenAI fake's (Together serves the
OpenAI-compatible ``/v1/chat/completions``); a fine-tuned model answers once its job completed.

Timeline, moved by ``server.advance(seconds)``: ``pending`` (``pending_s``) -> ``queued``
(``queue_s``) -> ``running``: one step every ``step_s`` (``steps_per_epoch`` per epoch), each
with a ``/metrics`` row (``train/loss``, ``train/learning_rate``, ``train/global_step``, and
``eval/loss`` at the end of an epoch when there is a validation file), an ``epoch_complete`` and
a ``checkpoint_save`` event per epoch -> ``compressing`` -> ``uploading`` -> ``completed`` with
``model_output_name``. ``cancel`` puts a job in ``cancel_requested``; the next advance cancels
it. ``fail_at_step`` makes jobs end in ``error``. ``drop_create_replies = n`` creates the next n
jobs but closes the connection instead of answering; ``advance_per_poll`` moves the clock on
every ``GET /v1/fine-tunes/{id}``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.fakes.http_server import DROP, FakeResponse, RecordedRequest, Scripted
from tests.fakes.image_rules import chat_image_problem
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.together_spec import request_errors, response_errors

DEFAULT_TOGETHER_KEY = "together-test-key-0123456789"
EPOCH_BASE = datetime(2026, 12, 1, tzinfo=UTC)  # simulated time 0
# What the fake charges per million trained tokens; a test constant, not Together's price.
FAKE_PRICE_PER_1M = 0.5


@dataclass
class SimFile:
    """An uploaded file."""

    id: str
    filename: str
    data: bytes
    created: float


@dataclass
class SimJob:
    """One fine-tuning job and where it is on its timeline."""

    id: str
    body: dict[str, Any]
    created: float
    status: str = "pending"
    active_s: float = 0.0
    step: int = 0
    updated: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return int(self.body.get("n_epochs", 1))


class FakeTogetherServer(FakeOpenAIServer):
    """Together's REST API: ``base_url + "/v1"`` is what a client's base URL is."""

    def __init__(self, *, api_key: str | None = DEFAULT_TOGETHER_KEY) -> None:
        super().__init__(api_key=api_key, models=None)
        openai_routes = list(self._routes)
        self._routes.clear()
        self._register_together()
        # Together's /v1/files differs from OpenAI's: its routes are matched first.
        self._routes.extend(openai_routes)
        self.tlock = threading.Lock()
        self.clock = 0.0
        self.files: dict[str, SimFile] = {}
        self.jobs: dict[str, SimJob] = {}
        self.spec_errors: list[str] = []
        self.pending_s = 10.0
        self.queue_s = 10.0
        self.step_s = 10.0
        self.steps_per_epoch = 3
        self.finish_s = 10.0  # compressing, then uploading, each
        self.fail_at_step: int | None = None
        self.drop_create_replies = 0
        self.user_limit = 100.0
        # Seconds the clock moves on every GET of a job: lets a real poll loop (the CLI, a
        # replay) see the job progress without a test thread driving the clock.
        self.advance_per_poll = 0.0
        self._seq = itertools.count(1)

    # -- the test's controls -------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the simulated clock; every job walks its timeline."""
        with self.tlock:
            self.clock += seconds
            for job in self.jobs.values():
                if job.status in ("completed", "cancelled", "error"):
                    continue
                if job.status == "cancel_requested":
                    job.status, job.updated = "cancelled", self.clock
                    self._event(job, "job_stopped", "Job was cancelled")
                    continue
                job.active_s += seconds
                self._tick(job)

    @property
    def job_count(self) -> int:
        """How many jobs were created."""
        return len(self.jobs)

    def creates(self) -> list[RecordedRequest]:
        """The ``POST /v1/fine-tunes`` requests received."""
        return self.requests_to("/v1/fine-tunes", "POST")

    # -- routing -------------------------------------------------------------------------

    def _register_together(self) -> None:
        self.route("GET", "/v1/fine-tunes/models/limits", self._model_limits)
        self.route("GET", "/v1/files", self._list_files)
        self.route("POST", "/v1/files/upload", self._upload)
        self.route("POST", "/v1/fine-tunes/estimate-price", self._estimate)
        self.route("POST", "/v1/fine-tunes", self._create)
        self.route("GET", "/v1/fine-tunes", self._list_jobs)
        self.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)", self._get_job)
        self.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)/events", self._events)
        self.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)/checkpoints", self._checkpoints)
        self.route("GET", "/v1/fine-tunes/(?P<id>[^/]+)/metrics", self._metrics)
        self.route("POST", "/v1/fine-tunes/(?P<id>[^/]+)/cancel", self._cancel)

    def _reply(self, path: str, method: str, body: Any) -> FakeResponse:
        problems = response_errors(path, method, body)
        self.spec_errors.extend(f"{method} {path}: {p}" for p in problems)
        return FakeResponse(200, body)

    # The vision bases of Together's fine-tuning docs (docs.together.ai/docs/fine-tuning/vision).
    VISION_MODELS = frozenset(
        {
            "Qwen/Qwen3-VL-8B-Instruct",
            "Qwen/Qwen3-VL-30B-A3B-Instruct",
            "Qwen/Qwen3-VL-235B-A22B-Instruct",
            "google/gemma-3-4b-it-VLM",
        }
    )

    def _model_limits(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        name = (request.query.get("model_name") or [""])[0]
        if not name:
            return self._bad("model_name is required")
        lora = {
            "max_batch_size": 32,
            "max_batch_size_dpo": 16,
            "min_batch_size": 8,
            "max_rank": 64,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        }
        body = {
            "model_name": name,
            "lora_training": lora,
            "max_num_epochs": 20,
            "max_num_evals": 100,
            "max_learning_rate": 1.0,
            "min_learning_rate": 1e-8,
            "supports_vision": name in self.VISION_MODELS,
            "supports_tools": True,
            "supports_reasoning": False,
            "merge_output_lora": False,
        }
        return self._reply("/fine-tunes/models/limits", "GET", body)

    def _bad(self, message: str) -> FakeResponse:
        return self.error_response(400, message, error_type="invalid_request_error")

    def _json(self, request: RecordedRequest, path: str) -> tuple[Any, FakeResponse | None]:
        denied = self.check_auth(request)
        if denied is not None:
            return None, denied
        try:
            body = request.json() if request.body else None
        except ValueError:
            return None, self._bad("Invalid JSON body.")
        problems = request_errors(path, request.method, body)
        if problems:
            return None, self._bad("; ".join(problems))
        return body, None

    def _ts(self, t: float) -> str:
        return (EPOCH_BASE + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")

    # -- files ---------------------------------------------------------------------------

    def _file_object(self, f: SimFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "object": "file",
            "created_at": int(EPOCH_BASE.timestamp() + f.created),
            "filename": f.filename,
            "bytes": len(f.data),
            "purpose": "fine-tune",
            "FileType": "jsonl",
            "Processed": True,
        }

    def _list_files(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        with self.tlock:
            data = [self._file_object(f) for f in self.files.values()]
        return FakeResponse(200, {"data": data})

    def _upload(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return self._bad("Expected multipart/form-data.")
        message = BytesParser(policy=HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + request.body
        )
        fields = {
            str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        for required in ("purpose", "file_name", "file"):
            if required not in fields:
                return self._bad(f"Missing required field: {required}")
        if fields["purpose"] != b"fine-tune":
            return self._bad("purpose must be fine-tune for training data")
        data: bytes = fields["file"]
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    return self._bad(f"Line {number} of the file is not valid JSON")
        problem = chat_image_problem(data, "together")
        if problem is not None:
            return self._bad(problem)
        with self.tlock:
            f = SimFile(f"file-{next(self._seq)}", fields["file_name"].decode(), data, self.clock)
            self.files[f.id] = f
        return self._reply("/files/upload", "POST", self._file_object(f))

    # -- jobs ----------------------------------------------------------------------------

    def _tokens(self, file_id: str | None) -> int:
        f = self.files.get(file_id or "")
        return 0 if f is None else max(1, len(f.data) // 4)

    def _estimate(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        body, error = self._json(request, "/fine-tunes/estimate-price")
        if error is not None:
            return error
        if body["training_file"] not in self.files:
            return self._bad(f"training_file {body['training_file']} not found")
        train = self._tokens(body["training_file"]) * int(body.get("n_epochs", 1))
        evals = self._tokens(body.get("validation_file")) * int(body.get("n_evals", 0))
        price = round((train + evals) / 1e6 * FAKE_PRICE_PER_1M, 6)
        reply = {
            "estimated_total_price": price,
            "allowed_to_proceed": price <= self.user_limit,
            "user_limit": self.user_limit,
            "estimated_train_token_count": train,
            "estimated_eval_token_count": evals,
        }
        return self._reply("/fine-tunes/estimate-price", "POST", reply)

    def _job_object(self, job: SimJob, *, full: bool) -> dict[str, Any]:
        body = job.body
        out: dict[str, Any] = {
            "id": job.id,
            "status": job.status,
            "created_at": self._ts(job.created),
            "updated_at": self._ts(job.updated),
            "model": body["model"],
            "training_file": body["training_file"],
            "n_epochs": job.epochs,
            "n_checkpoints": int(body.get("n_checkpoints", 1)),
            "n_evals": int(body.get("n_evals", 0)),
            "learning_rate": float(body.get("learning_rate", 1e-5)),
            "training_method": body.get("training_method", {"method": "sft"}),
            "token_count": self._tokens(body["training_file"]) * job.epochs,
        }
        if "validation_file" in body:
            out["validation_file"] = body["validation_file"]
        if "suffix" in body:
            out["suffix"] = body["suffix"]
        if body.get("training_type"):
            out["training_type"] = body["training_type"]
        if job.status == "completed":
            out["model_output_name"] = self.output_name(job)
        if full:
            out["events"] = job.events
            out["epochs_completed"] = job.step // self.steps_per_epoch
        return out

    def output_name(self, job: SimJob) -> str:
        """The fine-tuned model's name, as Together builds it (account/base-suffix-id)."""
        base = str(job.body["model"]).split("/")[-1]
        suffix = job.body.get("suffix", "ft")
        return f"ftwizard-test/{base}-{suffix}-{job.id[-6:]}"

    def _create(self, request: RecordedRequest, _: dict[str, str]) -> Scripted:
        body, error = self._json(request, "/fine-tunes")
        if error is not None:
            return error
        for name in ("training_file", "validation_file"):
            if name in body and body[name] not in self.files:
                return self._bad(f"{name} {body[name]} not found")
        with self.tlock:
            job = SimJob(f"ft-{next(self._seq):04d}-fake", body, self.clock, updated=self.clock)
            self.jobs[job.id] = job
            self._event(job, "job_pending", "Fine tune request created")
            if self.drop_create_replies > 0:
                self.drop_create_replies -= 1
                return DROP
            return self._reply("/fine-tunes", "POST", self._job_object(job, full=False))

    def _list_jobs(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        with self.tlock:
            data = [self._job_object(j, full=False) for j in self.jobs.values()]
        return self._reply("/fine-tunes", "GET", {"data": data})

    def _find(self, request: RecordedRequest, params: dict[str, str]) -> Any:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        job = self.jobs.get(params["id"])
        if job is None:
            return self.error_response(404, f"Fine-tune job {params['id']} not found")
        return job

    def _get_job(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._find(request, params)
        if isinstance(job, FakeResponse):
            return job
        if self.advance_per_poll:
            self.advance(self.advance_per_poll)
        with self.tlock:
            return self._reply("/fine-tunes/{id}", "GET", self._job_object(job, full=True))

    def _events(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._find(request, params)
        if isinstance(job, FakeResponse):
            return job
        with self.tlock:
            return self._reply("/fine-tunes/{id}/events", "GET", {"data": list(job.events)})

    def _checkpoints(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._find(request, params)
        if isinstance(job, FakeResponse):
            return job
        with self.tlock:
            reply = {"data": list(job.checkpoints)}
        return self._reply("/fine-tunes/{id}/checkpoints", "GET", reply)

    def _metrics(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._find(request, params)
        if isinstance(job, FakeResponse):
            return job
        body, error = self._json(request, "/fine-tunes/{id}/metrics")
        if error is not None:
            return error
        low = int((body or {}).get("global_step_from", 0))
        high = int((body or {}).get("global_step_to", 10**9))
        with self.tlock:
            rows = [m for m in job.metrics if low <= m["train/global_step"] <= high]
        return self._reply("/fine-tunes/{id}/metrics", "GET", {"metrics": rows})

    def _cancel(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        job = self._find(request, params)
        if isinstance(job, FakeResponse):
            return job
        with self.tlock:
            if job.status in ("completed", "cancelled", "error"):
                return self._bad(f"Job {job.id} has already finished")
            job.status, job.updated = "cancel_requested", self.clock
            self._event(job, "cancel_requested", "Cancel requested")
            return self._reply("/fine-tunes/{id}/cancel", "POST", self._job_object(job, full=False))

    # -- the timeline --------------------------------------------------------------------

    def _event(self, job: SimJob, kind: str, message: str, **extra: Any) -> None:
        level = "error" if kind == "job_error" else "info"
        event = {
            "object": "fine-tune-event",
            "created_at": self._ts(self.clock),
            "level": level,
            "message": message,
            "type": kind,
            "param_count": 0,
            "token_count": 0,
            "total_steps": job.epochs * self.steps_per_epoch,
            "wandb_url": "",
            "step": job.step,
            "checkpoint_path": "",
            "model_path": "",
            "training_offset": 0,
            "hash": f"{job.id}-{len(job.events)}",
        }
        event.update(extra)
        job.events.append(event)

    def _tick(self, job: SimJob) -> None:
        total = job.epochs * self.steps_per_epoch
        start_s = self.pending_s + self.queue_s
        if job.status == "pending" and job.active_s >= self.pending_s:
            job.status, job.updated = "queued", self.clock
        if job.status == "queued" and job.active_s >= start_s:
            job.status, job.updated = "running", self.clock
            self._event(job, "training_start", "Training started")
        if job.status == "running":
            due = min(total, int((job.active_s - start_s) // self.step_s))
            while job.step < due:
                job.step += 1
                if self.fail_at_step is not None and job.step >= self.fail_at_step:
                    job.status, job.updated = "error", self.clock
                    self._event(job, "job_error", "CUDA out of memory during training")
                    return
                loss = round(2.0 / (1 + 0.5 * job.step), 4)
                row = {
                    "train/loss": loss,
                    "train/learning_rate": 1e-5,
                    "train/global_step": float(job.step),
                }
                epoch_done = job.step % self.steps_per_epoch == 0
                if epoch_done and "validation_file" in job.body:
                    row["eval/loss"] = round(loss * 1.1, 4)
                job.metrics.append(row)
                if epoch_done:
                    epoch = job.step // self.steps_per_epoch
                    self._event(job, "epoch_complete", f"Epoch {epoch} completed")
                    kind = "final" if job.step == total else "intermediate"
                    job.checkpoints.append(
                        {
                            "step": job.step,
                            "created_at": self._ts(self.clock),
                            "path": f"s3://together-fake/{job.id}/checkpoint-{job.step}",
                            "checkpoint_type": kind,
                        }
                    )
                    self._event(job, "checkpoint_save", f"Checkpoint saved at step {job.step}")
            job.updated = self.clock
            if job.step >= total:
                job.status = "compressing"
                self._event(job, "training_complete", "Training completed")
        done_s = start_s + total * self.step_s
        if job.status == "compressing" and job.active_s >= done_s + self.finish_s:
            job.status, job.updated = "uploading", self.clock
        if job.status == "uploading" and job.active_s >= done_s + 2 * self.finish_s:
            job.status, job.updated = "completed", self.clock
            self._event(job, "job_complete", "Job completed")
