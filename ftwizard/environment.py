"""The environment check: which credentials and packages a backend needs, and which are present.

Values are never read out, only whether they are set. Package checks use
``importlib.util.find_spec`` so that nothing heavy (torch, google.*) is imported just to look.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel

from ftwizard.credentials import adc_path, is_set
from ftwizard.session import Backend


class CheckState(StrEnum):
    """The outcome of one environment check."""

    ok = "ok"
    missing = "missing"  # required by the chosen backend and absent
    optional = "optional"  # absent, but only needed for optional features


class EnvCheck(BaseModel):
    """One line of the environment check."""

    name: str
    state: CheckState
    purpose: str
    hint: str = ""


def _package(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _env_var(
    name: str, purpose: str, hint: str, *, required: bool, env: Mapping[str, str]
) -> EnvCheck:
    if is_set(name, env):
        state = CheckState.ok
    else:
        state = CheckState.missing if required else CheckState.optional
    return EnvCheck(
        name=name, state=state, purpose=purpose, hint="" if state is CheckState.ok else hint
    )


def check_environment(
    backend: Backend | None, environ: Mapping[str, str] | None = None
) -> list[EnvCheck]:
    """The checks for a backend, required ones first, then teacher/judge credentials."""
    env = os.environ if environ is None else environ
    checks: list[EnvCheck] = []
    if backend is Backend.openai:
        checks.append(
            _env_var(
                "OPENAI_API_KEY",
                "uploads files and runs OpenAI fine-tuning jobs",
                "export OPENAI_API_KEY=... in the shell that starts ftwizard",
                required=True,
                env=env,
            )
        )
    elif backend is Backend.vertex:
        adc = adc_path(env) or is_set("GOOGLE_OAUTH_ACCESS_TOKEN", env)
        checks.append(
            EnvCheck(
                name="Google application-default credentials",
                state=CheckState.ok if adc else CheckState.missing,
                purpose="authenticates Vertex AI tuning and Cloud Storage uploads",
                hint=""
                if adc
                else "run `gcloud auth application-default login` or set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file",
            )
        )
        checks.append(
            _env_var(
                "GOOGLE_CLOUD_PROJECT",
                "the Google Cloud project that runs the tuning job",
                "export GOOGLE_CLOUD_PROJECT=your-project-id",
                required=True,
                env=env,
            )
        )
        checks.append(
            _env_var(
                "GOOGLE_CLOUD_LOCATION",
                "the Vertex AI region (default us-central1)",
                "export GOOGLE_CLOUD_LOCATION=us-central1 to choose another region",
                required=False,
                env=env,
            )
        )
        sdk = _package("vertexai")
        checks.append(
            EnvCheck(
                name="google-cloud-aiplatform",
                state=CheckState.ok if sdk else CheckState.missing,
                purpose="the Vertex AI SDK",
                hint="" if sdk else "pip install 'ftwizard[vertex]'",
            )
        )
    elif backend is Backend.together:
        checks.append(
            _env_var(
                "TOGETHER_API_KEY",
                "uploads files and runs Together fine-tuning jobs",
                "export TOGETHER_API_KEY=... in the shell that starts ftwizard",
                required=True,
                env=env,
            )
        )
    elif backend is Backend.fireworks:
        checks.append(
            _env_var(
                "FIREWORKS_API_KEY",
                "uploads datasets and runs Fireworks fine-tuning jobs",
                "export FIREWORKS_API_KEY=... in the shell that starts ftwizard",
                required=True,
                env=env,
            )
        )
        checks.append(
            _env_var(
                "FIREWORKS_ACCOUNT_ID",
                "the Fireworks account that owns datasets, jobs and models",
                "export FIREWORKS_ACCOUNT_ID=your-account-id",
                required=True,
                env=env,
            )
        )
    elif backend is Backend.local:
        missing = [
            p for p in ("torch", "transformers", "peft", "trl", "accelerate") if not _package(p)
        ]
        checks.append(
            EnvCheck(
                name="torch, transformers, peft, trl, accelerate",
                state=CheckState.missing if missing else CheckState.ok,
                purpose="local LoRA training",
                hint=f"not installed: {', '.join(missing)}; pip install 'ftwizard[local]'"
                if missing
                else "",
            )
        )
    judge_hint = "optional: export it to use {} models as teacher or judge"
    if backend is not Backend.openai:
        checks.append(
            _env_var(
                "OPENAI_API_KEY",
                "OpenAI models as teacher or judge",
                judge_hint.format("OpenAI"),
                required=False,
                env=env,
            )
        )
    if backend is not Backend.together:
        checks.append(
            _env_var(
                "TOGETHER_API_KEY",
                "Together models as teacher or judge",
                judge_hint.format("Together"),
                required=False,
                env=env,
            )
        )
    if backend is not Backend.fireworks:
        checks.append(
            _env_var(
                "FIREWORKS_API_KEY",
                "Fireworks models as teacher or judge",
                judge_hint.format("Fireworks"),
                required=False,
                env=env,
            )
        )
    checks.append(
        _env_var(
            "ANTHROPIC_API_KEY",
            "Claude models as teacher or judge",
            judge_hint.format("Anthropic"),
            required=False,
            env=env,
        )
    )
    return checks


def missing_required(checks: list[EnvCheck]) -> list[EnvCheck]:
    """The checks that block the chosen backend."""
    return [c for c in checks if c.state is CheckState.missing]
