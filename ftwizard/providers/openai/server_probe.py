"""Is an OpenAI-compatible server (vLLM, SGLang, llama-server, Ollama) up, and what does it serve?

:func:`probe_server` asks the server's health route and ``GET /v1/models``:

- vLLM, SGLang and llama-server answer ``GET /health`` (200 when ready); Ollama answers
  ``GET /`` ("Ollama is running") and has no ``/health``, so a 404 there falls back to the
  models list, which every such server has;
- the models list gives the names a request may use; vLLM lists LoRA adapters with a
  ``parent`` (their base model), SGLang names them ``BASE:ADAPTER``.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError

PROBE_TIMEOUT_S = 10.0


class ServedModel(BaseModel):
    """One entry of ``/v1/models``."""

    id: str
    parent: str | None = None


class ServerProbe(BaseModel):
    """What the server said."""

    base_url: str
    health: str
    models: list[ServedModel] = Field(default_factory=list)

    def pick(self, wanted: str | None) -> str:
        """The model to call: ``wanted`` (which must be listed), else the one adapter served."""
        ids = [m.id for m in self.models]
        if wanted:
            if wanted not in ids:
                raise InputError(
                    f"the server does not serve '{wanted}' (it lists: {', '.join(ids) or 'none'})",
                    field="--model",
                )
            return wanted
        adapters = [m.id for m in self.models if m.parent] or [i for i in ids if ":" in i]
        if len(adapters) == 1:
            return adapters[0]
        if len(ids) == 1:
            return ids[0]
        raise InputError(
            f"the server lists several models ({', '.join(ids) or 'none'}); name one with --model",
            field="--model",
        )


def normalise_base_url(url: str) -> str:
    """``http://host:port`` or ``.../v1`` (trailing slash allowed) -> ``http://host:port/v1``."""
    text = url.strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise InputError("the server URL must start with http:// or https://", field="--server")
    return text if text.endswith("/v1") else f"{text}/v1"


def probe_server(url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> ServerProbe:
    """Check health and list the models of the server at ``url``; ``ProviderError`` when down."""
    import httpx

    base = normalise_base_url(url)
    root = base.removesuffix("/v1")
    key = os.environ.get("OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    hint = "start the server first (see the serve-*.sh scripts ftwizard export wrote)"
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            health = client.get(f"{root}/health")
            if health.status_code == 404:
                health_text = "no /health route; the models list answered instead"
            elif health.status_code != 200:
                raise ProviderError(
                    f"{root}/health answered {health.status_code}: the server is not ready",
                    provider="openai",
                    status_code=health.status_code,
                    hint="wait until the model is loaded, then retry",
                )
            else:
                health_text = "ok"
            listed = client.get(f"{base}/models")
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"no server answers at {root}: {type(exc).__name__}", provider="openai", hint=hint
        ) from None
    if listed.status_code != 200:
        raise ProviderError(
            f"{base}/models answered {listed.status_code}",
            provider="openai",
            status_code=listed.status_code,
            hint="is this an OpenAI-compatible server?",
        )
    try:
        data = listed.json().get("data")
        models = [ServedModel.model_validate(item) for item in data or []]
    except (ValueError, AttributeError, TypeError) as exc:
        raise ProviderError(
            f"{base}/models did not answer an OpenAI models list: {exc}", provider="openai"
        ) from None
    return ServerProbe(base_url=base, health=health_text, models=models)


__all__ = ["ServedModel", "ServerProbe", "normalise_base_url", "probe_server"]
