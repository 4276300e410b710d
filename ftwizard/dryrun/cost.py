"""What a dry run costs: token prices, the estimate shown before spending, and small helpers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ftwizard.dryrun.report import (
    ASSUMED_JUDGE_OUTPUT_TOKENS,
    ASSUMED_OUTPUT_TOKENS,
    MAX_STORED_CHARS,
    CostFigure,
    DryRunConfig,
    DryRunEstimate,
    TokenUsage,
)
from ftwizard.dryrun.sampling import SampleSet, sample_rows
from ftwizard.graders.judges import judge_model
from ftwizard.graders.samples import answer_of, prompt_messages
from ftwizard.graders.spec import AnyGrader, ScoreModelGrader
from ftwizard.providers.base import ChatProvider, Generation, GenerationRequest, ProviderError
from ftwizard.providers.models import ModelRef

if TYPE_CHECKING:
    # Annotations only: the topics module is not needed to run a dry run.
    from ftwizard.datasets.topics import TopicTree

_FATAL_STATUS = frozenset({401, 403, 404})


def score_scale(spec: AnyGrader) -> tuple[float, float]:
    """The range a grader's scores run over: a top-level score_model's ``range``, else 0-1."""
    if isinstance(spec, ScoreModelGrader):
        return (float(spec.range[0]), float(spec.range[1]))
    return (0.0, 1.0)


def uses_output_json(spec: AnyGrader) -> bool:
    """Whether the grader reads ``sample.output_json`` (so non-JSON outputs fail to parse)."""
    from ftwizard.graders.spec import spec_to_dict

    return "output_json" in json.dumps(spec_to_dict(spec))


def clip_text(text: str) -> str:
    return text if len(text) <= MAX_STORED_CHARS else text[:MAX_STORED_CHARS] + " [...]"


def prompt_text(messages: Sequence[Any]) -> str:
    return clip_text("\n\n".join(f"{m.role}: {m.content}" for m in messages))


def estimate_tokens(text: str) -> int:
    # About four characters per token: good enough to price a dry run, and labelled so.
    return math.ceil(len(text) / 4)


def is_fatal(error: ProviderError) -> bool:
    if error.status_code in _FATAL_STATUS:
        return True
    # No status and not retryable: a missing key or project, a bad model path.
    return error.status_code is None and not error.retryable


def _price_notes(model: str, usd: float | None, what: str) -> list[str]:
    return [f"no price known for {what} model '{model}'"] if usd is None else []


def batch_price(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Dollars for tokens sent through a batch API: half the direct price.

    Both Anthropic Message Batches and the OpenAI Batch API bill every token at 50 % of the
    direct rate; ``pricing.teacher_cost(batch=True)`` halves Anthropic prices only, so the
    halving is done here for both.
    """
    from ftwizard.pricing import teacher_cost

    usd = teacher_cost(model, input_tokens, output_tokens)
    return None if usd is None else usd / 2


def cost_of(
    ref: ModelRef,
    usage: TokenUsage,
    judge: str | None,
    *,
    batch: bool = False,
) -> CostFigure:
    from ftwizard.pricing import inference_cost_per_call, teacher_cost

    notes: list[str] = []
    generation: float | None = 0.0
    if batch:
        generation = batch_price(ref.name, usage.input_tokens, usage.output_tokens)
        notes += _price_notes(ref.name, generation, "the base")
        if generation is not None:
            notes.append("generation priced at the batch API rate (half price)")
    elif ref.is_paid:
        # Priced by model name wherever it is served: a proxy in front of OpenAI bills the same;
        # a self-hosted model has no row in the price table and stays unknown.
        generation = inference_cost_per_call(
            ref.name, usage.input_tokens, usage.output_tokens
        ).base_usd
        if generation is None and ref.compatible_base_url() is not None:
            notes.append(f"'{ref.name}' on an OpenAI-compatible server: its price is unknown here")
        else:
            notes += _price_notes(ref.name, generation, "the base")
    judge_usd: float | None = 0.0
    if judge is not None and (usage.judge_input_tokens or usage.judge_output_tokens):
        judge_usd = teacher_cost(judge, usage.judge_input_tokens, usage.judge_output_tokens)
        notes += _price_notes(judge, judge_usd, "the judge")
    total = None if generation is None or judge_usd is None else generation + judge_usd
    return CostFigure(generation_usd=generation, judge_usd=judge_usd, total_usd=total, notes=notes)


