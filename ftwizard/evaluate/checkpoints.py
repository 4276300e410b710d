"""Every checkpoint of a run, scored with the session's grader on the evaluate step's rows.

The loss curve says how well a checkpoint predicts tokens; the grader says whether it does the
task. Practitioners have seen a checkpoint after one epoch score 10 % where the last one
reached 77 %, so the choice of checkpoint is made on the grader's score when there is one.

- :func:`plan_scoring` resolves the checkpoints (local adapter folders; OpenAI
  ``ft:...:ckpt-step-N`` models; Vertex checkpoint endpoints; Together's final model — its
  intermediate ``JOB:STEP`` checkpoints are listed but cannot be called), the held-out rows and
  grader, and what the run may cost.
- :func:`score_checkpoints` answers the rows with each checkpoint, grades them and records
  each score in ``session.training.checkpoint_eval`` as soon as it is known, so an interrupted
  run resumes with the checkpoints not scored yet (a checkpoint whose weights changed is scored
  again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ftwizard.errors import InputError
from ftwizard.evaluate.session import (
    SpendEstimate,
    call_cost,
    grader_spec,
    grading_items,
    held_out_path,
    is_paid,
    report_path,
    token_estimate,
)
from ftwizard.files import atomic_write_text
from ftwizard.identity import hosted_identity, local_identity, same_weights
from ftwizard.providers.models import ModelRef, parse_model
from ftwizard.providers.training import CheckpointInfo
from ftwizard.session import Backend, CheckpointEval, CheckpointScore, Session
from ftwizard.store import SessionStore

CHECKPOINT_REPORT = "checkpoint-scores.json"
_ANSWER_TOKENS = 200
_GRADER_OVERHEAD_TOKENS = 150
_GRADER_REPLY_TOKENS = 30


@dataclass(frozen=True)
class Candidate:
    """A checkpoint and how to call it (``model`` ``None``: it cannot be called, see
    ``reason``)."""

    info: CheckpointInfo
    model: str | None
    path: str | None
    reason: str | None = None


@dataclass(frozen=True)
class ScoringPlan:
    """What a scoring run needs, resolved before anything is called."""

    candidates: tuple[Candidate, ...]
    held_out: str
    ids: tuple[str, ...]
    items: tuple[dict[str, Any], ...]
    grader_digest: str
    spec: Any
    estimate: SpendEstimate
    judge_base_url: str | None = None

    @property
    def todo(self) -> list[Candidate]:
        """The callable checkpoints."""
        return [c for c in self.candidates if c.model is not None]


def candidates(session: Session) -> list[Candidate]:
    """The run's checkpoints in step order, each with the model string that calls it."""
    from ftwizard.training.results import checkpoints_of

    backend = session.task.backend
    out: list[Candidate] = []
    for info in sorted(checkpoints_of(session), key=lambda c: (c.step or 0, c.id)):
        name = info.name
        if backend is Backend.local:
            out.append(
                Candidate(
                    info,
                    f"local:{name}" if name else None,
                    name,
                    None if name else "no checkpoint folder recorded",
                )
            )
        elif not name:
            reason = "the provider serves no model for this checkpoint"
            if backend is Backend.together:
                reason = (
                    f"Together serves only a job's final model; start a job with "
                    f"from_checkpoint {info.id} to call this one"
                )
            out.append(Candidate(info, None, None, reason))
        elif backend is not None:
            out.append(Candidate(info, f"{backend.value}:{name}", None))
    return out


def _identity(candidate: Candidate) -> Any:
    if candidate.path is not None:
        return local_identity(candidate.path, model=candidate.model)
    return hosted_identity(candidate.model or candidate.info.id)


def _estimate(
    plan_refs: Sequence[ModelRef], items: Sequence[dict[str, Any]], judge: ModelRef | None
) -> SpendEstimate:
    from ftwizard.graders.samples import prompt_messages

    total: float | None = 0.0
    calls = 0
    paid: list[str] = []
    prompts = []
    for item in items:
        text = " ".join(str(m.content) for m in prompt_messages(item))
        prompts.append(token_estimate(text))
    for ref in [*plan_refs, *([judge] * len(plan_refs) if judge is not None else [])]:
        is_judge = judge is not None and ref is judge
        for prompt in prompts:
            calls += 1
            if is_paid(ref) and ref.spec not in paid:
                paid.append(ref.spec)
            if is_judge:
                each = call_cost(
                    ref, prompt + _ANSWER_TOKENS + _GRADER_OVERHEAD_TOKENS, _GRADER_REPLY_TOKENS
                )
            else:
                each = call_cost(ref, prompt, _ANSWER_TOKENS)
            total = None if total is None or each is None else total + each
    return SpendEstimate(paid=paid, usd=total, calls=calls)


