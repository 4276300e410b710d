"""The evaluate step of a session: which models and rows, what it may cost, what is recorded.

The statistics live in :mod:`ftwizard.evaluate.ab`; this module plans a session's evaluation
(base model vs the deployed tuned model, on the held-out file), prices it before anything is
spent, and folds the reports into ``session.evaluation``, keeping the full reports as artifact
files. The evaluate screen drives it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.evaluate.ab import EvalRow, GraderComparison, PairwiseReport
from ftwizard.files import atomic_write_text
from ftwizard.providers.models import ModelRef
from ftwizard.session import ModelIdentity, Session
from ftwizard.store import SessionStore

REPORT_DIR = "evaluation"
GRADER_REPORT = "grader-comparison.json"
AB_REPORT = "ab-report.json"
# A grader score at or above this counts as a pass when flips are counted.
PASS_THRESHOLD = 1.0
# Rough characters per token, for estimates made before any call.
_CHARS_PER_TOKEN = 4
# The judge prompt's own words around the conversation and the two answers, in tokens.
_JUDGE_OVERHEAD_TOKENS = 150
_JUDGE_REPLY_TOKENS = 60
_GRADER_REPLY_TOKENS = 30
_DEFAULT_ANSWER_TOKENS = 200
_MAX_FLIP_ROWS = 500
# JudgeOptions' own bound on repeated runs.
MAX_RUNS = 50


# Planning: which models, which rows, what it may cost ------------------------------------


@dataclass(frozen=True)
class EvalPlan:
    """What a run needs, resolved in the app's thread before the worker starts."""

    base: ModelRef
    tuned: ModelRef
    judges: tuple[ModelRef, ...]
    held_out: str
    rows: tuple[EvalRow, ...]


class SpendEstimate(BaseModel):
    """What a run may cost: which models are paid, and the total when every price is known."""

    paid: list[str]
    usd: float | None
    calls: int

    def describe(self) -> str:
        """``about $0.0123`` or ``an unknown amount``."""
        return "an unknown amount" if self.usd is None else f"about ${self.usd:.4f}"


def default_judges(session: Session, environ: dict[str, str] | None = None) -> list[str]:
    """A sensible judge when the user has named none: a strong model whose key is set.

    A judge from another family than the tuned model is preferred, since a model tends to
    favour answers that read like its own.
    """
    env = dict(os.environ) if environ is None else environ
    has_anthropic = bool(env.get("ANTHROPIC_API_KEY", "").strip())
    has_openai = bool(env.get("OPENAI_API_KEY", "").strip())
    tuned_family = (session.deployment.model or "").partition(":")[0]
    candidates = [
        ("anthropic:claude-sonnet-4-6", has_anthropic),
        ("openai:gpt-4.1-2025-04-14", has_openai),
    ]
    if tuned_family == "anthropic":
        candidates.reverse()
    return [spec for spec, available in candidates if available][:1]


def split_judges(text: str) -> list[str]:
    """The judge model strings in a comma- or space-separated list, in order, once each."""
    out: list[str] = []
    for part in text.replace(",", " ").split():
        if part not in out:
            out.append(part)
    return out


def compared_models(session: Session) -> tuple[ModelRef, ModelRef]:
    """The base model (from the task step, or ``evaluation.compare_model`` when set: an
    imported OpenAI fine-tune) and the tuned one (from the deploy step)."""
    from ftwizard.distill.models import model_ref
    from ftwizard.providers.models import parse_model

    task = session.task
    compare = session.evaluation.compare_model
    if compare:
        base = parse_model(compare, field="evaluation.compare_model")
    elif task.backend is None or not task.base_model:
        raise InputError("choose the base model on the task step first", field="base model")
    else:
        base = parse_model(f"{task.backend.value}:{task.base_model}", field="base model")
    tuned_spec = session.deployment.model
    if not tuned_spec:
        raise InputError(
            "the tuned model is not deployed yet: the deploy step says how to call it",
            field="deployment.model",
        )
    tuned = model_ref(
        tuned_spec, base_url=session.deployment.base_url, field="tuned model", openai_only=True
    )
    return base, tuned


def held_out_path(session: Session) -> str | None:
    """The held-out file: the user's choice, else the dataset step's validation file."""
    if session.evaluation.held_out_file:
        return session.evaluation.held_out_file
    result = session.dataset.result
    return result.validation_file if result else None


