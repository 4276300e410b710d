"""The store that keeps sessions on disk, one folder each, with a lock per session.

A session lives in ``<home>/sessions/<id>/session.json`` with its artifacts beside it, where
``<home>`` is ``$FTWIZARD_HOME`` or the platform's user state directory. Writes are atomic, the
file carries a schema version (older files are migrated on load), one process at a time holds
a session's lock, and no secret is ever written (every saved text passes through
:func:`credentials.redact`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from ftwizard.credentials import redact
from ftwizard.errors import FtwizardError, InputError
from ftwizard.files import NAME_MAX, atomic_write_text
from ftwizard.inputs import read_input_text
from ftwizard.json_input import JSONInputError, loads
from ftwizard.session import (
    SCHEMA_VERSION,
    Backend,
    Method,
    Session,
    SessionSummary,
    TaskSpec,
    now_utc,
    summarize,
)

# Migrations from schema version N to N + 1, applied in order on load. Each takes and returns
# the raw JSON object, so an old file never has to validate against today's model first.
Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}

SESSION_FILE = "session.json"
# Stands for the most recently updated session wherever an id is asked for.
LATEST = "latest"
LOCK_FILE = "session.lock"
# A save takes milliseconds; a temporary file this old was left by a save that was killed.
_STALE_TEMP_S = 60.0


class SessionNotFound(InputError):
    """No session with that id exists."""


class SessionCorrupt(InputError):
    """A session file exists but cannot be read as a session."""


class SessionLocked(FtwizardError):
    """Another process holds the session's lock."""

    exit_code = 2


def ftwizard_home() -> Path:
    """The directory ftwizard keeps its state in: ``$FTWIZARD_HOME`` or the user state dir."""
    override = os.environ.get("FTWIZARD_HOME", "").strip()
    if override:
        return Path(override).expanduser()
    # platformdirs is imported here, not at module top, to keep `ftwizard --help` fast.
    import platformdirs

    return platformdirs.user_state_path("ftwizard")


