"""Fireworks' fine-tuning REST API and its OpenAI-compatible chat, on a clock the test controls.

Speaks the Gateway REST API (v4.259.0) as documented at docs.fireworks.ai/api-reference:
datasets (``POST datasets`` + ``POST datasets/ID:upload`` multipart, ``READY`` once
uploaded), evaluators (``POST evaluatorsV2``, ``BUILDING`` -> ``ACTIVE`` after ``build_s``),
``supervisedFineTuningJobs`` / ``dpoJobs`` / ``reinforcementFineTuningJobs`` (create with the
client's id in the query, get, list, ``:cancel``, ``:resume``), and
``/inference/v1/chat/completions``. Unknown fields in a create body are a 400, as the gateway
rejects them; a second create with the same id is a 409.

No real time passes: ``server.advance(seconds)`` moves every job along
``JOB_STATE_CREATING`` (``create_s``) -> ``JOB_STATE_PENDING`` (``queue_s``) ->
``JOB_STATE_RUNNING`` (``jobProgress.percent`` +``percent_per_s``) ->
``JOB_STATE_WRITING_RESULTS`` (``write_s``) -> ``JOB_STATE_COMPLETED``; ``fail_at_percent``
fails it there; ``advance_per_get = s`` moves the clock by s at every GET of a job (for
headless runs that poll). ``drop_create_replies = n`` creates the next n jobs but closes the
connection instead of answering (the "created, but the reply was lost" case).
``fail_next(429|5xx)`` from :class:`~tests.fakes.http_server.FakeHTTPServer` works on every
route.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.fakes.fireworks_jobs import FireworksJobRoutes, SimJob, _ts
from tests.fakes.http_server import FakeHTTPServer, FakeResponse, RecordedRequest
from tests.fakes.image_rules import chat_image_problem

DEFAULT_FIREWORKS_KEY = "fw-test-key"
DEFAULT_ACCOUNT = "acme"
_GRPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
}


# collection -> (id query parameter, fields a create body may carry)
class FakeFireworksServer(FakeHTTPServer, FireworksJobRoutes):
    """Fireworks with scriptable timing and failures; state is kept in plain dicts."""

    def __init__(self, *, api_key: str = DEFAULT_FIREWORKS_KEY, account: str = DEFAULT_ACCOUNT):
        super().__init__()
        self.api_key = api_key
        self.account = account
        self.clock = 0.0
        self.create_s = 10.0
        self.queue_s = 10.0
        self.percent_per_s = 2.0
        self.write_s = 10.0
        self.build_s = 0.0
        self.fail_at_percent: float | None = None
        self.drop_create_replies = 0
        self.advance_per_get = 0.0
        self.datasets: dict[str, dict[str, Any]] = {}
        self.dataset_bytes: dict[str, bytes] = {}
        self.evaluators: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, SimJob] = {}
        self.chat_reply = "Hello from the tuned model."
        # reply_fn(body) -> text, when set, answers each chat request instead of chat_reply.
        self.reply_fn: Callable[[dict[str, Any]], str] | None = None
        self._sim_lock = threading.RLock()
        prefix = "/v1/accounts/(?P<acct>[^/]+)"
        self.route("POST", f"{prefix}/datasets", self._create_dataset)
        self.route("GET", f"{prefix}/datasets/(?P<id>[^/:]+)", self._get_dataset)
        self.route("POST", f"{prefix}/datasets/(?P<id>[^/:]+):upload", self._upload)
        self.route("POST", f"{prefix}/evaluatorsV2", self._create_evaluator)
        self.route("GET", f"{prefix}/evaluators/(?P<id>[^/:]+)", self._get_evaluator)
        self.register_jobs(self.route, prefix)
        self.route("POST", "/inference/v1/chat/completions", self._chat)

    # -- wire format -------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, *, error_type: str | None = None
    ) -> FakeResponse:
        """Google API style: ``{"error": {"code", "message", "status"}}``."""
        kind = error_type or _GRPC_STATUS.get(status, "INTERNAL" if status >= 500 else "UNKNOWN")
        return FakeResponse(status, {"error": {"code": status, "message": message, "status": kind}})

    def check_auth(self, request: RecordedRequest) -> FakeResponse | None:
        """Require ``Authorization: Bearer <api_key>``."""
        if request.bearer_token() == self.api_key:
            return None
        return self.error_response(401, "invalid API key")

    def _account_ok(self, params: dict[str, str]) -> FakeResponse | None:
        if params.get("acct") != self.account:
            return self.error_response(403, f"no access to account {params.get('acct')}")
        return None

    def _name(self, *parts: str) -> str:
        return "/".join([f"accounts/{self.account}", *parts])

    # -- test controls -----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the simulated clock; jobs and evaluator builds progress."""
        with self._sim_lock:
            self.clock += seconds
            for evaluator in self.evaluators.values():
                if evaluator["state"] == "BUILDING" and self.clock >= evaluator["_ready_at"]:
                    evaluator["state"] = "ACTIVE"
            for job in self.jobs.values():
                self._tick(job, seconds)

    def run_to_end(self, step_s: float = 5.0, limit_s: float = 100_000.0) -> None:
        """Advance until no job is active."""
        spent = 0.0
        while spent < limit_s and any(j.completed is None for j in self.jobs.values()):
            self.advance(step_s)
            spent += step_s

    @property
    def job_count(self) -> int:
        """How many jobs were created (what idempotency tests assert on)."""
        return len(self.jobs)

    # -- datasets ----------------------------------------------------------------------------

    def _create_dataset(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        denied = self._account_ok(params)
        if denied:
            return denied
        body = request.json()
        dataset_id = body.get("datasetId") if isinstance(body, dict) else None
        if not dataset_id or not isinstance(body.get("dataset"), dict):
            return self.error_response(400, "datasetId and dataset are required")
        with self._sim_lock:
            if dataset_id in self.datasets:
                return self.error_response(409, f"dataset {dataset_id} already exists")
            resource = {
                "name": self._name("datasets", dataset_id),
                "displayName": body["dataset"].get("displayName", ""),
                "createTime": _ts(self.clock),
                "state": "UPLOADING",
                "status": {"code": "OK", "message": ""},
                "exampleCount": body["dataset"].get("exampleCount", "0"),
                "userUploaded": {},
            }
            self.datasets[dataset_id] = resource
        return FakeResponse(200, resource)

    def _get_dataset(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        dataset = self.datasets.get(params["id"])
        if dataset is None:
            return self.error_response(404, f"dataset {params['id']} not found")
        return FakeResponse(200, dataset)

    def _upload(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        dataset = self.datasets.get(params["id"])
        if dataset is None:
            return self.error_response(404, f"dataset {params['id']} not found")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return self.error_response(400, "the upload must be multipart/form-data")
        message = BytesParser(policy=HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + request.body
        )
        data = None
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                data = part.get_payload(decode=True)
        if data is None:
            return self.error_response(400, "no 'file' part in the upload")
        for number, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                return self.error_response(400, f"line {number} is not JSON")
            if not isinstance(row, dict):
                return self.error_response(400, f"line {number} is not a JSON object")
        problem = chat_image_problem(data, "fireworks")
        if problem is not None:
            return self.error_response(400, problem)
        with self._sim_lock:
            self.dataset_bytes[params["id"]] = data
            dataset["state"] = "READY"
        return FakeResponse(200, {})

    # -- evaluators --------------------------------------------------------------------------

    def _create_evaluator(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        denied = self._account_ok(params)
        if denied:
            return denied
        body = request.json()
        evaluator_id = body.get("evaluatorId") if isinstance(body, dict) else None
        spec = body.get("evaluator") if isinstance(body, dict) else None
        if not evaluator_id or not isinstance(spec, dict):
            return self.error_response(400, "evaluatorId and evaluator are required")
        criteria = spec.get("criteria") or []
        snippets = criteria[0].get("codeSnippets") if criteria else None
        if not isinstance(snippets, dict) or snippets.get("entryFile") not in (snippets or {}).get(
            "fileContents", {}
        ):
            return self.error_response(400, "criteria[0].codeSnippets.entryFile is not a file")
        with self._sim_lock:
            if evaluator_id in self.evaluators:
                return self.error_response(409, f"evaluator {evaluator_id} already exists")
            resource = {
                **spec,
                "name": self._name("evaluators", evaluator_id),
                "createTime": _ts(self.clock),
                "state": "BUILDING" if self.build_s > 0 else "ACTIVE",
                "status": {"code": "OK", "message": ""},
                "_ready_at": self.clock + self.build_s,
            }
            self.evaluators[evaluator_id] = resource
        return FakeResponse(200, self._public(resource))

    @staticmethod
    def _public(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _get_evaluator(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        evaluator = self.evaluators.get(params["id"])
        if evaluator is None:
            return self.error_response(404, f"evaluator {params['id']} not found")
        return FakeResponse(200, self._public(evaluator))

    def evaluator_source(self, evaluator_id: str) -> str:
        """The entry file's source of an evaluator that was created."""
        snippets = self.evaluators[evaluator_id]["criteria"][0]["codeSnippets"]
        return str(snippets["fileContents"][snippets["entryFile"]])

    # -- inference ---------------------------------------------------------------------------

    def served_models(self) -> set[str]:
        """Models the chat endpoint answers for: the output models of completed jobs."""
        out = set()
        for job in self.jobs.values():
            config = job.body.get("trainingConfig") or job.body
            if job.state == "JOB_STATE_COMPLETED" and config.get("outputModel"):
                out.add(str(config["outputModel"]))
        return out

    def _chat(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        body = request.json()
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.error_response(400, "messages is required")
        if model not in self.served_models() and not str(model).startswith(
            "accounts/fireworks/models/"
        ):
            return self.error_response(
                404, f"Model not found, inaccessible, or not deployed: {model}"
            )
        text = self.reply_fn(body) if self.reply_fn is not None else self.chat_reply
        return FakeResponse(
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 1_800_000_000,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
            },
        )
