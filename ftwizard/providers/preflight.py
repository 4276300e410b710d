"""One preflight for every call that needs a key or costs money, shared by the wizard and the CLI.

It runs before any estimate is shown or any cost question is asked, reads no key's value, and
touches no network, so a call that cannot work fails at once (well under a second) with a
message that names the variable (or Google's ADC for Vertex) and how to set it. Every caller
uses it: the dry run (the model and its judge), distillation (teacher and judge), grader judges,
evaluation (the compared models and judges) and the creation of a training job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from ftwizard.credentials import key_fix
from ftwizard.errors import InputError
from ftwizard.providers.models import ModelRef, credential_problem, vertex_problem


class PreflightFailed(InputError):
    """A call that cannot work for lack of credentials, caught before anything runs (exit 2)."""


def preflight_models(
    calls: Iterable[tuple[ModelRef, str, str]], environ: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`PreflightFailed` for the first ``(model, role, field)`` that cannot be called.

    ``role`` says what the model is for ("the base model", "the judge"); ``field`` is the flag
    or the on-screen label that chooses it (never a widget id: people read this).
    """
    env = os.environ if environ is None else environ
    for ref, role, field in calls:
        problem = credential_problem(ref, env)
        if problem:
            raise PreflightFailed(f"{role} {ref.spec} cannot be called: {problem}", field=field)


def preflight_model(
    ref: ModelRef, *, role: str, field: str, environ: Mapping[str, str] | None = None
) -> None:
    """:func:`preflight_models` for one model."""
    preflight_models([(ref, role, field)], environ)


# What creating a training job on each hosted backend needs from the environment.
_TRAINING_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "together": ("TOGETHER_API_KEY",),
    "fireworks": ("FIREWORKS_API_KEY", "FIREWORKS_ACCOUNT_ID"),
}


def training_problem(backend: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why a training job on ``backend`` cannot be created for lack of credentials, or ``None``."""
    env = os.environ if environ is None else environ
    if backend == "vertex":
        return vertex_problem(env)
    for name in _TRAINING_KEYS.get(backend, ()):
        if not env.get(name, "").strip():
            return f"the environment variable {name} is not set: {key_fix(name)}"
    return None


def preflight_training(
    backend: str, *, field: str, environ: Mapping[str, str] | None = None
) -> None:
    """Raise :class:`PreflightFailed` when a ``backend`` training job cannot be created."""
    problem = training_problem(backend, environ)
    if problem:
        raise PreflightFailed(
            f"a training job on {backend} cannot be created: {problem}", field=field
        )


__all__ = [
    "PreflightFailed",
    "preflight_model",
    "preflight_models",
    "preflight_training",
    "training_problem",
]