def new_session_id(name: str) -> str:
    """A readable, unique id: a slug of the name and six random hex digits."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24].strip("-")
    return f"{slug or 'session'}-{secrets.token_hex(3)}"


def default_session_name(when: datetime | None = None) -> str:
    """The name a session gets when the user gives none."""
    moment = (when or datetime.now()).astimezone()
    return f"session {moment:%Y-%m-%d %H:%M}"


def migrate(data: dict[str, Any], *, path: Path) -> dict[str, Any]:
    """Bring a raw session object up to :data:`SCHEMA_VERSION` through :data:`MIGRATIONS`."""
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise SessionCorrupt(
            "missing or non-integer schema_version; this is not an ftwizard session file",
            path=path,
            field="schema_version",
        )
    if version > SCHEMA_VERSION:
        raise SessionCorrupt(
            f"written by a newer ftwizard (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade ftwizard to open it",
            path=path,
            field="schema_version",
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SessionCorrupt(
                f"no migration from schema {version}; this ftwizard cannot read it",
                path=path,
                field="schema_version",
            )
        data = step(dict(data))
        version += 1
        data["schema_version"] = version
    return data


class SessionLock:
    """An exclusive advisory lock on one session, held by one process at a time.

    The operating system releases it when the process dies, so a crash never leaves a session
    locked for good. The holder's pid is written into the lock file for the error message.
    """

    def __init__(self, path: Path, session_id: str) -> None:
        self.path = path
        self.session_id = session_id
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object currently holds the lock."""
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`SessionLocked` naming the process that holds it."""
        if self._handle is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open on purpose
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise SessionLocked(
                f"session '{self.session_id}' is open in another ftwizard process "
                f"(pid {holder}); close it there first, then try again"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Give the lock back (safe to call when not held)."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.seek(0)
            handle.truncate()
            _unlock(handle)
        finally:
            handle.close()

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_stale_temp_files(directory: Path) -> None:
    """Remove ``.session.json.*.tmp`` files a killed save left behind (older than a minute,
    so a save in flight in another process is never touched)."""
    cutoff = time.time() - _STALE_TEMP_S
    try:
        leftovers = list(directory.glob(f".{SESSION_FILE}.*.tmp"))
    except OSError:
        return
    for path in leftovers:
        try:
            if path.lstat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue  # gone already, or not ours to remove


def _try_lock(handle: IO[str]) -> bool:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class SessionStore:
    """Reads and writes sessions under ``<home>/sessions``."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home if home is not None else ftwizard_home()
        self.root = self.home / "sessions"

    def session_dir(self, session_id: str) -> Path:
        """The directory holding a session's file and artifacts."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", session_id):
            raise SessionNotFound(f"'{session_id}' is not a valid session id")
        if len(session_id) > NAME_MAX:
            # the file system could not even look it up (ENAMETOOLONG)
            raise SessionNotFound(
                f"'{session_id[:40]}...' is not a valid session id: longer than the "
                f"{NAME_MAX}-character file-name limit"
            )
        return self.root / session_id

    def artifacts_dir(self, session_id: str) -> Path:
        """Where a step writes converted files, reports and adapters for a session."""
        path = self.session_dir(session_id) / "artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self, session_id: str) -> bool:
        """Whether a session with this id is stored."""
        return (self.session_dir(session_id) / SESSION_FILE).is_file()

    def create(
        self,
        name: str | None = None,
        *,
        method: Method | None = None,
        backend: Backend | None = None,
        base_model: str | None = None,
    ) -> Session:
        """Create, save and return a new session."""
        name = (name or "").strip() or default_session_name()
        for field, text in (("name", name), ("base_model", base_model or "")):
            if any("\ud800" <= ch <= "\udfff" for ch in text):
                raise InputError(
                    "holds bytes that are not valid UTF-8 (typed in another encoding, or "
                    "copied from a file name); use UTF-8 text",
                    field=field,
                )
        # The id is made from the name as saved (secrets redacted), so no secret is in it.
        session_id = new_session_id(redact(name))
        while self.exists(session_id):
            session_id = new_session_id(redact(name))
        session = Session(
            id=session_id,
            name=name,
            task=TaskSpec(method=method, backend=backend, base_model=base_model),
        )
        self.save(session)
        return session

    def save(self, session: Session) -> None:
        """Write a session atomically, with secrets redacted, and stamp its update time."""
        session.updated = now_utc()
        directory = self.session_dir(session.id)
        try:
            text = redact(session.model_dump_json(indent=2)) + "\n"
        except PydanticSerializationError as exc:
            # Text that is not valid Unicode (a lone surrogate) slipped in: nothing is written.
            raise InputError(
                f"cannot be saved: {exc}; the session keeps its last saved state",
                path=directory / SESSION_FILE,
            ) from None
        _remove_stale_temp_files(directory)
        atomic_write_text(directory / SESSION_FILE, text)

    def load(self, session_id: str) -> Session:
        """Read a session, migrating older schema versions; errors name the file and spot."""
        path = self.session_dir(session_id) / SESSION_FILE
        if not os.path.lexists(path):
            raise SessionNotFound(
                f"no session '{session_id}' (see `ftwizard sessions` for the list)"
            )
        _remove_stale_temp_files(path.parent)
        return self._read(path)

    def _read(self, path: Path) -> Session:
        try:
            raw = loads(read_input_text(path))
        except InputError as exc:
            raise SessionCorrupt(exc.message, path=path, line=exc.line) from None
        except json.JSONDecodeError as exc:
            raise SessionCorrupt(
                f"not valid JSON ({exc.msg})", path=path, line=exc.lineno
            ) from None
        except JSONInputError as exc:
            raise SessionCorrupt(exc.message, path=path, field=exc.field) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SessionCorrupt(f"cannot be read ({exc})", path=path) from None
        if not isinstance(raw, dict):
            raise SessionCorrupt("expected a JSON object", path=path, line=1)
        data = migrate(raw, path=path)
        try:
            session = Session.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise SessionCorrupt(first["msg"], path=path, field=field) from None
        folder = path.parent.name
        if "[redacted" in session.id:
            session.id = folder  # saved before ids were made from the redacted name
        elif session.id != folder:
            # A copied folder: saving it would rewrite the other session, without its lock.
            raise SessionCorrupt(
                f"holds the id of session '{session.id}' but is in the folder of session "
                f"'{folder}' (a copied folder?); open '{session.id}' itself, or set \"id\" to "
                f'"{folder}" in this file to keep the copy as a session of its own',
                path=path,
                field="id",
            )
        return session

    def list(self) -> tuple[list[SessionSummary], list[SessionCorrupt]]:
        """All readable sessions, newest first, and the errors of those that could not be read."""
        summaries: list[SessionSummary] = []
        problems: list[SessionCorrupt] = []
        if not self.root.is_dir():
            return summaries, problems
        for path in self.root.glob(f"*/{SESSION_FILE}"):
            try:
                session = self._read(path)
            except SessionCorrupt as exc:
                problems.append(exc)
                continue
            summaries.append(summarize(session))
        summaries.sort(key=lambda s: s.updated, reverse=True)
        return summaries, problems

    def resolve(self, ref: str) -> str:
        """Turn a session reference into an id: an id as is, or ``latest`` for the newest."""
        if ref != LATEST:
            return ref
        summaries, _ = self.list()
        if not summaries:
            raise SessionNotFound("there is no saved session to resume as 'latest'")
        return summaries[0].id

    def lock(self, session_id: str) -> SessionLock:
        """The (not yet acquired) lock object for a session."""
        return SessionLock(self.session_dir(session_id) / LOCK_FILE, session_id)

    def delete(self, session_id: str) -> None:
        """Delete a session and its artifacts; refuses while another process has it open."""
        directory = self.session_dir(session_id)
        if not (directory / SESSION_FILE).is_file():
            raise SessionNotFound(f"no session '{session_id}'")
        with self.lock(session_id):
            for child in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if child.name == LOCK_FILE and child.parent == directory:
                    continue
                if child.is_dir() and not child.is_symlink():
                    child.rmdir()
                else:
                    child.unlink()
        (directory / LOCK_FILE).unlink(missing_ok=True)
        directory.rmdir()

    @contextmanager
    def open(self, session_id: str) -> Iterator[Session]:
        """Load a session under its lock; the caller saves what it changes."""
        with self.lock(session_id):
            yield self.load(session_id)