class CountingProvider:
    """Wraps a judge to count its tokens (model graders only return scores)."""

    def __init__(self, inner: ChatProvider, usage: TokenUsage) -> None:
        self.inner = inner
        self.name = inner.name
        self.usage = usage

    async def generate(self, request: GenerationRequest) -> Generation:
        result = await self.inner.generate(request)
        self.usage.judge_input_tokens += result.input_tokens
        self.usage.judge_output_tokens += result.output_tokens
        return result


# --- estimate ---------------------------------------------------------------------------------


def estimate_dryrun_cost(
    config: DryRunConfig,
    spec: AnyGrader,
    *,
    sample_set: SampleSet | None = None,
    topics: TopicTree | None = None,
) -> DryRunEstimate:
    """What the dry run described by ``config`` will cost, before it runs.

    Prompt tokens are estimated from the sampled rows (about four characters a token); output
    tokens from the rows' own answers when they have them, else ``max_tokens`` or 512. A model
    grader adds one judge call per sample plus the re-grade subset. With K answers per prompt
    (``config.k``) every figure but the re-grade subset is K times larger. Pass the returned
    ``sample_set`` to :class:`DryRun` so it runs on exactly the rows that were priced.
    """
    ref = config.model_ref()
    rows = sample_set or sample_rows(
        config.data, config.samples, seed=config.seed, topics=topics, topic_field=config.topic_field
    )
    input_tokens = output_tokens = 0
    for row in rows.rows:
        input_tokens += sum(estimate_tokens(m.content) + 4 for m in prompt_messages(row.item))
        answer = answer_of(row.item)
        guess = estimate_tokens(answer) if answer else ASSUMED_OUTPUT_TOKENS
        output_tokens += min(guess, config.max_tokens) if config.max_tokens else guess
    # K draws per prompt: K times the prompt and answer tokens, K judge calls per prompt.
    k = config.k
    input_tokens, output_tokens, draws = input_tokens * k, output_tokens * k, len(rows.rows) * k
    judge = judge_model(spec)
    usage = TokenUsage(input_tokens=input_tokens, output_tokens=output_tokens)
    judge_calls = 0
    if judge is not None:
        judge_calls = draws + min(config.regrade, draws)
        # The judge reads the prompt and the answer again, plus its own instructions.
        per_call = (input_tokens + output_tokens) / max(1, draws) + 200
        usage.judge_input_tokens = round(per_call * judge_calls)
        usage.judge_output_tokens = ASSUMED_JUDGE_OUTPUT_TOKENS * judge_calls
    cost = cost_of(ref, usage, judge, batch=config.batch)
    cost.notes.insert(0, "estimate: about 4 characters per token")
    return DryRunEstimate(
        model=ref.spec,
        samples=len(rows.rows),
        samples_per_prompt=k,
        paid=ref.is_paid or judge is not None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        judge_calls=judge_calls,
        judge_input_tokens=usage.judge_input_tokens,
        judge_output_tokens=usage.judge_output_tokens,
        cost=cost,
        sample_set=rows,
    )


def preflight_dryrun(
    config: DryRunConfig,
    spec: AnyGrader,
    *,
    judge_base_url: str | None = None,
    model_field: str,
    judge_field: str,
) -> None:
    """Fail at once, before any estimate or cost question, when the model the dry run samples
    or the judge its grader calls cannot be called (a key, a project or ADC is missing)."""
    from ftwizard.graders.judges import judge_ref
    from ftwizard.providers.preflight import preflight_models

    calls = [(config.model_ref(), "the base model", model_field)]
    judge = judge_ref(spec, base_url=judge_base_url)
    if judge is not None:
        calls.append((judge, "the judge", judge_field))
    preflight_models(calls)
