"""Which judge model a grader spec needs, and the provider that calls it.

Used by ``ftwizard grade`` and the grader screen alike, so a spec is judged the same way
wherever it runs. The judge is a model string like any other (``ftwizard.providers.models``):
Anthropic for ``claude-*`` models, otherwise OpenAI or, with a base URL, any
OpenAI-compatible server. Keys come from the environment at call time; none is stored.
"""

from __future__ import annotations

from typing import Literal

from ftwizard.errors import InputError
from ftwizard.graders.spec import MODEL_KINDS, AnyGrader, iter_graders
from ftwizard.providers.base import ChatProvider
from ftwizard.providers.models import (
    ModelRef,
    build_generation_provider,
    parse_model,
)
from ftwizard.providers.preflight import preflight_model

JudgeKind = Literal["openai", "anthropic", "openai_compatible"]


def judge_model(spec: AnyGrader) -> str | None:
    """The model the spec's first model grader asks for, or None when it needs no judge."""
    for _, grader in iter_graders(spec):
        if grader.type in MODEL_KINDS:
            return str(getattr(grader, "model", "")) or None
    return None


def judge_ref(
    spec: AnyGrader, *, kind: JudgeKind | None = None, base_url: str | None = None
) -> ModelRef | None:
    """The judge of ``spec`` as a model reference, or None when it needs no judge."""
    model = judge_model(spec)
    if model is None:
        return None
    if kind is None:
        kind = "anthropic" if model.startswith("claude") and not base_url else "openai"
    if kind == "openai_compatible" and not base_url:
        raise InputError("an OpenAI-compatible judge needs its base URL", field="judge base URL")
    provider = "anthropic" if kind == "anthropic" else "openai"
    return parse_model(f"{provider}:{model}", base_url=base_url, field="judge")


def judge_for(
    spec: AnyGrader, *, kind: JudgeKind | None = None, base_url: str | None = None
) -> ChatProvider | None:
    """The provider that judges ``spec``'s model graders, or None when it has none.

    Raises :class:`InputError` when the judge cannot be called (its key is not set).
    """
    ref = judge_ref(spec, kind=kind, base_url=base_url)
    if ref is None:
        return None
    preflight_model(ref, role="the judge", field="judge")
    return build_generation_provider(ref)
