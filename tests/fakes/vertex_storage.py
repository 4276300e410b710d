"""The Vertex fake's Cloud Storage (JSON API upload, read) and TensorBoard (the loss curves)
routes: a mixin of :class:`~tests.fakes.vertex_tuning.VertexTuningSim`, which holds the state."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from tests.fakes.http_server import FakeResponse, RecordedRequest

if TYPE_CHECKING:
    from tests.fakes.vertex_tuning import SimTuningJob


class StorageRoutes:
    """Objects uploaded to Cloud Storage and the TensorBoard time series of the jobs."""

    jobs: dict[str, Any]
    objects: dict[tuple[str, str], bytes]
    _lock: threading.RLock

    def _read_gcs(self, uri: str) -> bytes | None:
        if not uri.startswith("gs://"):
            return None
        bucket, _, name = uri[len("gs://") :].partition("/")
        return self.objects.get((bucket, name))

    def _job_by_experiment(self, experiment_id: str) -> SimTuningJob | None:
        number = experiment_id.removeprefix("tuning-experiment-")
        job = self.jobs.get(number)
        return job if job is not None and self.with_experiment else None

    def _context(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job_by_experiment(params["context"])
            if job is None:
                return self._error(404, f"Context {params['context']} not found.")
            return FakeResponse(
                200,
                {
                    "name": self._experiment(job),
                    "displayName": params["context"],
                    "schemaTitle": "system.Experiment",
                    "metadata": {"backing_tensorboard_resource": self._tensorboard(job)},
                },
            )

    def _runs(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job_by_experiment(params["experiment"])
            if job is None or job.started is None:
                return FakeResponse(200, {})
            run = f"{self._tensorboard(job)}/experiments/{params['experiment']}/runs/run-1"
            return FakeResponse(200, {"tensorboardRuns": [{"name": run, "displayName": "run-1"}]})

    def _series_list(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job_by_experiment(params["experiment"])
            if job is None:
                return self._error(404, f"Experiment {params['experiment']} not found.")
            run = request.path.removeprefix("/v1/").removesuffix("/timeSeries")
            series = [
                {
                    "name": f"{run}/timeSeries/{tag.strip('/')}",
                    "displayName": tag,
                    "valueType": "SCALAR",
                }
                for tag in job.scalars
            ]
            return FakeResponse(200, {"tensorboardTimeSeries": series})

    def _series_read(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            job = self._job_by_experiment(params["experiment"])
            values = (job.scalars if job else {}).get(f"/{params['series']}")
            if values is None:
                return self._error(404, f"Time series {params['series']} not found.")
            return FakeResponse(
                200,
                {
                    "timeSeriesData": {
                        "tensorboardTimeSeriesId": params["series"],
                        "valueType": "SCALAR",
                        "values": [
                            {"step": str(step), "scalar": {"value": value}}
                            for step, value in values
                        ],
                    }
                },
            )

    def _object_json(self, bucket: str, name: str, data: bytes, content_type: str) -> dict:
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/1",
            "name": name,
            "bucket": bucket,
            "generation": "1",
            "metageneration": "1",
            "contentType": content_type,
            "size": str(len(data)),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "timeCreated": self._time(self.clock),
            "updated": self._time(self.clock),
        }

    def _upload(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        if (request.query.get("uploadType") or [""])[0] != "multipart":
            return self._error(400, "this fake serves uploadType=multipart only")
        content_type = request.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + request.body
        )
        parts = list(message.iter_parts()) if message.is_multipart() else []
        if len(parts) != 2:
            return self._error(400, "expected a metadata part and a media part")
        metadata = json.loads(parts[0].get_payload(decode=True) or b"{}")
        data = parts[1].get_payload(decode=True) or b""
        name = metadata.get("name") or (request.query.get("name") or [""])[0]
        if not name:
            return self._error(400, "object name is required")
        with self._lock:
            self.objects[(params["bucket"], name)] = data
        return FakeResponse(
            200,
            self._object_json(params["bucket"], name, data, parts[1].get_content_type()),
        )

    def _bucket(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        return FakeResponse(
            200,
            {"kind": "storage#bucket", "id": params["bucket"], "name": params["bucket"]},
        )

    def _object(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        from urllib.parse import unquote

        name = unquote(params["object"])
        with self._lock:
            data = self.objects.get((params["bucket"], name))
        if data is None:
            return self._error(404, f"No such object: {params['bucket']}/{name}")
        return FakeResponse(
            200, self._object_json(params["bucket"], name, data, "application/json")
        )
