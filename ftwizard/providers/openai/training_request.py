"""The request OpenAI's ``fine_tuning.jobs.create`` takes for a :class:`TrainingSpec`, and the
checks OpenAI would otherwise make only after the upload."""

from __future__ import annotations

from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.training import Hyperparameters, TrainingSpec, UploadedFiles

METADATA_KEY = "ftwizard_key"


_METHOD_TYPES = {"sft": "supervised", "dpo": "dpo", "rft": "reinforcement"}
# Which hyperparameters each OpenAI method accepts (FineTune*Hyperparameters in the spec).
_METHOD_HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "sft": ("n_epochs", "batch_size", "learning_rate_multiplier"),
    "dpo": ("n_epochs", "batch_size", "learning_rate_multiplier", "beta"),
    "rft": (
        "n_epochs",
        "batch_size",
        "learning_rate_multiplier",
        "reasoning_effort",
        "compute_multiplier",
        "eval_interval",
        "eval_samples",
    ),
}


def upload_name(key: str, role: str) -> str:
    """The file name an upload gets, which is how a repeated upload finds the first one."""
    return f"ftwizard-{key}-{role}.jsonl"


def method_hyperparameters(method: str, hp: Hyperparameters) -> dict[str, Any]:
    """The hyperparameters OpenAI's ``method`` object takes for ``method``.

    ``auto`` values (and RFT's ``reasoning_effort="default"``) are left out: they are the
    API's defaults, and leaving them out keeps the request valid for servers that predate a
    setting.
    """
    values = hp.model_dump()
    out: dict[str, Any] = {}
    for name in _METHOD_HYPERPARAMETERS[method]:
        value = values[name]
        if value == "auto" or (name == "reasoning_effort" and value == "default"):
            continue
        out[name] = value
    return out


def build_job_params(spec: TrainingSpec, uploaded: UploadedFiles) -> dict[str, Any]:
    """The keyword arguments of ``fine_tuning.jobs.create`` for ``spec`` (exposed for tests)."""
    kind = _METHOD_TYPES[spec.method]
    section: dict[str, Any] = {}
    hyper = method_hyperparameters(spec.method, spec.hyperparameters)
    if hyper:
        section["hyperparameters"] = hyper
    if spec.method == "rft":
        section["grader"] = spec.grader
    params: dict[str, Any] = {
        "model": spec.base_model,
        "training_file": uploaded.training,
        "method": {"type": kind, kind: section},
        "metadata": {METADATA_KEY: spec.idempotency_key},
    }
    if uploaded.validation is not None:
        params["validation_file"] = uploaded.validation
    if spec.suffix is not None:
        params["suffix"] = spec.suffix
    return params


def check_spec(spec: TrainingSpec) -> None:
    """Refuse what OpenAI would refuse after the upload: RFT needs an OpenAI grader and a
    validation file."""
    if spec.method == "rft":
        if spec.grader is None:
            raise InputError(
                "OpenAI reinforcement fine-tuning needs the grader as OpenAI grader JSON",
                field="grader",
            )
        if spec.validation_file is None:
            raise InputError(
                "OpenAI reinforcement fine-tuning needs a validation file", field="validation_file"
            )
