"""The dataset step's import of a teacher's existing answers, on the session (Textual-free).

The same matching as ``ftwizard distill-import`` (:mod:`ftwizard.distill.imported`), with the
session's choices: the rows are the distill pane's prompts file (else the training file), the
grader and threshold are the distill pane's when one is chosen (else an exact comparison with
the ground truth), and the kept rows are written to the session's folder.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ftwizard.distill.imported import ImportResult, KeyColumn
from ftwizard.errors import InputError
from ftwizard.session import AnswersImportChoice, AnswersImportSummary, Session
from ftwizard.store import SessionStore

IMPORTED_FILE = "imported.jsonl"


class ImportPlan(BaseModel):
    """Everything an import needs, checked before any file is read."""

    data: str
    files: list[str]
    keys: list[KeyColumn]
    answer_column: str
    output: Path
    grader_path: str | None
    threshold: float


def split_list(text: str) -> list[str]:
    """The comma-separated items of a field, without empty ones."""
    return [part.strip() for part in text.split(",") if part.strip()]


def set_import(session: Session, **changes: object) -> bool:
    """Change the import's choices; nothing ran yet, so the dataset's check still applies."""
    choice = session.dataset.answers_import
    if all(getattr(choice, key) == value for key, value in changes.items()):
        return False
    session.dataset.answers_import = AnswersImportChoice.model_validate(
        {**choice.model_dump(), **changes}
    )
    return True


def imported_path(session: Session, store: SessionStore) -> Path:
    """Where the session's imported training file is written."""
    return store.artifacts_dir(session.id) / "dataset" / IMPORTED_FILE


def plan_import(session: Session, store: SessionStore) -> ImportPlan:
    """The checked plan; :class:`InputError` names the field that is missing or wrong."""
    from ftwizard.distill.session import prompts_file

    data = prompts_file(session)
    if not data:
        raise InputError(
            "choose a training file or a prompts file first", field="Prompts to relabel"
        )
    if not Path(data).exists():
        raise InputError("the prompts file does not exist", path=data, field="Prompts to relabel")
    choice = session.dataset.answers_import
    if not choice.files:
        raise InputError("give the answers' CSV files, separated by commas", field="Answers")
    for name in choice.files:
        if not Path(name).is_file():
            raise InputError("answers file not found", path=name, field="Answers")
    if not choice.keys:
        raise InputError(
            "give the key columns, e.g. id or site, lat~1e-5, lon~1e-5", field="Key columns"
        )
    keys = [KeyColumn.parse(spec) for spec in choice.keys]
    distill = session.dataset.distill
    return ImportPlan(
        data=data,
        files=list(choice.files),
        keys=keys,
        answer_column=choice.answer_column or "answer",
        output=imported_path(session, store),
        grader_path=distill.grader_path,
        threshold=distill.threshold,
    )


async def run_import(plan: ImportPlan) -> ImportResult:
    """Match, check and write the plan's answers (no request is sent unless the grader is a
    judge)."""
    from ftwizard.distill.imported import import_answers
    from ftwizard.graders.loading import load_grader

    grader = load_grader(plan.grader_path) if plan.grader_path else None
    return await import_answers(
        plan.data,
        plan.files,
        plan.output,
        keys=plan.keys,
        answer_column=plan.answer_column,
        grader=grader,
        grader_name=plan.grader_path,
        threshold=plan.threshold,
    )


def record_import(session: Session, result: ImportResult) -> AnswersImportSummary:
    """Keep the import's summary in the session (the metadata file keeps the rest)."""
    from ftwizard.distill.options import session_summary

    summary = session_summary(result, AnswersImportSummary)
    session.dataset.imported = summary
    return summary


def import_summary_text(summary: AnswersImportSummary) -> str:
    """Match rate, the teacher's accuracy against the ground truth, and the rows kept."""
    lines = [
        f"Matched: {summary.match_text}",
        f"Teacher: {summary.accuracy_text}",
        f"Kept {summary.kept} rows -> the training file (nothing paid)",
    ]
    extra = []
    if summary.unused_answers:
        extra.append(f"{summary.unused_answers} answers matched no row")
    if summary.ambiguous:
        extra.append(f"{summary.ambiguous} rows had several answers (the nearest was used)")
    if extra:
        lines.append("; ".join(extra) + f" (see {Path(summary.metadata_file).name})")
    return "\n".join(lines)


__all__ = [
    "ImportPlan",
    "import_summary_text",
    "imported_path",
    "plan_import",
    "record_import",
    "run_import",
    "set_import",
    "split_list",
]
