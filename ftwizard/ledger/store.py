"""The run ledger: one line per fine-tuning run, kept across sessions.

Practitioners keep a changelog of their runs by hand (date, base model, data, epochs, cost,
results). ftwizard keeps it for them in ``<home>/ledger.jsonl``: an entry is derived from a
session (:func:`entry_for`) and appended whenever what it says changes — when training
finishes, when an evaluation is recorded, or when ``ftwizard ledger`` syncs. Appending keeps
the history of runs whose sessions were later deleted; the latest line per run wins when the
ledger is read. :func:`rebuild` rewrites it from the sessions alone (notes are kept).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ftwizard.credentials import redact
from ftwizard.errors import InputError
from ftwizard.files import atomic_write_text
from ftwizard.ledger.checkpoint_entry import CheckpointEntry, checkpoint_entries, run_key
from ftwizard.session import ModelIdentity, Session
from ftwizard.store import SessionStore

LEDGER_FILE = "ledger.jsonl"
# Hyperparameter names providers use for the number of epochs.
_EPOCH_KEYS = ("n_epochs", "epochs", "num_train_epochs", "epoch_count")


class TeacherInfo(BaseModel):
    """The teacher that relabeled the training data (from distill's metadata file)."""

    model: str
    accuracy_text: str | None = None
    kept: int | None = None
    cost_usd: float | None = None


class EvaluationInfo(BaseModel):
    """What the evaluate step found."""

    held_out_file: str | None = None
    grader_n: int | None = None
    base_mean: float | None = None
    tuned_mean: float | None = None
    fail_to_pass: int | None = None
    pass_to_fail: int | None = None
    judges: list[str] = Field(default_factory=list)
    n: int | None = None
    tuned_win_rate: float | None = None
    tuned_win_ci95: tuple[float, float] | None = None
    ab_verdict: str | None = None
    kappa: float | None = None
    first_position_rate: float | None = None
    # What each evaluation evaluated as the tuned model.
    grader_identity: ModelIdentity | None = None
    ab_identity: ModelIdentity | None = None


class RunEntry(BaseModel):
    """One training run as the ledger records it."""

    kind: Literal["run"] = "run"
    key: str
    recorded_at: datetime
    date: datetime
    session_id: str
    session_name: str
    method: str | None = None
    backend: str | None = None
    base_model: str | None = None
    teacher: TeacherInfo | None = None
    dataset_format: str | None = None
    training_file: str | None = None
    validation_file: str | None = None
    examples: int | None = None
    valid_examples: int | None = None
    dataset_tokens: int | None = None
    trained_tokens: int | None = None
    epochs: float | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    job_id: str | None = None
    status: str | None = None
    model_id: str | None = None
    deployed_model: str | None = None
    endpoint: str | None = None
    training_cost_usd: float | None = None
    training_cost_estimated: bool = False
    dryrun_cost_usd: float | None = None
    dryrun_verdict: str | None = None
    dryrun_mean: float | None = None
    dryrun_n: int | None = None
    evaluation: EvaluationInfo | None = None
    # What is deployed (adapter and merged digests, or the hosted model id).
    deployed_identity: ModelIdentity | None = None
    chosen_checkpoint: str | None = None
    chosen_by: str | None = None
    notes: list[str] = Field(default_factory=list)

    def same_run_facts(self, other: RunEntry) -> bool:
        """Whether two entries say the same thing (apart from when they were recorded)."""
        skip = {"recorded_at"}
        return self.model_dump(exclude=skip) == other.model_dump(exclude=skip)


class NoteEntry(BaseModel):
    """A note the user added to a run (``ftwizard ledger --note``)."""

    kind: Literal["note"] = "note"
    key: str
    recorded_at: datetime
    text: str


LedgerLine = RunEntry | NoteEntry | CheckpointEntry


def ledger_path(store: SessionStore) -> Path:
    """The ledger file beside the sessions folder."""
    return store.home / LEDGER_FILE


def has_run(session: Session) -> bool:
    """Whether the session has a training run to record (started, finished or deployed)."""
    training = session.training
    return bool(
        training.status or training.intent or training.fine_tuned_model or session.deployment.model
    )


def _epochs(hyperparameters: dict[str, Any]) -> float | None:
    for key in _EPOCH_KEYS:
        value = hyperparameters.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _effective_hyperparameters(session: Session) -> dict[str, Any]:
    """What the job ran with: the backend's defaults overlaid with the user's changes (a local
    run of 6 default epochs has no epochs in ``training.hyperparameters``)."""
    from ftwizard.errors import FtwizardError
    from ftwizard.training.plan import current_hyperparameters

    try:
        return current_hyperparameters(session)
    except FtwizardError:
        return dict(session.training.hyperparameters)


def _teacher(session: Session) -> TeacherInfo | None:
    """The distill metadata beside the user's training file, when it was distilled."""
    from ftwizard.distill.options import metadata_path_for

    train = session.dataset.choice.train_path
    if not train:
        return None
    meta = metadata_path_for(train)
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("teacher"), str):
        return None
    cost = data.get("cost_usd")
    kept = data.get("kept")
    text = data.get("accuracy_text")
    return TeacherInfo(
        model=data["teacher"],
        accuracy_text=text if isinstance(text, str) else None,
        kept=kept if isinstance(kept, int) else None,
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
    )