def plan_scoring(
    session: Session, *, rows: int | None = None, only_missing: bool = True
) -> ScoringPlan:
    """The checkpoints, rows and grader of a scoring run and its price; :class:`InputError`
    when the run has no checkpoint, the session no grader or no held-out rows."""
    from ftwizard.graders.judges import judge_ref
    from ftwizard.graders.workbench import spec_digest

    if not session.training.checkpoints:
        raise InputError("this run has no checkpoints yet", field="training.checkpoints")
    spec = grader_spec(session)
    path = held_out_path(session)
    if not path:
        raise InputError("no held-out rows: the dataset has no validation split", field="eval-data")
    ids, items = grading_items(path)
    if rows is not None:
        if rows < 1:
            raise InputError("--rows must be at least 1", field="--rows")
        ids, items = ids[:rows], items[:rows]
    if not items:
        raise InputError("the held-out file has no rows", path=path, field="eval-data")
    found = candidates(session)
    digest = spec_digest(session.grader.spec_text or "")
    pending = found
    if only_missing:
        pending = [c for c in found if _previous(session, c, digest, path, len(items)) is None]
    refs = [parse_model(c.model, field="checkpoint") for c in pending if c.model]
    judge = judge_ref(spec, base_url=session.grader.judge_base_url)
    return ScoringPlan(
        candidates=tuple(found),
        held_out=path,
        ids=tuple(ids),
        items=tuple(items),
        grader_digest=digest,
        spec=spec,
        estimate=_estimate(refs, items, judge),
        judge_base_url=session.grader.judge_base_url,
    )


def _previous(
    session: Session, candidate: Candidate, digest: str, held_out: str, rows: int
) -> CheckpointScore | None:
    """The recorded score of ``candidate`` from the same grader and rows, if its weights
    are still the ones scored."""
    section = session.training.checkpoint_eval
    if section is None or (section.grader_digest, section.held_out_file, section.rows) != (
        digest,
        held_out,
        rows,
    ):
        return None
    for score in section.scores:
        if score.id == candidate.info.id and score.score is not None:
            if candidate.path is None:
                return score
            try:
                now = local_identity(candidate.path)
            except InputError:
                return None
            return score if same_weights(now, score.identity) else None
    return None


ProgressFn = Callable[[CheckpointScore, int, int], None]


async def _score_one(
    plan: ScoringPlan, candidate: Candidate, *, concurrency: int, max_tokens: int | None
) -> CheckpointScore:
    from ftwizard.evaluate.stats import mean, mean_interval
    from ftwizard.graders.judges import judge_for
    from ftwizard.graders.runner import GraderRunner
    from ftwizard.graders.samples import samples_from_model
    from ftwizard.providers.models import build_generation_provider, close_provider

    info = candidate.info
    assert candidate.model is not None
    try:
        identity = _identity(candidate)
    except (InputError, OSError) as exc:
        # A checkpoint folder deleted or emptied since training: say so, score the others.
        return CheckpointScore(
            id=info.id,
            step=info.step,
            epoch=info.epoch,
            path=candidate.path,
            model=candidate.model,
            error=str(exc),
            scored_at=datetime.now(UTC),
        )
    ref = parse_model(candidate.model, field="checkpoint")
    provider = build_generation_provider(ref)
    judge = None
    try:
        samples = await samples_from_model(
            provider, ref.name, list(plan.items), concurrency=concurrency, max_tokens=max_tokens
        )
    finally:
        await close_provider(provider)
    try:
        judge = judge_for(plan.spec, base_url=plan.judge_base_url)
        with GraderRunner(plan.spec, judge=judge, concurrency=concurrency) as runner:
            grades = await runner.grade(list(plan.items), [s.sample for s in samples])
    finally:
        if judge is not None:
            await close_provider(judge)
    scores = [g.score for s, g in zip(samples, grades, strict=True) if not s.error]
    errors = sum(1 for s in samples if s.error)
    first_error = next((s.error for s in samples if s.error), None)
    return CheckpointScore(
        id=info.id,
        step=info.step,
        epoch=info.epoch,
        path=candidate.path,
        model=candidate.model,
        identity=identity,
        score=mean(scores) if scores else None,
        ci95=mean_interval(scores) if scores else None,
        n=len(scores),
        errors=errors,
        error=None if scores else (first_error or "no row was answered"),
        scored_at=datetime.now(UTC),
    )


