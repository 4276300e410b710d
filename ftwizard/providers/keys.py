"""API keys: read from the environment at call time, never stored, never printed."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ftwizard.providers.base import ProviderError

# Local OpenAI-compatible servers (llama.cpp, Ollama, vLLM without --api-key) ignore the key,
# but the openai SDK refuses to build a client without one.
KEYLESS_PLACEHOLDER = "not-needed"


def read_api_key(
    api_key_env: str | None,
    *,
    provider: str,
    model: str | None = None,
    required: bool = True,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Return the key held in ``api_key_env``, or raise a :class:`ProviderError` that says
    which variable to set.

    With ``api_key_env=None`` and ``required=False`` (a keyless local server) a placeholder
    is returned.
    """
    env = os.environ if environ is None else environ
    if api_key_env is None:
        if required:
            raise ProviderError(
                "no API key variable is configured",
                provider=provider,
                model=model,
                hint="Set api_key_env to the name of the environment variable holding the key",
            )
        return KEYLESS_PLACEHOLDER
    value = env.get(api_key_env, "").strip()
    if value:
        return value
    if not required:
        return KEYLESS_PLACEHOLDER
    raise ProviderError(
        f"the environment variable {api_key_env} is not set",
        provider=provider,
        model=model,
        hint=f"Export it before starting ftwizard (export {api_key_env}=...), "
        "or point api_key_env at the variable that holds your key",
    )
