"""A fake Hugging Face Hub on 127.0.0.1 serving model repos' files, for ``HF_ENDPOINT``.

It answers what ``huggingface_hub`` asks when it looks a model up and downloads it:

- ``GET /api/models/{repo}[/revision/{rev}]``: the model info (``sha``, ``siblings`` with sizes);
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: the file, with ``X-Repo-Commit``, ``ETag`` and
  ``Content-Length``; ``Range: bytes=N-`` answers 206 (resume);
- a gated repo answers 403 with ``X-Error-Code: GatedRepo`` unless the request carries
  ``gated_token``; an unknown repo answers 404 with ``X-Error-Code: RepoNotFound``.

Uploads, as ``HfApi.create_repo`` and ``upload_folder`` make them (every file "regular", so
its bytes travel base64 in the commit; no LFS or Xet):

- ``POST /api/repos/create``: a new empty repo (409 when it exists; ``exist_ok`` accepts that);
- ``POST /api/models/{repo}/preupload/{rev}``: every file is uploaded as ``regular``;
- ``POST /api/models/{repo}/commit/{rev}``: the NDJSON commit; its files replace the repo's.
  ``POST /api/validate-yaml`` parses a README's YAML block (400 when invalid; ``validated``).
  Writes need ``Authorization: Bearer <write_token>`` (401 otherwise); ``commits`` keeps each
  commit's summary.

``delay_per_chunk_s`` slows file bodies (to cancel mid-way); ``drop_once_after = N`` closes the
next whole-file transfer after N bytes (a broken connection, to resume); ``stall_after = N``
makes every GET of a file send N bytes and then nothing until the client gives up (a Hub that
accepts and stalls); ``faults`` is a queue of ``(status, headers)`` answered, one each, to the
next file requests (HEAD or GET) before any is served (503 then success, 429 with
``Retry-After``, 401); ``requests`` logs
``(method, path, range header, authorization header)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024


@dataclass
class FakeRepo:
    """One model repo: its files and whether it is gated."""

    files: dict[str, bytes]
    gated: bool = False
    sha: str = field(default="")

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1()
            for name in sorted(self.files):
                digest.update(name.encode() + self.files[name])
            self.sha = digest.hexdigest()


class FakeHub:
    """The fake Hub; use as a context manager, read ``endpoint``."""

    def __init__(self, gated_token: str = "hf_gated_ok", write_token: str = "hf_write_ok") -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.gated_token = gated_token
        self.write_token = write_token
        self.commits: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.validated: list[dict[str, Any]] = []
        self.delay_per_chunk_s = 0.0
        self.drop_once_after: int | None = None
        self.stall_after: int | None = None
        self.faults: list[tuple[int, dict[str, str]]] = []
        self._released = threading.Event()
        self.requests: list[tuple[str, str, str | None, str | None]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add_folder(self, repo_id: str, folder: Path, *, gated: bool = False) -> FakeRepo:
        """Serve every file of ``folder`` as repo ``repo_id``."""
        files = {
            str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
        }
        repo = FakeRepo(files, gated=gated)
        self.repos[repo_id] = repo
        return repo

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()  # let stalled handlers end, so shutdown does not wait on them
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _error(self, status: int, code: str, message: str) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _repo(self, repo_id: str) -> FakeRepo | None:
                repo = hub.repos.get(repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", "Repository not found")
                    return None
                auth = self.headers.get("Authorization")
                if repo.gated and auth != f"Bearer {hub.gated_token}":
                    self._error(
                        403,
                        "GatedRepo",
                        "Access to model is restricted. You must have access to it and be "
                        "authenticated to access it. Please log in.",
                    )
                    return None
                return repo

            def _serve(self, body: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append(
                    (
                        self.command,
                        path,
                        self.headers.get("Range"),
                        self.headers.get("Authorization"),
                    )
                )
                if path.startswith("/api/models/"):
                    rest = path.removeprefix("/api/models/")
                    repo_id = rest.split("/revision/")[0]
                    repo = self._repo(repo_id)
                    if repo is None:
                        return
                    info = {
                        "id": repo_id,
                        "modelId": repo_id,
                        "sha": repo.sha,
                        "private": False,
                        "gated": "auto" if repo.gated else False,
                        "siblings": [
                            {"rfilename": name, "size": len(data)}
                            for name, data in sorted(repo.files.items())
                        ],
                    }
                    data = json.dumps(info).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if "/resolve/" not in path:
                    self._error(404, "EntryNotFound", f"no route {path}")
                    return
                repo_id, _, tail = path.lstrip("/").partition("/resolve/")
                _, _, filename = tail.partition("/")
                if hub.faults:
                    status, headers = hub.faults.pop(0)
                    data = b'{"error": "fault"}'
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if body:
                        self.wfile.write(data)
                    return
                repo = self._repo(repo_id)
                if repo is None:
                    return
                if filename not in repo.files:
                    self._error(404, "EntryNotFound", f"{filename} not found")
                    return
                data = repo.files[filename]
                start = 0
                ranged = self.headers.get("Range")
                if ranged and ranged.startswith("bytes="):
                    start = int(ranged.removeprefix("bytes=").split("-")[0] or 0)
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", repo.sha)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                if hub.stall_after is not None and len(data) - start > hub.stall_after:
                    self.wfile.write(data[start : start + hub.stall_after])
                    self.wfile.flush()
                    hub._released.wait(60)
                    self.close_connection = True
                    return
                if (
                    hub.drop_once_after is not None
                    and not start
                    and len(data) > hub.drop_once_after
                ):
                    cut, hub.drop_once_after = hub.drop_once_after, None
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                try:
                    for at in range(start, len(data), CHUNK):
                        self.wfile.write(data[at : at + CHUNK])
                        if hub.delay_per_chunk_s:
                            time.sleep(hub.delay_per_chunk_s)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def do_GET(self) -> None:
                self._serve(body=True)

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                path = unquote(urlsplit(self.path).path)
                auth = self.headers.get("Authorization")
                hub.requests.append(("POST", path, None, auth))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if auth != f"Bearer {hub.write_token}":
                    self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
                    return
                if path == "/api/validate-yaml":
                    # The Hub checks a README's YAML metadata block before the commit.
                    import yaml

                    content = json.loads(body)["content"]
                    head = content.split("---")[1] if content.startswith("---") else ""
                    try:
                        meta = yaml.safe_load(head)
                    except yaml.YAMLError as exc:
                        self._error(400, "BadRequest", f"invalid YAML metadata: {exc}")
                        return
                    hub.validated.append(meta if isinstance(meta, dict) else {})
                    self._json(200, {"errors": [], "warnings": []})
                    return
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    repo_id = "/".join(
                        p for p in (payload.get("organization"), payload["name"]) if p
                    )
                    hub.created.append(payload)
                    if repo_id in hub.repos:
                        self._error(409, "RepoExists", "You already created this model repo")
                        return
                    hub.repos[repo_id] = FakeRepo({})
                    self._json(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
                    return
                rest = path.removeprefix("/api/models/")
                if "/preupload/" in rest:
                    files = json.loads(body).get("files", [])
                    modes = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                    self._json(200, {"files": modes})
                    return
                if "/commit/" in rest:
                    repo_id = rest.split("/commit/")[0]
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        self._error(404, "RepoNotFound", "Repository not found")
                        return
                    summary = ""
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "header":
                            summary = item["value"].get("summary", "")
                        elif item["key"] == "file":
                            value = item["value"]
                            repo.files[value["path"]] = base64.b64decode(value["content"])
                    repo.sha = ""
                    repo.__post_init__()
                    hub.commits.append({"repo": repo_id, "summary": summary, "sha": repo.sha})
                    self._json(
                        200,
                        {
                            "commitUrl": f"{hub.endpoint}/{repo_id}/commit/{repo.sha}",
                            "commitOid": repo.sha,
                        },
                    )
                    return
                self._error(404, "EntryNotFound", f"no route {path}")

            def do_HEAD(self) -> None:
                self._serve(body=False)

        return Handler


__all__ = ["FakeHub", "FakeRepo"]
