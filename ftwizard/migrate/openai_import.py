"""``import openai-job``: an OpenAI fine-tune rebuilt as a new ftwizard session.

The job is read (method, base model, hyperparameters, the RFT grader, the fine-tuned model),
its training and validation files are downloaded byte for byte into the session's artifacts,
the dataset step's pipeline checks them for the chosen backend, the grader is written as the
session's grader spec, and the old fine-tune becomes ``evaluation.compare_model``: the
evaluate step then runs the blind A/B *old fine-tune vs new model* while OpenAI still serves
the old one (until its base shuts down, :mod:`ftwizard.providers.openai.shutdown`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from ftwizard.catalog import BACKENDS, check_base_model, default_model
from ftwizard.errors import InputError
from ftwizard.files import atomic_output
from ftwizard.migrate.openai_reader import OpenAIJob, OpenAIJobReader
from ftwizard.providers.openai.shutdown import shutdown_date
from ftwizard.session import Backend, DatasetChoice, Method, Session
from ftwizard.store import SessionStore

IMPORT_DIR = "openai-import"
# OpenAI hyperparameters that mean the same on every backend that has them.
_PORTABLE_HYPER = ("n_epochs", "batch_size", "beta")


class ImportResult(BaseModel):
    """What the import made: the ``--json`` output."""

    session: str
    training_file: str
    validation_file: str | None
    compare_model: str | None
    job: str
    method: str
    backend: str
    base_model: str | None
    grader_file: str | None = None
    old_base_shutdown: str | None = None
    notes: list[str] = Field(default_factory=list)


def grader_yaml(grader: dict[str, Any]) -> str:
    """OpenAI's grader JSON as ftwizard's grader spec (YAML): OpenAI's kinds are ftwizard's."""
    return yaml.safe_dump(grader, sort_keys=False, allow_unicode=True)


# Room for the role prefix and the temporary file's affixes within a 255-byte file name.
_MAX_NAME_BYTES = 180


def safe_file_name(name: str, fallback: str) -> str:
    """A name from a server as a plain file name here: no folders, control characters or NUL,
    no lone surrogates, and short enough for any file system (the end kept, for its suffix)."""
    base = Path(name.replace("\\", "/")).name if isinstance(name, str) else ""
    cleaned = "".join(
        ch for ch in base if ch.isprintable() and not "\ud800" <= ch <= "\udfff"
    ).strip()
    if cleaned in ("", ".", ".."):
        return fallback
    while len(cleaned.encode()) > _MAX_NAME_BYTES:
        cleaned = cleaned[1:]
    return cleaned


def _write_bytes(path: Path, data: bytes) -> None:
    # Byte for byte (no text decoding, no newline translation); a reader never sees half.
    with atomic_output(path, binary=True) as handle:
        handle.write(data)


async def download_files(
    reader: OpenAIJobReader, job: OpenAIJob, out_dir: Path
) -> tuple[Path, Path | None]:
    """The job's training (and validation) file, saved under ``out_dir`` as uploaded."""

    async def one(file_id: str, role: str) -> Path:
        name = safe_file_name(await reader.file_name(file_id), f"{role}.jsonl")
        path = out_dir / f"{role}-{name}"
        _write_bytes(path, await reader.file_bytes(file_id))
        return path

    training = await one(job.training_file, "train")
    validation = await one(job.validation_file, "validation") if job.validation_file else None
    return training, validation


def _base_model(backend: Backend, method: Method, chosen: str | None) -> str | None:
    if not BACKENDS[backend].models.get(method):
        raise InputError(
            f"{BACKENDS[backend].label} cannot train {method.value.upper()}: choose another "
            "--backend (fireworks trains SFT, DPO and RFT)",
            field="--backend",
        )
    if chosen:
        problem = check_base_model(backend, method, chosen)
        if problem:
            raise InputError(problem, field="--base-model")
        return chosen
    return default_model(backend, method)


