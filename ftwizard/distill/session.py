"""The dataset step's distill branch: what a session's distill run uses, and what it records.

The engine (:mod:`ftwizard.distill.engine`) knows nothing of sessions; this module builds its input
from ``session.dataset.distill`` (prompts file, teacher, grader, threshold), puts the output and
its journal in the session's artifacts (``artifacts/dataset/distilled.jsonl`` and
``distilled.jsonl.journal.jsonl``, so a rerun after a crash or a stop never pays twice), and
folds the engine's result into ``session.dataset.distilled``. No UI here: the dataset screen
calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from ftwizard.distill.generation import DistillProgress
from ftwizard.distill.options import (
    DistillEstimate,
    DistillOptions,
    DistillResult,
    journal_path_for,
    session_summary,
)
from ftwizard.errors import InputError
from ftwizard.graders.spec import AnyGrader
from ftwizard.session import DistillSummary, Session
from ftwizard.store import SessionStore

DISTILLED_FILE = "distilled.jsonl"
# Which gallery entry stands for the grader the grader step wrote (artifacts/grader.yaml).
SESSION_GRADER = "session"
NO_GRADER = (
    "Choose a grader: distillation keeps only the teacher's answers the grader accepts. The "
    "grader step comes after this one, so pick an example grader or type a grader file's path."
)


class DistillPlan(BaseModel):
    """Everything a distill run needs, checked before anything is spent."""

    data: str
    output: Path
    journal: Path
    grader_path: str
    grader: AnyGrader
    options: DistillOptions


def distilled_path(session: Session, store: SessionStore) -> Path:
    """Where the session's distilled training file is written."""
    return store.artifacts_dir(session.id) / "dataset" / DISTILLED_FILE


def grader_choices(session: Session, store: SessionStore) -> dict[str, Path]:
    """The graders the distill pane offers by name: the session's own when the grader step
    has written one, then the example graders."""
    from ftwizard.graders.workbench import SPEC_FILE, gallery

    choices: dict[str, Path] = {}
    own = store.artifacts_dir(session.id) / SPEC_FILE
    if own.is_file():
        choices[SESSION_GRADER] = own
    choices.update(gallery())
    return choices


def prompts_file(session: Session) -> str | None:
    """The rows to relabel: the chosen prompts file, else the training file."""
    return session.dataset.distill.prompts_path or session.dataset.choice.train_path


def teacher_options(session: Session) -> DistillOptions:
    """The engine's options for the session's teacher and threshold (no file is read)."""
    from ftwizard.distill.models import model_ref

    choice = session.dataset.distill
    if not choice.teacher:
        raise InputError(
            "choose a teacher model, e.g. anthropic:claude-sonnet-4-5 or openai:NAME with a "
            "base URL",
            field="Teacher",
        )
    teacher = model_ref(choice.teacher, base_url=choice.base_url, field="Teacher")
    return DistillOptions(teacher=teacher, threshold=choice.threshold)


def plan_distill(session: Session, store: SessionStore) -> DistillPlan:
    """The checked plan of the session's distill run; :class:`InputError` says what is missing."""
    from ftwizard.graders.loading import load_grader

    data = prompts_file(session)
    if not data:
        raise InputError(
            "choose a training file or a prompts file first", field="Prompts to relabel"
        )
    if not Path(data).exists():
        raise InputError("the prompts file does not exist", path=data, field="Prompts to relabel")
    options = teacher_options(session)
    grader_path = session.dataset.distill.grader_path
    if not grader_path:
        raise InputError(NO_GRADER, field="Grader")
    grader = load_grader(grader_path)
    output = distilled_path(session, store)
    return DistillPlan(
        data=data,
        output=output,
        journal=journal_path_for(output),
        grader_path=grader_path,
        grader=grader,
        options=options,
    )


def estimate(plan: DistillPlan) -> DistillEstimate:
    """What the plan would request and cost now, answers already journaled excluded."""
    from ftwizard.distill.estimate import estimate_distill_cost

    return estimate_distill_cost(plan.data, plan.options, journal=plan.journal)


def money(usd: float | None) -> str:
    """A dollar amount, or ``unknown`` when no price is on record."""
    return "unknown" if usd is None else f"${usd:,.4f}"


