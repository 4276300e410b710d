"""Model strings for teachers, judges and compared models, on top of the shared parser.

``ftwizard.providers.models`` parses ``openai:NAME``, ``anthropic:NAME``, ``vertex:NAME`` and
``local:NAME``; this adds the two rules distill and evaluate need: which models a command's
single ``--base-url`` applies to, and the judge a grader file's model graders call.
"""

from __future__ import annotations

from typing import Any

from ftwizard.providers.models import ModelRef, parse_model


def model_ref(
    spec: str, *, base_url: str | None = None, field: str, openai_only: bool = False
) -> ModelRef:
    """Parse a model string; ``base_url`` is applied to it (to ``openai:`` models only with
    ``openai_only``, so one ``--base-url`` can serve a local server beside a Claude judge)."""
    applies = base_url is not None and (not openai_only or spec.strip().startswith("openai:"))
    return parse_model(spec, base_url=base_url if applies else None, field=field)


def require_credentials(ref: ModelRef, *, field: str) -> None:
    """Raise :class:`InputError` before anything runs when ``ref`` cannot be called."""
    from ftwizard.providers.preflight import preflight_model

    preflight_model(ref, role="model", field=field)


def grader_judge_ref(grader: Any) -> ModelRef | None:
    """The judge for a grader spec's model graders (named by bare model ids, as OpenAI's
    grader format does): Anthropic for ``claude-*``, else OpenAI; ``None`` when none."""
    from ftwizard.graders.spec import MODEL_KINDS, iter_graders

    models = [getattr(g, "model", "") for _, g in iter_graders(grader) if g.type in MODEL_KINDS]
    if not models:
        return None
    name = models[0]
    prefix = "anthropic" if name.startswith("claude") else "openai"
    return parse_model(f"{prefix}:{name}", field="--grader")