def _section(session: Session, plan: ScoringPlan) -> CheckpointEval:
    section = session.training.checkpoint_eval
    key = (plan.grader_digest, plan.held_out, len(plan.items))
    if section is None or (section.grader_digest, section.held_out_file, section.rows) != key:
        section = CheckpointEval(grader_digest=key[0], held_out_file=key[1], rows=key[2])
        session.training.checkpoint_eval = section
    return section


def _keep(section: CheckpointEval, score: CheckpointScore) -> None:
    others = [s for s in section.scores if s.id != score.id]
    section.scores = sorted([*others, score], key=lambda s: (s.step or 0, s.id))


async def score_checkpoints(
    session: Session,
    store: SessionStore,
    plan: ScoringPlan,
    *,
    concurrency: int = 8,
    max_tokens: int | None = None,
    on_progress: ProgressFn | None = None,
    save: Callable[[Session], None] | None = None,
) -> CheckpointEval:
    """Score each callable checkpoint not yet scored with the same grader, rows and weights;
    record and save after each one (``save`` defaults to ``store.save``), then add a ledger
    line per scored checkpoint."""
    section = _section(session, plan)
    persist = save or store.save
    todo = plan.todo
    for index, candidate in enumerate(plan.candidates, start=1):
        if candidate.model is None:
            _keep(
                section,
                CheckpointScore(
                    id=candidate.info.id,
                    step=candidate.info.step,
                    epoch=candidate.info.epoch,
                    model=candidate.info.id,
                    error=candidate.reason,
                ),
            )
            continue
        previous = _previous(session, candidate, plan.grader_digest, plan.held_out, len(plan.items))
        score = previous or await _score_one(
            plan, candidate, concurrency=concurrency, max_tokens=max_tokens
        )
        _keep(section, score)
        if previous is None:
            if plan.estimate.usd is not None and plan.estimate.paid:
                share = plan.estimate.usd / max(1, len(todo))
                section.cost_usd = (section.cost_usd or 0.0) + share
            persist(session)
        if on_progress is not None:
            on_progress(score, index, len(plan.candidates))
    write_report(store, session)
    persist(session)
    from ftwizard.ledger.checkpoints import record_checkpoints

    record_checkpoints(store, session)
    return section


def write_report(store: SessionStore, session: Session) -> None:
    """Keep the scores as ``evaluation/checkpoint-scores.json`` in the artifacts."""
    section = session.training.checkpoint_eval
    if section is None:
        return
    path = report_path(store, session, CHECKPOINT_REPORT)
    section.report_file = str(path)
    import json

    atomic_write_text(path, json.dumps(checkpoints_json(session), indent=2) + "\n")


def checkpoints_json(session: Session) -> dict[str, Any]:
    """``{"checkpoints": [...], "best": {...}, "chosen": {...}}`` as ``ftwizard checkpoints
    --json`` prints it; each row has id, step, epoch, path (local) or model (hosted), sha256,
    score, ci95 and n."""
    from ftwizard.training.choice import best_choice, chosen_row

    section = session.training.checkpoint_eval
    scored = {s.id: s for s in section.scores} if section else {}
    local = session.task.backend is Backend.local
    rows: list[dict[str, Any]] = []
    for candidate in candidates(session):
        info = candidate.info
        score = scored.get(info.id)
        row: dict[str, Any] = {"id": info.id, "step": info.step, "epoch": info.epoch}
        if local:
            row["path"] = candidate.path
        else:
            row["model"] = candidate.model or info.id
        identity = score.identity if score else None
        row["sha256"] = identity.sha256 if identity else None
        row["score"] = score.score if score else None
        row["ci95"] = list(score.ci95) if score and score.ci95 else None
        row["n"] = score.n if score else 0
        if score is not None and score.error:
            row["error"] = score.error
        elif candidate.reason:
            row["error"] = candidate.reason
        if info.metrics:
            row["metrics"] = dict(info.metrics)
        rows.append(row)
    by_id = {r["id"]: r for r in rows}
    best = best_choice(session)
    chosen = chosen_row(session)
    return {
        "checkpoints": rows,
        "best": {**by_id.get(best.checkpoint.id, {}), "by": best.by} if best else None,
        "chosen": {**by_id.get(chosen[0], {}), "by": chosen[1]} if chosen else None,
        "grader_digest": section.grader_digest if section else None,
        "held_out_file": section.held_out_file if section else None,
        "rows": section.rows if section else None,
    }


__all__ = [
    "CHECKPOINT_REPORT",
    "Candidate",
    "ScoringPlan",
    "candidates",
    "checkpoints_json",
    "plan_scoring",
    "score_checkpoints",
    "write_report",
]
