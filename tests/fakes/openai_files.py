"""OpenAI's ``/v1/files`` routes of the fine-tuning fake (a mixin of
:class:`~tests.fakes.openai_tuning.FineTuningSim`, which holds the files and the clock)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from tests.fakes.http_server import FakeResponse, RecordedRequest
from tests.fakes.image_rules import chat_image_problem


@dataclass
class SimFile:
    """An uploaded file."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created: float
    status_details: str | None = None

    def status(self, now: float, processing_s: float) -> str:
        if self.status_details is not None:
            return "error"
        return "processed" if now - self.created >= processing_s else "uploaded"


def jsonl_problem(data: bytes) -> str | None:
    """Why ``data`` is not a usable fine-tuning JSONL file, or None."""
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return "Invalid file format. The file is empty."
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except ValueError:
            return f"Invalid file format. Line {number} is not valid JSON."
        if not isinstance(row, dict):
            return f"Invalid file format. Line {number} is not a JSON object."
    return chat_image_problem(data, "openai")


class FileRoutes:
    """Upload, list, read and download files; state lives on the simulator."""

    files: dict[str, SimFile]
    clock: float
    _lock: threading.Lock

    def _file_object(self, f: SimFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "object": "file",
            "bytes": len(f.data),
            "created_at": self._ts(f.created),
            "filename": f.filename,
            "purpose": f.purpose,
            "status": f.status(self.clock, self.file_processing_s),
            "status_details": f.status_details,
        }

    def _create_file(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return self._invalid("Expected multipart/form-data.")
        message = BytesParser(policy=HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + request.body
        )
        fields: dict[str, Any] = {}
        filename = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                filename = part.get_filename()
            fields[str(name)] = part.get_payload(decode=True)
        if "file" not in fields or not filename:
            return self._invalid("Missing required parameter: 'file'.", "file")
        purpose = (fields.get("purpose") or b"").decode()
        if purpose not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return self._invalid(f"Invalid purpose: {purpose!r}.", "purpose")
        data: bytes = fields["file"]
        with self._lock:
            f = SimFile(self._next("file"), filename, purpose, data, self.clock)
            if purpose == "fine-tune":
                if not filename.endswith(".jsonl"):
                    return self._invalid("Invalid file format for Fine-Tuning API. Must be .jsonl")
                f.status_details = jsonl_problem(data)
            self.files[f.id] = f
            return FakeResponse(200, self._file_object(f))

    def _list_files(self, request: RecordedRequest, _: dict[str, str]) -> FakeResponse:
        purpose = (request.query.get("purpose") or [None])[0]
        with self._lock:
            items = [
                self._file_object(f)
                for f in self.files.values()
                if purpose is None or f.purpose == purpose
            ]
        return FakeResponse(200, self._page(items, request, 10000))

    def _get_file(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        with self._lock:
            f = self.files.get(params["file_id"])
            if f is None:
                return self._not_found("file", params["file_id"])
            return FakeResponse(200, self._file_object(f))

    def _file_content(self, request: RecordedRequest, params: dict[str, str]) -> FakeResponse:
        # GET /files/{file_id}/content: the bytes as uploaded (application/octet-stream).
        with self._lock:
            f = self.files.get(params["file_id"])
            if f is None:
                return self._not_found("file", params["file_id"])
            return FakeResponse(200, f.data, content_type="application/octet-stream")
