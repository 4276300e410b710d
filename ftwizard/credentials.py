"""Secrets: where they come from, whether they are present, and how they are kept out of output.

ftwizard never stores a secret. Keys are read from the environment when a provider needs them,
and every text that leaves the process (session files, transcripts, notifications, logs) goes
through :func:`redact` first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

# Environment variables whose values are secrets. Their values are redacted wherever they appear.
SECRET_ENV_VARS: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "FTWIZARD_JUDGE_API_KEY",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)

# Shapes of well-known keys, redacted even when they are not in this process's environment
# (a key pasted into a form, or one that belongs to another account).
_KEY_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{16,}"
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
    r"|AIza[0-9A-Za-z_\-]{30,}"
    r"|hf_[A-Za-z0-9]{30,})"
)

# Values shorter than this are not treated as secrets: redacting "test" everywhere would
# mangle ordinary text and hide nothing of value.
_MIN_SECRET_LEN = 8


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return ``{env var: value}`` for the secret variables that are set and long enough."""
    env = os.environ if environ is None else environ
    return {
        name: env[name]
        for name in SECRET_ENV_VARS
        if len(env.get(name, "").strip()) >= _MIN_SECRET_LEN
    }


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every secret value and every key-shaped token in ``text`` with a marker."""
    # Longest first, so a key that contains another key's value is replaced whole.
    for name, value in sorted(secret_values(environ).items(), key=lambda kv: -len(kv[1])):
        text = text.replace(value.strip(), f"[redacted:{name}]")
    return _KEY_PATTERNS.sub("[redacted]", text)


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether an environment variable is set to a non-empty value (its value is never returned)."""
    env = os.environ if environ is None else environ
    return bool(env.get(name, "").strip())


# How to fix a missing Google credential, in one sentence (the environment check and the
# preflight say the same thing).
ADC_FIX = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file"
)


def key_fix(name: str) -> str:
    """How to set the variable ``name``, in words a person can follow."""
    return f"export {name}=... in the shell that starts ftwizard, then start it again"


def adc_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where Google application-default credentials (ADC) are, if anywhere."""
    env = os.environ if environ is None else environ
    explicit = env.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    config = env.get("CLOUDSDK_CONFIG", "").strip()
    base = Path(config).expanduser() if config else Path.home() / ".config" / "gcloud"
    path = base / "application_default_credentials.json"
    return path if path.is_file() else None
