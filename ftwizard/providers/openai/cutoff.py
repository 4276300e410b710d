"""OpenAI's fine-tuning wind-down: warn before the cutoff date, refuse new jobs from it on,
and refuse a job whose base model shuts down before the job could finish.

OpenAI accepts no new fine-tuning jobs from 2027-01-06 (``catalog.OPENAI_FINE_TUNING_CUTOFF``);
gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini shut down on 2027-01-14 with every fine-tune built
on them, and o4-mini (the only RFT base) shut down on 2026-10-23 (the dated table in
`providers/openai/shutdown.py`). Jobs already created keep running until then; the messages
say how to take the same dataset and grader elsewhere.
"""

from __future__ import annotations

from datetime import date, timedelta

from ftwizard.catalog import (
    OPENAI_BASES_SHUTDOWN,
    OPENAI_FINE_TUNING_CUTOFF,
    openai_cutoff_notice,
)
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


# How long a job may take, queue included, when nothing better is known: a job must be able to
# finish this long before its base model shuts down. OpenAI SFT/DPO jobs usually take hours;
# two days leaves room for a long queue.
JOB_ALLOWANCE = timedelta(days=2)


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
        f"on Together or Fireworks the chat and preference JSONL train as is (Fireworks also "
        f"runs RFT); on Vertex AI, {_VERTEX_STEPS[method]}; locally, {_LOCAL_STEPS[method]}. "
        "Models you already tuned on OpenAI stay callable until their base shuts down "
        f"({OPENAI_BASES_SHUTDOWN.isoformat()} for gpt-4o and gpt-4.1)"
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


def refuse_if_base_shuts_down(
    today: date, method: TrainingMethod, model: str, allowance: timedelta = JOB_ALLOWANCE
) -> None:
    """Raise :class:`ProviderError` when ``model``'s base shuts down before a job started
    ``today`` could finish (``allowance`` later); a model with no known date passes."""
    from ftwizard.providers.openai.shutdown import table_shutdown

    shutdown = table_shutdown(model)
    if shutdown is None or today + allowance < shutdown:
        return
    gone = "shut down" if shutdown <= today else "shuts down"
    raise ProviderError(
        f"{model}'s base model {gone} on {shutdown.isoformat()}, with the fine-tunes built on "
        f"it: a job started on {today.isoformat()} could not finish and be used before then",
        provider="openai",
        model=model,
        hint=migration_advice(method),
    )


__all__ = [
    "JOB_ALLOWANCE",
    "cutoff_passed",
    "cutoff_warning",
    "migration_advice",
    "refuse_after_cutoff",
    "refuse_if_base_shuts_down",
]
