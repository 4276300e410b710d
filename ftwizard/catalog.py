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

# OpenAI accepts no new fine-tuning jobs after this date (OpenAI's wind-down announcement).
OPENAI_FINE_TUNING_CUTOFF = date(2027, 1, 6)

# Built from scratch at training time; needs no download, so it is the offline default.
BUILTIN_TINY_MODEL = "builtin-tiny"

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
}

# A Hugging Face repo id: "org/name" with the characters the hub allows.
_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# A fine-tuned OpenAI model: "ft:<base>:<org>[:<suffix>]:<id>", which can be tuned again.
_OPENAI_FT_MODEL = re.compile(r"^ft:(?P<base>[A-Za-z0-9._-]+):[A-Za-z0-9._:-]+$")


def supported_models(backend: Backend, method: Method) -> tuple[str, ...]:
    """The base models listed for a backend and method, recommended one first."""
    return BACKENDS[backend].models[method]


def check_base_model(backend: Backend, method: Method, model: str) -> str | None:
    """Return why ``model`` cannot be the base model for this backend and method, or None."""
    model = model.strip()
    if not model:
        return "Enter a base model or pick one from the list."
    listed = supported_models(backend, method)
    if model in listed:
        return None
    info = BACKENDS[backend]
    if backend is Backend.local:
        path = Path(model).expanduser()
        if model.startswith(("/", "./", "../", "~")) or path.exists():
            if not path.is_dir():
                return f"{model}: no such model directory."
            if not (path / "config.json").is_file():
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
    """The dated warning shown whenever OpenAI is the training backend."""
    today = today or date.today()
    days = (OPENAI_FINE_TUNING_CUTOFF - today).days
    when = OPENAI_FINE_TUNING_CUTOFF.isoformat()
    if days > 0:
        return (
            f"OpenAI accepts no new fine-tuning jobs after {when} ({days} days from today). "
            "Models already tuned stay available for inference."
        )
    return (
        f"OpenAI stopped accepting new fine-tuning jobs on {when}; choose local or Vertex "
        "to train. Models already tuned stay available for inference."
    )


def default_task(
    method: Method | None = None, backend: Backend | None = None, base_model: str | None = None
) -> TaskSpec:
    """Fill what the user did not choose with the offline default: SFT on the local backend
    with the built-in tiny model, or the recommended model of the chosen backend."""
    method = method or Method.sft
    backend = backend or Backend.local
    return TaskSpec(
        method=method,
        backend=backend,
        base_model=base_model or supported_models(backend, method)[0],
    )