def _evaluation(session: Session) -> EvaluationInfo | None:
    ev = session.evaluation
    if ev.tuned_mean is None and ev.tuned_win_rate is None:
        return None
    return EvaluationInfo(
        held_out_file=ev.held_out_file,
        grader_n=ev.grader_n,
        base_mean=ev.base_mean,
        tuned_mean=ev.tuned_mean,
        fail_to_pass=ev.fail_to_pass,
        pass_to_fail=ev.pass_to_fail,
        judges=list(ev.judges) if ev.tuned_win_rate is not None else [],
        n=ev.n,
        tuned_win_rate=ev.tuned_win_rate,
        tuned_win_ci95=ev.tuned_win_ci95,
        ab_verdict=ev.ab_verdict,
        kappa=ev.kappa,
        first_position_rate=ev.first_position_rate,
        grader_identity=ev.grader_identity,
        ab_identity=ev.ab_identity,
    )


def _notes(session: Session) -> list[str]:
    """What a practitioner would jot down that the session already knows."""
    notes: list[str] = []
    dryrun = session.dryrun
    if dryrun.override_reason:
        notes.append(
            f"trained despite a {dryrun.verdict or 'failed'} dry run: {dryrun.override_reason}"
        )
    elif dryrun.acknowledged and dryrun.verdict:
        notes.append(f"dry-run {dryrun.verdict} acknowledged")
    if session.training.error:
        notes.append(f"training error: {session.training.error}")
    if session.training.chosen_checkpoint:
        notes.append(f"checkpoint used: {session.training.chosen_checkpoint}")
    if session.dataset.result is not None:
        notes.extend(session.dataset.result.notes)
    ev = session.evaluation
    if ev.first_position_rate is not None and ev.ab_verdict == "undecided":
        notes.append("A/B undecided; see the report for the judges' position bias")
    return [redact(n) for n in notes]


def entry_for(session: Session, *, now: datetime | None = None) -> RunEntry:
    """The ledger entry a session's training run gets now."""
    training = session.training
    result = session.dataset.result
    hyper = dict(training.hyperparameters)
    cost = training.cost_usd
    estimated = False
    if cost is None and training.estimated_cost_usd is not None:
        cost, estimated = training.estimated_cost_usd, True
    date = training.finished_at or training.started_at or training.confirmed_at or session.created
    return RunEntry(
        key=run_key(session),
        recorded_at=now or datetime.now(UTC),
        date=date,
        session_id=session.id,
        session_name=session.name,
        method=session.task.method.value if session.task.method else None,
        backend=session.task.backend.value if session.task.backend else None,
        base_model=session.task.base_model,
        teacher=_teacher(session),
        dataset_format=result.format if result else None,
        training_file=result.training_file if result else session.dataset.choice.train_path,
        validation_file=result.validation_file if result else session.dataset.choice.valid_path,
        examples=result.examples if result else None,
        valid_examples=result.valid_examples if result else None,
        dataset_tokens=result.tokens_total if result else None,
        trained_tokens=training.trained_tokens,
        epochs=_epochs(_effective_hyperparameters(session)),
        hyperparameters=hyper,
        job_id=training.intent.job_id if training.intent else None,
        status=training.status,
        model_id=training.fine_tuned_model,
        deployed_model=session.deployment.model,
        endpoint=session.deployment.endpoint or session.deployment.base_url,
        training_cost_usd=cost,
        training_cost_estimated=estimated,
        dryrun_cost_usd=session.dryrun.cost_usd,
        dryrun_verdict=session.dryrun.verdict,
        dryrun_mean=session.dryrun.mean,
        dryrun_n=session.dryrun.n,
        evaluation=_evaluation(session),
        deployed_identity=session.deployment.identity,
        chosen_checkpoint=training.chosen_checkpoint,
        chosen_by=training.chosen_by,
        notes=_notes(session),
    )


