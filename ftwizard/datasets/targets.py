"""What each target model accepts: tokenizer, per-example token limit, example counts.

Figures come from the research notes (docs/research, ``openai-finetuning-and-graders.md`` §2, §4
and §6; ``vertex-anthropic-local.md`` §1); ``source`` says where each one is from.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from ftwizard.session import Backend, Method


class TargetModel(BaseModel):
    """A model one can fine-tune, and the rules its training data must follow."""

    name: str
    backend: Backend
    methods: tuple[Method, ...]
    encoding: str | None = None
    max_tokens_per_example: int | None = None
    min_examples: int = 1
    max_train_examples: int | None = None
    max_validation_examples: int | None = None
    validation_required_for: tuple[Method, ...] = ()
    tokenizer_path: Path | None = None
    source: str = ""


_OPENAI_LIMITS = "OpenAI SFT guide (min 10 examples); cookbook Chat_finetuning_data_prep"
_O200K = "o200k_base"
_CL100K = "cl100k_base"

TARGET_MODELS: dict[str, TargetModel] = {
    m.name: m
    for m in [
        TargetModel(
            name="gpt-4.1-2025-04-14",
            backend=Backend.openai,
            methods=(Method.sft, Method.dpo),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            source=f"{_OPENAI_LIMITS}; 65,536-token example limit as published for gpt-4o-mini",
        ),
        TargetModel(
            name="gpt-4.1-mini-2025-04-14",
            backend=Backend.openai,
            methods=(Method.sft, Method.dpo),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            source=f"{_OPENAI_LIMITS}; 65,536-token example limit as published for gpt-4o-mini",
        ),
        TargetModel(
            name="gpt-4.1-nano-2025-04-14",
            backend=Backend.openai,
            methods=(Method.sft, Method.dpo),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            source=f"{_OPENAI_LIMITS}; 65,536-token example limit as published for gpt-4o-mini",
        ),
        TargetModel(
            name="gpt-4o-2024-08-06",
            backend=Backend.openai,
            methods=(Method.sft, Method.dpo),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            source=_OPENAI_LIMITS,
        ),
        TargetModel(
            name="gpt-4o-mini-2024-07-18",
            backend=Backend.openai,
            methods=(Method.sft, Method.dpo),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            source=_OPENAI_LIMITS,
        ),
        TargetModel(
            name="gpt-3.5-turbo",
            backend=Backend.openai,
            methods=(Method.sft,),
            encoding=_CL100K,
            max_tokens_per_example=16_385,
            min_examples=10,
            source=_OPENAI_LIMITS,
        ),
        # Snapshots of gpt-3.5-turbo train with their own context windows (OpenAI fine-tuning
        # guide: 16,385 tokens per example for -0125 and -1106, 4,096 for -0613).
        *(
            TargetModel(
                name=f"gpt-3.5-turbo-{snapshot}",
                backend=Backend.openai,
                methods=(Method.sft,),
                encoding=_CL100K,
                max_tokens_per_example=limit,
                min_examples=10,
                source=f"{_OPENAI_LIMITS}; {limit:,}-token example limit for this snapshot",
            )
            for snapshot, limit in (("0125", 16_385), ("1106", 16_385), ("0613", 4_096))
        ),
        TargetModel(
            name="o4-mini-2025-04-16",
            backend=Backend.openai,
            methods=(Method.rft,),
            encoding=_O200K,
            max_tokens_per_example=65_536,
            min_examples=10,
            max_train_examples=50_000,
            max_validation_examples=1_000,
            validation_required_for=(Method.rft,),
            source="OpenAI RFT guide: training file max 50,000, validation max 1,000, "
            "validation file required",
        ),
        TargetModel(
            name="gemini-2.5-flash",
            backend=Backend.vertex,
            methods=(Method.sft, Method.dpo),
            max_tokens_per_example=131_072,
            min_examples=1,
            max_validation_examples=5_000,
            source="Vertex AI Gemini tuning docs (131,072 tokens/example, 5,000 validation "
            "examples, >=100 examples recommended)",
        ),
        TargetModel(
            name="gemini-2.5-flash-lite",
            backend=Backend.vertex,
            methods=(Method.sft, Method.dpo),
            max_tokens_per_example=131_072,
            min_examples=1,
            max_validation_examples=5_000,
            source="Vertex AI Gemini tuning docs (131,072 tokens/example, 5,000 validation "
            "examples, >=100 examples recommended)",
        ),
    ]
}

DEFAULT_MODEL_FOR_METHOD: dict[Method, str] = {
    Method.sft: "gpt-4.1-mini-2025-04-14",
    Method.dpo: "gpt-4.1-mini-2025-04-14",
    Method.rft: "o4-mini-2025-04-16",
}


# The provider prefixes of ftwizard.providers.models.MODEL_PROVIDERS, kept here as plain strings
# so resolving a bare name does not import the provider layer (validation start-up time).
_PROVIDER_PREFIXES = frozenset({"openai", "anthropic", "vertex", "together", "fireworks", "local"})


def _resolve_provider_model(spec: str, method: Method) -> TargetModel:
    """``provider:NAME``, parsed the way every other command parses it."""
    from ftwizard.errors import InputError
    from ftwizard.providers.models import parse_model

    ref = parse_model(spec)
    if ref.provider == "local":
        path = Path(ref.name).expanduser()
        return TargetModel(
            name=ref.name,
            backend=Backend.local,
            methods=(Method.sft, Method.dpo, Method.rft),
            tokenizer_path=path if path.is_dir() else None,
            source="local model",
        )
    if ref.provider == "openai":
        target = resolve_target(ref.name, method)
        if target.backend is Backend.openai:
            return target
        # A name OpenAI does not publish (a model behind OPENAI_BASE_URL): OpenAI's rules.
        return _assumed_openai(ref.name, _O200K)
    if ref.provider == "vertex":
        target = resolve_target(ref.name, method)
        if target.backend is Backend.vertex:
            return target
        return _assumed_gemini(ref.name)
    if ref.provider in ("together", "fireworks"):
        # Open models: no published tokenizer here, so counts are estimates (labelled so).
        return TargetModel(
            name=ref.name,
            backend=Backend(ref.provider),
            methods=(Method.sft, Method.dpo)
            + ((Method.rft,) if ref.provider == "fireworks" else ()),
            min_examples=3 if ref.provider == "fireworks" else 1,
            source=f"{ref.provider.capitalize()} fine-tuning docs",
        )
    raise InputError(
        f"model '{spec}': ftwizard validates training data for openai:, vertex:, together:, "
        f"fireworks: and local: models, not {ref.provider}:",
        field="--model",
    )


def _assumed_openai(name: str, encoding: str) -> TargetModel:
    return TargetModel(
        name=name,
        backend=Backend.openai,
        methods=(Method.sft, Method.dpo, Method.rft),
        encoding=encoding,
        max_tokens_per_example=65_536,
        min_examples=10,
        validation_required_for=(Method.rft,),
        source="assumed OpenAI fine-tuning rules",
    )


def _assumed_gemini(name: str) -> TargetModel:
    return TargetModel(
        name=name,
        backend=Backend.vertex,
        methods=(Method.sft, Method.dpo),
        max_tokens_per_example=131_072,
        source="assumed Gemini 2.5 tuning limits",
    )


def resolve_target(name: str | None, method: Method = Method.sft) -> TargetModel:
    """Return the rules for ``name``: a known model, an OpenAI-like name, or a local folder.

    An unknown ``gpt-*``/``o*`` name gets the OpenAI rules of its family; a path to a folder is a
    local Hugging Face model whose own tokenizer counts tokens; any other name is a local model
    with estimated counts.
    """
    if name is None:
        name = DEFAULT_MODEL_FOR_METHOD[method]
    prefix = name.partition(":")[0]
    if prefix in _PROVIDER_PREFIXES:
        return _resolve_provider_model(name, method)
    if name in TARGET_MODELS:
        return TARGET_MODELS[name]
    bare = name.removeprefix("ft:").split(":", 1)[0] if name.startswith("ft:") else name
    for known, model in TARGET_MODELS.items():
        if known.startswith(bare + "-") or bare.startswith(known):
            return model.model_copy(update={"name": name})
    lowered = name.lower()
    if lowered.startswith("gemini"):
        return _assumed_gemini(name)
    if lowered.startswith(("gpt-3.5", "gpt-4-", "gpt-4")) and not lowered.startswith(
        ("gpt-4o", "gpt-4.1")
    ):
        encoding = _CL100K
    else:
        encoding = _O200K
    if lowered.startswith(("gpt-", "o1", "o3", "o4")):
        return _assumed_openai(name, encoding)
    path = Path(name).expanduser()
    return TargetModel(
        name=name,
        backend=Backend.local,
        methods=(Method.sft, Method.dpo, Method.rft),
        tokenizer_path=path if path.is_dir() else None,
        source="local model",
    )
