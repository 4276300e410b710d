"""The session: one saved fine-tuning project, and the store that keeps sessions on disk.

A session is the single source of truth for every step of the wizard. It lives in
``<home>/sessions/<id>/session.json`` with its artifacts beside it, where ``<home>`` is
``$FTWIZARD_HOME`` or the platform's user state directory. Writes are atomic, the file carries a
schema version (older files are migrated on load), one process at a time holds a session's lock,
and no secret is ever written (every saved text passes through :func:`credentials.redact`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftwizard.credentials import redact
from ftwizard.errors import FtwizardError, InputError

SCHEMA_VERSION = 1

# Migrations from schema version N to N + 1, applied in order on load. Each takes and returns
# the raw JSON object, so an old file never has to validate against today's model first.
Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}

SESSION_FILE = "session.json"
# Stands for the most recently updated session wherever an id is asked for.
LATEST = "latest"
LOCK_FILE = "session.lock"


def _now() -> datetime:
    return datetime.now(UTC)


class Method(StrEnum):
    """The fine-tuning method."""

    sft = "sft"
    dpo = "dpo"
    rft = "rft"


class Backend(StrEnum):
    """Where training runs."""

    local = "local"
    openai = "openai"
    vertex = "vertex"


class StepId(StrEnum):
    """The wizard's steps, in order."""

    task = "task"
    dataset = "dataset"
    grader = "grader"
    dryrun = "dryrun"
    training = "training"
    deploy = "deploy"
    evaluate = "evaluate"


class TaskSpec(BaseModel):
    """What the user wants to train: the method, the backend and the base model."""

    model_config = ConfigDict(extra="forbid")

    method: Method | None = None
    backend: Backend | None = None
    base_model: str | None = None


class DatasetChoice(BaseModel):
    """What the user chose on the dataset step; the prepared files are derived from it."""

    model_config = ConfigDict(extra="forbid")

    train_path: str | None = None
    valid_path: str | None = None
    # The explicit choice to train on a cleaned copy without the lines that have errors.
    drop_invalid: bool = False
    # Convert to the format the backend trains on when the file is in another one.
    convert: bool = False
    # Transform specs (ftwizard.datasets.transforms.Transform as JSON), applied in order.
    transforms: list[dict[str, Any]] = Field(default_factory=list)
    # A fraction ("0.1") or a count ("50") to hold out for validation; None keeps valid_path.
    split_val: str | None = None
    split_seed: int = 0
    split_stratify: str | None = None
    topic_field: str | None = None


class DatasetResult(BaseModel):
    """What the last preparation of the dataset produced."""

    model_config = ConfigDict(extra="forbid")

    format: str
    examples: int
    valid_examples: int
    errors: int
    warnings: int
    tokens_total: int
    training_file: str
    validation_file: str | None = None
    report_file: str
    # Size and modification time of the user's files when prepared, to notice later edits.
    fingerprint: str
    notes: list[str] = Field(default_factory=list)


class DistillChoice(BaseModel):
    """The dataset step's distill branch: relabel prompts with a teacher (secret-free)."""

    model_config = ConfigDict(extra="forbid")

    # The rows to relabel; None means the training file. Recorded at the first run, because
    # a successful run makes the distilled file the training file.
    prompts_path: str | None = None
    teacher: str | None = None  # a model string, e.g. "anthropic:claude-haiku-4-5"
    base_url: str | None = None  # the teacher's API, e.g. an OpenAI-compatible server
    grader_path: str | None = None  # keeps only the answers this grader accepts
    threshold: float = 1.0


class DistillSummary(BaseModel):
    """What the last distill run produced; the full metadata is ``metadata_file``."""

    model_config = ConfigDict(extra="forbid")

    data: str
    output: str
    journal: str
    metadata_file: str
    teacher: str
    grader: str | None = None
    threshold: float
    n: int
    answered: int
    failed: int
    graded: int
    correct: int
    kept: int
    teacher_accuracy: float | None = None
    accuracy_text: str
    grade_errors: int = 0
    reused: int = 0
    requests_sent: int = 0
    cost_usd: float | None = None
    cost_usd_this_run: float | None = None
    created_at: str


class DatasetSection(BaseModel):
    """The dataset step: the user's choices and what they produced."""

    model_config = ConfigDict(extra="forbid")

    choice: DatasetChoice = Field(default_factory=DatasetChoice)
    result: DatasetResult | None = None
    distill: DistillChoice = Field(default_factory=DistillChoice)
    distilled: DistillSummary | None = None


class GraderTestRow(BaseModel):
    """One graded sample from the grader step's test."""

    model_config = ConfigDict(extra="forbid")

    record: int
    output: str
    score: float
    notes: str = ""
    error: str | None = None