def estimate_text(found: DistillEstimate) -> str:
    """One line for the pane: requests to send, those already paid for, and the price."""
    if found.to_request == 0:
        return (
            f"{found.rows} rows, all {found.requests} answers already paid for (journal): "
            "a run costs nothing."
        )
    return (
        f"{found.to_request} requests to {found.teacher} ({found.already_paid} already paid "
        f"for, {found.rows} rows): {price_text(found)}"
        + (", Message Batches at half price" if found.batch else "")
    )


def needs_spend(plan: DistillPlan, found: DistillEstimate) -> bool:
    """Whether running the plan calls a paid teacher for anything."""
    return plan.options.teacher.is_paid and found.to_request > 0


def check_callable(plan: DistillPlan, *, judge_base_url: str | None) -> None:
    """Raise :class:`InputError` when the teacher, or the judge of the grader's model graders,
    cannot be called (a key is missing), before anything is spent."""
    from ftwizard.distill.models import require_credentials
    from ftwizard.graders.judges import judge_ref

    require_credentials(plan.options.teacher, field="Teacher")
    judge = judge_ref(plan.grader, base_url=judge_base_url)
    if judge is not None:
        require_credentials(judge, field="Grader")


def price_text(found: DistillEstimate) -> str:
    """What a run costs, in words for the confirmation."""
    if found.usd_expected is None:
        return f"an amount ftwizard cannot price (no price on record for {found.teacher})"
    return f"about {money(found.usd_expected)} (at most {money(found.usd_max)})"


async def run_plan(
    plan: DistillPlan,
    *,
    judge_base_url: str | None,
    on_progress: Callable[[DistillProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DistillResult:
    """Run the plan; raises ``DistillCancelled`` when ``should_stop()`` says so."""
    from ftwizard.distill.engine import run_distill
    from ftwizard.graders.judges import judge_for

    judge = judge_for(plan.grader, base_url=judge_base_url)
    return await run_distill(
        plan.data,
        plan.output,
        plan.options,
        grader=plan.grader,
        grader_name=plan.grader_path,
        judge=judge,
        journal=plan.journal,
        on_progress=on_progress,
        should_stop=should_stop,
    )


def record_result(session: Session, result: DistillResult) -> DistillSummary:
    """Keep the run's summary in the session (the metadata file keeps the rest)."""
    summary = session_summary(result, DistillSummary)
    session.dataset.distilled = summary
    return summary


def summary_text(summary: DistillSummary) -> str:
    """The result the way practitioners report it, then what was kept and what it cost."""
    lines = [
        f"Teacher {summary.teacher}: {summary.accuracy_text}",
        f"Kept {summary.kept} of {summary.n} rows (score >= {summary.threshold:g}) -> "
        "the training file",
        f"Cost {money(summary.cost_usd)} in all, {money(summary.cost_usd_this_run)} this run; "
        f"{summary.requests_sent} requests sent, {summary.reused} answers reused from the journal",
    ]
    if summary.failed:
        lines.append(f"{summary.failed} rows got no answer: run again to ask for just those.")
    if summary.grade_errors:
        lines.append(
            f"{summary.grade_errors} answers could not be graded (see the grader's fields)."
        )
    return "\n".join(lines)


def progress_text(update: DistillProgress) -> str:
    """One live line for a run in progress."""
    spent = "" if update.cost_usd is None else f", {money(update.cost_usd)} spent this run"
    batch = f" (batch {update.batch_id})" if update.batch_id else ""
    return f"{update.stage}{batch}: {update.done} / {update.total}{spent}"


def estimate_session(session: Session, store: SessionStore) -> DistillEstimate:
    """The estimate for the session's prompts and teacher; no grader needed (request ids
    depend only on what the teacher is sent)."""
    from ftwizard.distill.estimate import estimate_distill_cost

    data = prompts_file(session)
    if not data:
        raise InputError(
            "choose a training file or a prompts file first", field="Prompts to relabel"
        )
    options = teacher_options(session)
    journal = journal_path_for(distilled_path(session, store))
    return estimate_distill_cost(data, options, journal=journal)