def fill_session(
    store: SessionStore,
    session: Session,
    job: OpenAIJob,
    files: tuple[Path, Path | None],
) -> ImportResult:
    """Check the downloaded data, write the grader and the compare model into ``session``."""
    from ftwizard.datasets.pipeline import format_problem, prepare
    from ftwizard.graders.workbench import check_spec

    assert session.task.backend is not None and session.task.method is not None
    backend, method, model = session.task.backend, session.task.method, session.task.base_model
    artifacts = store.artifacts_dir(session.id)
    training, validation = files
    notes: list[str] = []
    # convert: the dataset step converts only when the backend trains another format
    # (Gemini contents on Vertex); OpenAI's formats are the others' as they are.
    session.dataset.choice = DatasetChoice(
        train_path=str(training),
        valid_path=str(validation) if validation else None,
        convert=True,
    )
    result, _ = prepare(
        session.dataset.choice,
        backend=backend,
        method=method,
        model=model,
        out_dir=artifacts / "dataset",
    )
    session.dataset.result = result
    problem = format_problem(result, method)
    if problem:
        notes.append(problem)
    notes.extend(result.notes)
    grader_path: str | None = None
    if job.grader is not None:
        text = grader_yaml(job.grader)
        _, problems, path = check_spec(text, out_dir=artifacts, data_path=result.training_file)
        session.grader.spec_text = text
        kind = job.grader.get("type")
        session.grader.style = (
            "judge"
            if kind in ("score_model", "label_model")
            else "script"
            if kind == "python"
            else "builtin"
        )
        grader_path = str(path)
        notes.extend(f"grader: {p.message}" for p in problems)
    hyper = {k: job.hyperparameters[k] for k in _PORTABLE_HYPER if k in job.hyperparameters}
    session.training.hyperparameters = {k: v for k, v in hyper.items() if v != "auto"}
    compare = f"openai:{job.fine_tuned_model}" if job.fine_tuned_model else None
    session.evaluation.compare_model = compare
    if compare is None:
        notes.append(
            f"job {job.id} is {job.status} and has no fine-tuned model: the A/B compares the "
            "new model with the base model instead"
        )
    store.save(session)
    shutdown = shutdown_date(job.fine_tuned_model or job.base_model)
    return ImportResult(
        session=session.id,
        training_file=str(training),
        validation_file=str(validation) if validation else None,
        compare_model=compare,
        job=job.id,
        method=method.value,
        backend=backend.value,
        base_model=model,
        grader_file=grader_path,
        old_base_shutdown=shutdown.isoformat() if shutdown else None,
        notes=notes,
    )


async def import_openai_job(
    store: SessionStore,
    job_id: str,
    *,
    backend: Backend,
    base_model: str | None = None,
    reader: OpenAIJobReader | None = None,
    base_url: str | None = None,
    name: str | None = None,
) -> ImportResult:
    """Read ``job_id`` on OpenAI and create the session that trains it again on ``backend``."""
    if backend is Backend.openai:
        raise InputError(
            "importing an OpenAI job to train it on OpenAI again would not move it: choose "
            "--backend fireworks, together, vertex or local",
            field="--backend",
        )
    own = reader is None
    reader = reader or OpenAIJobReader(base_url=base_url)
    try:
        job = await reader.job(job_id)
        method = Method(job.method)
        model = _base_model(backend, method, base_model)
        session = store.create(
            name or f"from {job.id}", method=method, backend=backend, base_model=model
        )
        try:
            files = await download_files(reader, job, store.artifacts_dir(session.id) / IMPORT_DIR)
            return fill_session(store, session, job, files)
        except BaseException:
            # Nothing half-made stays behind: the next try starts clean.
            store.delete(session.id)
            raise
    finally:
        if own:
            await reader.aclose()


__all__ = ["IMPORT_DIR", "ImportResult", "fill_session", "grader_yaml", "import_openai_job"]
