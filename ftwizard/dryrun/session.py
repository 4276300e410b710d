"""The dry-run step of a session: what it runs on, and what it records.

The engine (:mod:`ftwizard.dryrun.engine`) knows nothing of sessions; this module builds its input
from the earlier steps (the prepared training file, the grader the user confirmed, the base
model) and folds its report into ``session.dryrun``, keeping the full report as an artifact.
"""

from __future__ import annotations

from pathlib import Path

from ftwizard.dryrun.report import DryRunConfig, DryRunReport
from ftwizard.errors import InputError
from ftwizard.files import atomic_write_text
from ftwizard.graders.loading import load_grader
from ftwizard.graders.spec import AnyGrader
from ftwizard.graders.workbench import SPEC_FILE, spec_digest
from ftwizard.session import Session
from ftwizard.store import SessionStore

REPORT_FILE = "dryrun-report.json"
# A batch dry run's id and answers; the same file after a restart re-attaches to the batch.
BATCH_JOURNAL_FILE = "dryrun-batch.journal.jsonl"


def dryrun_inputs(session: Session, store: SessionStore) -> tuple[DryRunConfig, AnyGrader]:
    """The engine's configuration and grader for this session's dry run."""
    task = session.task
    result = session.dataset.result
    if task.backend is None or task.method is None or not task.base_model:
        raise InputError("the task step is not complete", field="task")
    if result is None:
        raise InputError("the dataset step is not complete", field="dataset")
    spec_path = store.artifacts_dir(session.id) / SPEC_FILE
    if not spec_path.is_file():
        raise InputError("the grader step is not complete", field="grader")
    spec = load_grader(spec_path)
    settings = session.dryrun
    config = DryRunConfig(
        data=result.training_file,
        model=f"{task.backend.value}:{task.base_model}",
        samples=settings.samples,
        concurrency=settings.concurrency,
        seed=settings.seed,
        method=task.method.value,
        batch=settings.batch,
        samples_per_prompt=settings.samples_per_prompt,
        max_tokens=settings.max_tokens,
    )
    return config, spec


def preflight_session_dryrun(
    session: Session, store: SessionStore
) -> tuple[DryRunConfig, AnyGrader]:
    """The dry run's inputs, after the preflight: :class:`PreflightFailed` names the missing key
    (of the base model or of the grader's judge) before any estimate or cost question."""
    from ftwizard.dryrun.cost import preflight_dryrun

    config, spec = dryrun_inputs(session, store)
    preflight_dryrun(
        config,
        spec,
        judge_base_url=session.grader.judge_base_url,
        model_field="Base model",
        judge_field="Judge",
    )
    return config, spec


def batch_journal_path(session: Session, store: SessionStore) -> Path:
    """Where a batch dry run of this session journals its batch."""
    return store.artifacts_dir(session.id) / BATCH_JOURNAL_FILE


def record_report(session: Session, store: SessionStore, report: DryRunReport) -> Path:
    """Keep the full report as an artifact and its summary in the session.

    A new report replaces the user's earlier acknowledgement: it was given for other figures.
    """
    path = store.artifacts_dir(session.id) / REPORT_FILE
    atomic_write_text(path, report.model_dump_json(indent=2))
    section = session.dryrun
    section.report_file = str(path)
    section.grader_digest = spec_digest(session.grader.spec_text or "")
    section.data_file = report.data
    section.verdict = report.verdict.verdict
    section.n = report.stats.n
    section.mean = report.stats.mean
    section.std = report.stats.std
    section.pct_gt0 = report.stats.pct_gt0
    section.pct_eq1 = report.stats.pct_eq1
    section.cost_usd = report.cost.total_usd
    section.acknowledged = False
    section.override_reason = None
    return path


def load_report(session: Session) -> DryRunReport | None:
    """The full report of the session's last dry run, if its file is still there."""
    path = session.dryrun.report_file
    if not path or not Path(path).is_file():  # never a FIFO or device put in its place
        return None
    try:
        return DryRunReport.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def dryrun_problem(session: Session) -> str | None:
    """Why the dry-run step is not complete, or None when training may start."""
    section = session.dryrun
    result = session.dataset.result
    if section.verdict is None:
        return "Run the dry run: it shows whether the base model leaves room to learn."
    if section.grader_digest != spec_digest(session.grader.spec_text or "") or (
        result is not None and section.data_file != result.training_file
    ):
        return "The grader or the data changed since the dry run: run it again."
    if section.verdict == "GO":
        return None
    if section.verdict == "WARNING" and not section.acknowledged:
        return "Read the warnings, then acknowledge them to go on."
    if section.verdict == "NO-GO" and not (section.acknowledged and section.override_reason):
        return "NO-GO: fix what the dry run found, or override it with a reason."
    return None
