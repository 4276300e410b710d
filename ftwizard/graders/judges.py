"""Which judge model a grader spec needs, and the provider that calls it.

Used by ``ftwizard grade`` and the grader screen alike, so a spec is judged the same way
wherever it runs. Keys come from the environment at call time; none is stored.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ftwizard.errors import InputError
from ftwizard.graders.spec import MODEL_KINDS, AnyGrader, iter_graders
from ftwizard.providers.base import ChatProvider
from ftwizard.providers.registry import ChatProviderConfig, ProviderKind, build_chat_provider


def judge_model(spec: AnyGrader) -> str | None:
    """The model the spec's first model grader asks for, or None when it needs no judge."""
    for _, grader in iter_graders(spec):
        if grader.type in MODEL_KINDS:
            return str(getattr(grader, "model", "")) or None
    return None


def judge_config(
    spec: AnyGrader, *, kind: ProviderKind | None = None, base_url: str | None = None
) -> ChatProviderConfig | None:
    """The judge configuration for ``spec``: Anthropic for ``claude-*`` models, an
    OpenAI-compatible server when a base URL is given, OpenAI otherwise."""
    model = judge_model(spec)
    if model is None:
        return None
    if kind is None:
        kind = (
            "openai_compatible"
            if base_url
            else "anthropic"
            if model.startswith("claude")
            else "openai"
        )
    try:
        return ChatProviderConfig(kind=kind, model=model, base_url=base_url)
    except ValidationError as exc:
        raise InputError(exc.errors()[0]["msg"], field="judge base URL") from None


def judge_for(
    spec: AnyGrader, *, kind: ProviderKind | None = None, base_url: str | None = None
) -> ChatProvider | None:
    """The provider that judges ``spec``'s model graders, or None when it has none.

    Raises :class:`InputError` when the judge cannot be called (its key is not set).
    """
    config = judge_config(spec, kind=kind, base_url=base_url)
    if config is None:
        return None
    problem = config.key_problem()
    if problem:
        raise InputError(
            f"the judge for model '{config.model}' cannot be called: {problem}", field="judge"
        )
    return build_chat_provider(config)


def needs_judge(spec: Any) -> bool:
    """Whether any grader in ``spec`` is a model grader."""
    return any(g.type in MODEL_KINDS for _, g in iter_graders(spec))