def _parse_line(text: str, *, path: Path, line: int) -> LedgerLine:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", path=path, line=line) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", path=path, line=line)
    try:
        if data.get("kind") == "note":
            return NoteEntry.model_validate(data)
        if data.get("kind") == "checkpoint":
            return CheckpointEntry.model_validate(data)
        return RunEntry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InputError(first["msg"], path=path, line=line, field=field) from None


def read_lines(store: SessionStore) -> list[LedgerLine]:
    """Every line of the ledger, in the order written; a bad line is an error at its number."""
    path = ledger_path(store)
    if not path.is_file():
        return []
    out: list[LedgerLine] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                out.append(_parse_line(text, path=path, line=number))
    return out


def _append(store: SessionStore, line: LedgerLine) -> None:
    path = ledger_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = redact(line.model_dump_json()) + "\n"
    # One write of one line in append mode: concurrent appenders never interleave lines.
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def current_runs(lines: list[LedgerLine]) -> list[RunEntry]:
    """The latest entry of each run with its notes folded in, newest run first."""
    latest: dict[str, RunEntry] = {}
    notes: dict[str, list[str]] = {}
    for line in lines:
        if isinstance(line, NoteEntry):
            notes.setdefault(line.key, []).append(line.text)
        elif isinstance(line, RunEntry):
            latest[line.key] = line
    runs = [
        run.model_copy(update={"notes": [*run.notes, *notes.get(run.key, [])]})
        for run in latest.values()
    ]
    runs.sort(key=lambda r: (r.date, r.key), reverse=True)
    return runs


def record_session(store: SessionStore, session: Session) -> RunEntry | None:
    """Append the session's run entry when it has a run and the entry changed; return it."""
    if not has_run(session):
        return None
    entry = entry_for(session)
    previous = [
        line for line in read_lines(store) if isinstance(line, RunEntry) and line.key == entry.key
    ]
    if previous and previous[-1].same_run_facts(entry):
        return previous[-1]
    _append(store, entry)
    return entry


def sync(store: SessionStore) -> list[RunEntry]:
    """Record every readable session's run (appending only what changed); the current runs."""
    summaries, _problems = store.list()
    for summary in summaries:
        record_session(store, store.load(summary.id))
    return current_runs(read_lines(store))


def rebuild(store: SessionStore) -> list[RunEntry]:
    """Rewrite the ledger from the sessions that exist now, keeping the notes."""
    notes = [line for line in read_lines(store) if isinstance(line, NoteEntry)]
    summaries, _problems = store.list()
    sessions = [s for s in (store.load(s.id) for s in summaries) if has_run(s)]
    entries: list[LedgerLine] = [entry_for(session) for session in sessions]
    for session in sessions:
        entries.extend(checkpoint_entries(session))
    text = "".join(redact(line.model_dump_json()) + "\n" for line in [*entries, *notes])
    atomic_write_text(ledger_path(store), text)
    return current_runs(read_lines(store))


def add_note(store: SessionStore, session_id: str, text: str) -> NoteEntry:
    """Attach a note to a session's latest run; :class:`InputError` when it has none."""
    session = store.load(store.resolve(session_id))
    if not has_run(session):
        raise InputError(
            f"session '{session.id}' has no training run to note yet", field="--session"
        )
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InputError("the note is empty", field="--note")
    record_session(store, session)
    note = NoteEntry(key=run_key(session), recorded_at=datetime.now(UTC), text=redact(cleaned))
    _append(store, note)
    return note
