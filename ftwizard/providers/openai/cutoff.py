"""OpenAI's fine-tuning wind-down: warn before the cutoff date, refuse new jobs from it on.

OpenAI accepts no new fine-tuning jobs from 2027-01-06 (``catalog.OPENAI_FINE_TUNING_CUTOFF``).
Jobs already created keep running and tuned models stay callable, so only *starting* a job is
refused; the message says how to take the same dataset and grader to Vertex AI or local.
"""

from __future__ import annotations

from datetime import date

from ftwizard.catalog import OPENAI_FINE_TUNING_CUTOFF, openai_cutoff_notice
from ftwizard.providers.base import ProviderError
from ftwizard.providers.training import TrainingMethod

# What the same data needs on the other backends, per method (format names are those of
# `ftwizard convert --to`).
_VERTEX_STEPS: dict[TrainingMethod, str] = {
    "sft": "convert the training and validation files with "
    "`ftwizard convert IN OUT --to gemini` (Vertex reads Gemini `contents`)",
    "dpo": "Vertex preference tuning takes the same pairs; convert them with "
    "`ftwizard convert IN OUT --to gemini`",
    "rft": "the grader exports to a Vertex reward config (string checks, regex, python and "
    "score_model map; label_model and text_similarity do not) and the prompts convert with "
    "`ftwizard convert IN OUT --to gemini`",
}
_LOCAL_STEPS: dict[TrainingMethod, str] = {
    "sft": "the same JSONL trains as is (LoRA with TRL's SFTTrainer)",
    "dpo": "the same preference JSONL trains as is (TRL's DPOTrainer)",
    "rft": "the same JSONL and the same grader train as is: the grader becomes the GRPO "
    "reward function, run locally",
}


def cutoff_passed(today: date) -> bool:
    """Whether OpenAI no longer accepts new fine-tuning jobs on ``today``."""
    return today >= OPENAI_FINE_TUNING_CUTOFF


def cutoff_warning(today: date) -> str | None:
    """The dated warning to show before starting an OpenAI job; ``None`` once it has passed
    (then :func:`refuse_after_cutoff` applies)."""
    if cutoff_passed(today):
        return None
    return openai_cutoff_notice(today)


def migration_advice(method: TrainingMethod) -> str:
    """How to train the same dataset and grader on Vertex AI or locally instead."""
    return (
        "Change the backend in the task step (`ftwizard resume SESSION`) and keep your data: "
        f"on Vertex AI, {_VERTEX_STEPS[method]}; locally, {_LOCAL_STEPS[method]}. "
        "Models you already tuned on OpenAI stay callable"
    )


def refuse_after_cutoff(today: date, method: TrainingMethod, model: str | None = None) -> None:
    """Raise :class:`ProviderError` when ``today`` is on or after the cutoff; else return."""
    if not cutoff_passed(today):
        return
    raise ProviderError(
        f"OpenAI stopped accepting new fine-tuning jobs on {OPENAI_FINE_TUNING_CUTOFF.isoformat()}",
        provider="openai",
        model=model,
        hint=migration_advice(method),
    )


__all__ = ["cutoff_passed", "cutoff_warning", "migration_advice", "refuse_after_cutoff"]