class GraderTest(BaseModel):
    """The last "test on samples" of the grader: what was graded, and how."""

    model_config = ConfigDict(extra="forbid")

    spec_digest: str  # the spec the test ran, to notice edits made after it
    source: str  # "model" or "dataset"
    source_label: str
    rows: list[GraderTestRow]
    mean: float
    n_errors: int


class GraderSection(BaseModel):
    """The grader step: the spec, its judge, its last test and the user's confirmation."""

    model_config = ConfigDict(extra="forbid")

    # "judge" (LLM-as-judge), "script" (python) or "builtin" (string_check, numeric, ...).
    style: str | None = None
    example: str | None = None  # the gallery example the spec started from
    spec_text: str | None = None  # the spec as the user edits it (YAML)
    judge_base_url: str | None = None
    test: GraderTest | None = None
    # The user's answer to "does the scoring look right?" for the spec digest tested.
    confirmed_digest: str | None = None


class DryRunSection(BaseModel):
    """The dry-run step: its settings, the summary of the last run, and the user's answer.

    The full report (every sample, histogram, reasons) is ``report_file`` in the artifacts.
    """

    model_config = ConfigDict(extra="forbid")

    samples: int = 200
    concurrency: int = 16
    seed: int = 0
    # One provider batch instead of direct calls: half the price, hours instead of minutes.
    batch: bool = False
    report_file: str | None = None
    grader_digest: str | None = None  # the grader spec the run graded with
    data_file: str | None = None  # the training file it sampled
    verdict: str | None = None  # "GO" | "WARNING" | "NO-GO"
    n: int | None = None
    mean: float | None = None
    std: float | None = None
    pct_gt0: float | None = None
    pct_eq1: float | None = None
    cost_usd: float | None = None
    # A WARNING acknowledged, or a NO-GO overridden with a reason: recorded, never implied.
    acknowledged: bool = False
    override_reason: str | None = None


class TrainingIntent(BaseModel):
    """A remote create about to happen: saved before the call, completed with the remote id.

    On resume, an intent without a job id is looked up by its key before anything is created
    again, so a crash between the create and the save never starts a second job.
    """

    model_config = ConfigDict(extra="forbid")

    key: str
    created: datetime = Field(default_factory=_now)
    job_id: str | None = None


class TrainingSection(BaseModel):
    """The training step: confirmed settings, the job, and what it reported."""

    model_config = ConfigDict(extra="forbid")

    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    estimated_cost_usd: float | None = None
    confirmed_at: datetime | None = None
    intent: TrainingIntent | None = None
    run_dir: str | None = None  # local backend: the run folder the worker writes to
    status: str | None = None  # queued | running | paused | succeeded | failed | cancelled
    raw_status: str | None = None
    error: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    metrics: list[dict[str, Any]] = Field(default_factory=list)  # MetricPoint JSON, in order
    metrics_cursor: str | None = None
    checkpoints: list[dict[str, Any]] = Field(default_factory=list)  # CheckpointInfo JSON
    chosen_checkpoint: str | None = None
    cost_usd: float | None = None
    endpoint: str | None = None  # Vertex: the tuned model's endpoint
    # The job's event log (JobEvent JSON, newest last, bounded) and its own cursor.
    events: list[dict[str, Any]] = Field(default_factory=list)
    events_cursor: str | None = None
    estimated_seconds: float | None = None
    # Training without a passed dry run: the user's recorded reason, never implied.
    dryrun_override: str | None = None