def make_plan(session: Session, *, with_judges: bool) -> EvalPlan:
    """Resolve models and rows; :class:`InputError` when something is missing or unusable."""
    from ftwizard.distill.models import model_ref, require_credentials
    from ftwizard.evaluate.ab import read_eval_rows

    base, tuned = compared_models(session)
    judges: list[ModelRef] = []
    if with_judges:
        specs = session.evaluation.judges
        if not specs:
            raise InputError(
                "name at least one judge model, e.g. anthropic:claude-sonnet-4-6",
                field="Judge models",
            )
        judges = [
            model_ref(
                spec,
                base_url=session.evaluation.judge_base_url,
                field="Judge models",
                openai_only=True,
            )
            for spec in specs
        ]
    for field, ref in [("base model", base), ("tuned model", tuned)] + [
        ("Judge models", j) for j in judges
    ]:
        require_credentials(ref, field=field)
    path = held_out_path(session)
    if not path:
        raise InputError(
            "no held-out file: the dataset has no validation split; give one",
            field="Held-out examples",
        )
    if not Path(path).exists():
        raise InputError("the held-out file does not exist", path=path, field="Held-out examples")
    rows = read_eval_rows(path)
    return EvalPlan(base, tuned, tuple(judges), path, tuple(rows))


def is_paid(ref: ModelRef) -> bool:
    """Whether calling ``ref`` costs money: every hosted API, but not a model on this machine
    or a self-hosted OpenAI-compatible server."""
    if ref.provider == "local":
        return False
    if ref.provider == "openai":
        return ref.compatible_base_url() is None
    return True


