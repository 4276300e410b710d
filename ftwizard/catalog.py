"""What each backend can train: methods, base models, and how a typed base model is checked.

The model lists come from the providers' documentation as summarised in
``shared/research`` (OpenAI fine-tuning guides, Vertex tuning docs); local training accepts any
causal language model that transformers can load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ftwizard.session import Backend, Method, TaskSpec

# OpenAI's wind-down (sources in shared/research/world-2026-12.md): no new fine-tuning jobs
# from this date...
OPENAI_FINE_TUNING_CUTOFF = date(2027, 1, 6)
# ...and the bases that can still be tuned shut down on this one, their fine-tunes with them.
OPENAI_BASES_SHUTDOWN = date(2027, 1, 14)
OPENAI_TUNABLE_BASES = "gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini"

# Built from scratch at training time; needs no download, so it is the offline default.
BUILTIN_TINY_MODEL = "builtin-tiny"
# Its vision twin: a tiny Qwen-VL-shaped model, also built from scratch (the images quickstart).
BUILTIN_TINY_VL_MODEL = "builtin-tiny-vl"

# One line each, short enough for a radio button in an 80-column terminal.
METHOD_HINTS: dict[Method, str] = {
    Method.sft: "SFT - imitate good example answers you already have",
    Method.dpo: "DPO - learn from pairs of a better and a worse answer",
    Method.rft: "RFT - raise a grader's score when ideal answers are scarce",
}


@dataclass(frozen=True)
class BackendInfo:
    """What a backend offers and what it needs."""

    backend: Backend
    label: str
    summary: str
    models: dict[Method, tuple[str, ...]]
    free_text: bool  # whether a base model outside the list may be typed


_LOCAL_MODELS = (
    BUILTIN_TINY_MODEL,
    BUILTIN_TINY_VL_MODEL,
    "Qwen/Qwen2.5-0.5B-Instruct",
    "HuggingFaceTB/SmolLM2-360M-Instruct",
    "meta-llama/Llama-3.2-1B-Instruct",
    "google/gemma-3-1b-it",
)

_OPENAI_TEXT_MODELS = (
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-2025-04-14",
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
)

# Together's fine-tuning examples (together-openapi-2026-04.yaml); any model Together lists
# under /fine-tunes/models/supported may be typed.
_TOGETHER_MODELS = (
    "Qwen/Qwen3.5-9B",
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
)

# Fireworks model resource names (accounts/fireworks/models/...); any tunable one may be typed.
_FIREWORKS_MODELS = (
    "accounts/fireworks/models/qwen3-8b",
    "accounts/fireworks/models/llama-v3p1-8b-instruct",
)

_VERTEX_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-pro",
)

BACKENDS: dict[Backend, BackendInfo] = {
    Backend.local: BackendInfo(
        backend=Backend.local,
        label="Local",
        summary="LoRA on this machine with transformers + peft + trl; free, offline",
        models={Method.sft: _LOCAL_MODELS, Method.dpo: _LOCAL_MODELS, Method.rft: _LOCAL_MODELS},
        free_text=True,
    ),
    Backend.openai: BackendInfo(
        backend=Backend.openai,
        label="OpenAI",
        summary="hosted fine-tuning; RFT on reasoning models",
        models={
            Method.sft: _OPENAI_TEXT_MODELS,
            Method.dpo: _OPENAI_TEXT_MODELS,
            Method.rft: ("o4-mini-2025-04-16",),
        },
        free_text=False,
    ),
    Backend.vertex: BackendInfo(
        backend=Backend.vertex,
        label="Vertex AI",
        summary="hosted Gemini tuning on Google Cloud",
        models={Method.sft: _VERTEX_MODELS, Method.dpo: _VERTEX_MODELS, Method.rft: _VERTEX_MODELS},
        free_text=False,
    ),
    Backend.together: BackendInfo(
        backend=Backend.together,
        label="Together",
        summary="hosted SFT or DPO of open models, LoRA or full; price estimate first",
        # Together's managed fine-tuning has no RFT (its RL is a separate training-loop API).
        models={Method.sft: _TOGETHER_MODELS, Method.dpo: _TOGETHER_MODELS, Method.rft: ()},
        free_text=True,
    ),
    Backend.fireworks: BackendInfo(
        backend=Backend.fireworks,
        label="Fireworks",
        summary="hosted SFT, DPO and RFT of open models",
        models={
            Method.sft: _FIREWORKS_MODELS,
            Method.dpo: _FIREWORKS_MODELS,
            Method.rft: _FIREWORKS_MODELS,
        },
        free_text=True,
    ),
}

# A Hugging Face repo id: "org/name" with the characters the hub allows.
_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# A fine-tuned OpenAI model: "ft:<base>:<org>[:<suffix>]:<id>", which can be tuned again.
_OPENAI_FT_MODEL = re.compile(r"^ft:(?P<base>[A-Za-z0-9._-]+):[A-Za-z0-9._:-]+$")


def supported_models(backend: Backend, method: Method) -> tuple[str, ...]:
    """The base models listed for a backend and method, recommended one first (empty when the
    backend does not offer the method)."""
    return BACKENDS[backend].models[method]


def default_model(backend: Backend, method: Method) -> str | None:
    """The recommended base model, or None when the backend does not offer the method."""
    listed = supported_models(backend, method)
    return listed[0] if listed else None


_FIREWORKS_MODEL = re.compile(r"^accounts/[a-z0-9-]+/models/[A-Za-z0-9._-]+$")


# Longer than any model id or path a backend accepts (Linux paths stop at 4,096 bytes).
MAX_MODEL_CHARS = 4096


def check_base_model(backend: Backend, method: Method, model: str) -> str | None:
    """Return why ``model`` cannot be the base model for this backend and method, or None."""
    model = model.strip()
    if not model:
        return "Enter a base model or pick one from the list."
    if len(model) > MAX_MODEL_CHARS:
        return (
            f"The base model name is {len(model):,} characters long; model ids and paths are "
            f"at most {MAX_MODEL_CHARS:,}."
        )
    if any("\ud800" <= ch <= "\udfff" for ch in model):
        return "The base model name holds bytes that are not UTF-8; type it again."
    listed = supported_models(backend, method)
    if model in listed:
        return None
    info = BACKENDS[backend]
    if not listed:
        return f"{info.label} does not offer {method.value.upper()}; choose another method."
    if backend is Backend.together and _HF_REPO_ID.match(model):
        return None
    if backend is Backend.fireworks and _FIREWORKS_MODEL.match(model):
        return None
    if backend is Backend.local:
        path = Path(model).expanduser()
        try:
            exists = path.exists()
            is_dir = exists and path.is_dir()
            has_config = is_dir and (path / "config.json").is_file()
        except OSError as exc:  # a name the file system cannot even look up
            return f"{model[:80]}: cannot be looked up ({exc.strerror or exc})."
        if model.startswith(("/", "./", "../", "~")) or exists:
            if not is_dir:
                return f"{model}: no such model directory."
            if not has_config:
                return f"{model}: not a transformers model directory (no config.json)."
            return None
        if _HF_REPO_ID.match(model):
            return None
        return (
            f"'{model}' is neither a Hugging Face repo id (org/name) nor a local model directory."
        )
    if backend is Backend.openai:
        match = _OPENAI_FT_MODEL.match(model)
        if match and match.group("base") in listed:
            return None
    choices = ", ".join(listed)
    return (
        f"{info.label} cannot fine-tune '{model}' with {method.value.upper()}; "
        f"use one of: {choices}."
    )


def openai_cutoff_notice(today: date | None = None) -> str:
    """The dated warning shown whenever OpenAI is the training backend: both dates."""
    today = today or date.today()
    days = (OPENAI_FINE_TUNING_CUTOFF - today).days
    when = OPENAI_FINE_TUNING_CUTOFF.isoformat()
    shutdown = (
        f"{OPENAI_TUNABLE_BASES} shut down on {OPENAI_BASES_SHUTDOWN.isoformat()}, and every "
        "fine-tune built on them with them"
    )
    if days > 0:
        return (
            f"OpenAI accepts no new fine-tuning jobs from {when} ({days} days from today); "
            f"{shutdown}. Together, Fireworks, Vertex and local keep training."
        )
    return (
        f"OpenAI stopped accepting new fine-tuning jobs on {when}; {shutdown}. Choose Together, "
        "Fireworks, Vertex or local to train (`ftwizard import openai-job` moves a job)."
    )


def default_task(
    method: Method | None = None, backend: Backend | None = None, base_model: str | None = None
) -> TaskSpec:
    """Fill what the user did not choose with the offline default: SFT on the local backend
    with the built-in tiny model, or the recommended model of the chosen backend."""
    method = method or Method.sft
    backend = backend or Backend.local
    return TaskSpec(
        method=method, backend=backend, base_model=base_model or default_model(backend, method)
    )