class DeploymentSection(BaseModel):
    """The deploy step: how to call the tuned model, and the user's test call."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # a model string: openai:ft:..., vertex:..., local:PATH
    base_url: str | None = None  # an OpenAI-compatible server (local serving)
    endpoint: str | None = None
    deployed_at: datetime | None = None
    test_prompt: str | None = None
    test_reply: str | None = None
    # Local deployment: the exported adapter, the merged model and the server's folder.
    adapter_dir: str | None = None
    merged_dir: str | None = None
    server_dir: str | None = None


class EvaluationSection(BaseModel):
    """The evaluate step: summaries of the comparisons; full reports are artifact files."""

    model_config = ConfigDict(extra="forbid")

    held_out_file: str | None = None
    base_mean: float | None = None
    tuned_mean: float | None = None
    grader_report_file: str | None = None
    judges: list[str] = Field(default_factory=list)
    tuned_win_rate: float | None = None
    tuned_win_ci95: tuple[float, float] | None = None
    ab_verdict: str | None = None
    ab_report_file: str | None = None
    n: int | None = None
    # The A/B settings the user chose (judges above); the results above are from them.
    judge_base_url: str | None = None
    both_orders: bool = True
    seed: int = 0
    runs: int = 1  # judging repeated with seeds seed, seed + 1, ... to show the variance
    # The grader comparison's own count and its pass / fail flips.
    grader_n: int | None = None
    fail_to_pass: int | None = None
    pass_to_fail: int | None = None
    # The A/B's figures a changelog quotes beside the win rate.
    kappa: float | None = None
    first_position_rate: float | None = None


class JournalEntry(BaseModel):
    """One user decision, in the same vocabulary as a replay action.

    ``action`` is a replay action mapping such as ``{"set": {"method": "rft"}}``,
    ``{"press": "next"}`` or ``{"screen": "task"}``.
    """

    model_config = ConfigDict(extra="forbid")

    at: datetime
    screen: str
    action: dict[str, Any]


class Session(BaseModel):
    """Everything ftwizard knows about one fine-tuning project.

    Each step's issue adds its own section (dataset, grader, dry run, training, deployment,
    evaluations); a section is ``None`` until its step has been worked on.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    id: str
    name: str
    created: datetime = Field(default_factory=_now)
    updated: datetime = Field(default_factory=_now)
    step: StepId = StepId.task
    task: TaskSpec = Field(default_factory=TaskSpec)
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    grader: GraderSection = Field(default_factory=GraderSection)
    dryrun: DryRunSection = Field(default_factory=DryRunSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    deployment: DeploymentSection = Field(default_factory=DeploymentSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    journal: list[JournalEntry] = Field(default_factory=list)

    def record(self, screen: str, action: dict[str, Any]) -> None:
        """Append a user decision to the journal.

        Consecutive ``set`` actions on the same widget are folded into one entry, so typing a
        model name records the final value rather than every keystroke.
        """
        last = self.journal[-1] if self.journal else None
        if (
            last is not None
            and "set" in action
            and last.screen == screen
            and "set" in last.action
            and set(last.action["set"]) == set(action["set"])
        ):
            self.journal[-1] = JournalEntry(at=_now(), screen=screen, action=action)
            return
        self.journal.append(JournalEntry(at=_now(), screen=screen, action=action))


def assign(section: BaseModel, field: str, value: Any) -> bool:
    """Set ``section.field`` to ``value``; return whether that changed anything.

    Screens apply a user's choice with it: an unchanged value is not a decision to journal.
    """
    if getattr(section, field) == value:
        return False
    setattr(section, field, value)
    return True


class SessionSummary(BaseModel):
    """One row of the session list (``ftwizard sessions``)."""

    id: str
    name: str
    step: str
    backend: str | None
    method: str | None
    base_model: str | None
    updated: datetime


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


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is on disk; some platforms
    # (Windows) cannot open a directory, which is fine to skip there.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half.

    The text goes to a temporary file in the same directory, is flushed and fsynced, and then
    replaces ``path`` with :func:`os.replace`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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
        session_id = new_session_id(name)
        while self.exists(session_id):
            session_id = new_session_id(name)
        session = Session(
            id=session_id,
            name=name,
            task=TaskSpec(method=method, backend=backend, base_model=base_model),
        )
        self.save(session)
        return session

    def save(self, session: Session) -> None:
        """Write a session atomically, with secrets redacted, and stamp its update time."""
        session.updated = _now()
        text = redact(session.model_dump_json(indent=2)) + "\n"
        atomic_write_text(self.session_dir(session.id) / SESSION_FILE, text)

    def load(self, session_id: str) -> Session:
        """Read a session, migrating older schema versions; errors name the file and spot."""
        path = self.session_dir(session_id) / SESSION_FILE
        if not path.is_file():
            raise SessionNotFound(
                f"no session '{session_id}' (see `ftwizard sessions` for the list)"
            )
        return self._read(path)

    def _read(self, path: Path) -> Session:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SessionCorrupt(
                f"not valid JSON ({exc.msg})", path=path, line=exc.lineno
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SessionCorrupt(f"cannot be read ({exc})", path=path) from None
        if not isinstance(raw, dict):
            raise SessionCorrupt("expected a JSON object", path=path, line=1)
        data = migrate(raw, path=path)
        try:
            return Session.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise SessionCorrupt(first["msg"], path=path, field=field) from None

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


def summarize(session: Session) -> SessionSummary:
    """The list row for a session."""
    return SessionSummary(
        id=session.id,
        name=session.name,
        step=session.step.value,
        backend=session.task.backend.value if session.task.backend else None,
        method=session.task.method.value if session.task.method else None,
        base_model=session.task.base_model,
        updated=session.updated,
    )