def token_estimate(text: str) -> int:
    """A rough token count of ``text``, for estimates made before any call."""
    return max(1, len(text) // _CHARS_PER_TOKEN)


def call_cost(ref: ModelRef, input_tokens: int, output_tokens: int) -> float | None:
    """The price of one call to ``ref`` (0 for a free model, ``None`` when unknown)."""
    from ftwizard.pricing import inference_cost_per_call

    if not is_paid(ref):
        return 0.0
    cost = inference_cost_per_call(ref.name, input_tokens, output_tokens)
    return cost.tuned_usd if ref.name.startswith("ft:") else cost.base_usd


def estimate_spend(
    plan: EvalPlan,
    *,
    both_orders: bool,
    runs: int = 1,
    grader_judge: ModelRef | None = None,
) -> SpendEstimate:
    """The cost of answering every row with both models, then judging (A/B judges, in one or
    both orders, ``runs`` times, when the plan has them; else ``grader_judge`` grading both
    answers). Token counts are estimated from the text length; the answer's length from the
    reference answer's."""
    from ftwizard.evaluate.judging import conversation_text

    total: float | None = 0.0
    calls = 0
    paid: list[str] = []

    def add(ref: ModelRef, n_calls: int, inp: int, out: int) -> None:
        nonlocal total, calls
        calls += n_calls
        if is_paid(ref) and ref.spec not in paid:
            paid.append(ref.spec)
        each = call_cost(ref, inp, out)
        total = None if total is None or each is None else total + each * n_calls

    orders = (2 if both_orders else 1) * runs
    for row in plan.rows:
        prompt = token_estimate(conversation_text(row.prompt))
        answer = token_estimate(row.reference) if row.reference else _DEFAULT_ANSWER_TOKENS
        add(plan.base, 1, prompt, answer)
        add(plan.tuned, 1, prompt, answer)
        judge_in = prompt + 2 * answer + _JUDGE_OVERHEAD_TOKENS
        for judge in plan.judges:
            add(judge, orders, judge_in, _JUDGE_REPLY_TOKENS)
        if not plan.judges and grader_judge is not None:
            add(grader_judge, 2, prompt + answer + _JUDGE_OVERHEAD_TOKENS, _GRADER_REPLY_TOKENS)
    return SpendEstimate(paid=paid, usd=total, calls=calls)


def grader_spec(session: Session) -> Any:
    """The session's grader, parsed from the spec the grader step confirmed."""
    from ftwizard.graders.loading import parse_grader
    from ftwizard.json_input import load_yaml

    text = session.grader.spec_text or ""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise InputError(f"the grader spec is not valid YAML: {exc}", field="grader") from None
    if not isinstance(data, dict):
        raise InputError("define the grader on the grader step first", field="grader")
    return parse_grader(data)


def grading_items(path: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Held-out rows as graders see them, with the same ids :func:`read_eval_rows` gives."""
    from ftwizard.datasets.loading import iter_records
    from ftwizard.graders.samples import grading_item
    from ftwizard.providers.media import anchor_images

    ids: list[str] = []
    items: list[dict[str, Any]] = []
    for rec in iter_records(path):
        if not isinstance(rec.data, dict):
            raise InputError("each row must be a JSON object", path=path, line=rec.line)
        raw = rec.data.get("id")
        ids.append(str(raw) if isinstance(raw, str | int) else f"line-{rec.line}")
        items.append(grading_item(anchor_images(rec.data, Path(path).parent)))
    return ids, items


# Recording: summaries in the session, full reports beside it ------------------------------


def report_path(store: SessionStore, session: Session, name: str) -> Path:
    """Where the evaluation's report file ``name`` is kept for this session."""
    folder = store.artifacts_dir(session.id) / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def evaluated_identity(session: Session) -> ModelIdentity | None:
    """What the deployed tuned model is now: its weights hashed again (local; the path
    resolved first), or its hosted id. ``None`` when nothing is deployed."""
    from ftwizard.identity import hosted_identity, local_identity

    deployment = session.deployment
    recorded = deployment.identity
    if recorded is None and deployment.adapter_dir:
        # A local deployment made before identities were recorded: its exported adapter.
        recorded = ModelIdentity(
            model=deployment.model,
            source=deployment.adapter_dir,
            merged_source=deployment.merged_dir,
        )
    if recorded is not None and recorded.source:
        try:
            return local_identity(
                recorded.source, model=recorded.model, merged=recorded.merged_source
            )
        except InputError:
            return recorded.model_copy(update={"sha256": None, "path": None})
    if deployment.model:
        return hosted_identity(deployment.model)
    return None


def record_grader_comparison(
    store: SessionStore,
    session: Session,
    held_out: str,
    comparison: GraderComparison,
    *,
    identity: ModelIdentity | None = None,
) -> None:
    """Write the full comparison of the rows in ``held_out`` and put its figures into
    ``session.evaluation``, with the identity of the tuned model it evaluated (``identity``,
    else the deployed model's, hashed now)."""
    comparison.tuned_identity = identity or evaluated_identity(session)
    path = report_path(store, session, GRADER_REPORT)
    atomic_write_text(path, comparison.model_dump_json(indent=2) + "\n")
    ev = session.evaluation
    ev.held_out_file = held_out
    ev.base_mean = comparison.base_mean
    ev.tuned_mean = comparison.tuned_mean
    ev.grader_n = comparison.n
    ev.fail_to_pass = comparison.fail_to_pass
    ev.pass_to_fail = comparison.pass_to_fail
    ev.grader_report_file = str(path)
    ev.grader_identity = comparison.tuned_identity


def record_pairwise(
    store: SessionStore,
    session: Session,
    held_out: str,
    report: PairwiseReport,
    *,
    identity: ModelIdentity | None = None,
) -> None:
    """Write the full A/B report (every judgment) of the rows in ``held_out`` and put its
    figures into the session, with the identity of the tuned model (model B) it judged."""
    report.tuned_identity = identity or evaluated_identity(session)
    path = report_path(store, session, AB_REPORT)
    atomic_write_text(path, report.model_dump_json(indent=2) + "\n")
    ev = session.evaluation
    ev.held_out_file = held_out
    ev.tuned_win_rate = report.counts.b_win_rate
    ev.tuned_win_ci95 = report.counts.ci95
    verdicts = {"b": "tuned", "a": "base"}
    ev.ab_verdict = verdicts.get(report.verdict, "undecided")
    ev.n = report.counts.n
    ev.kappa = report.kappa
    ev.first_position_rate = report.position_bias.first_position_rate
    ev.ab_report_file = str(path)
    ev.ab_identity = report.tuned_identity


def clear_pairwise(session: Session) -> None:
    """Forget the A/B figures: the settings they came from changed."""
    ev = session.evaluation
    ev.tuned_win_rate = ev.tuned_win_ci95 = ev.ab_verdict = ev.ab_report_file = None
    ev.n = ev.kappa = ev.first_position_rate = None
    ev.ab_identity = None


def clear_grader(session: Session) -> None:
    """Forget the grader comparison's figures."""
    ev = session.evaluation
    ev.base_mean = ev.tuned_mean = ev.grader_report_file = None
    ev.grader_n = ev.fail_to_pass = ev.pass_to_fail = None
    ev.grader_identity = None
