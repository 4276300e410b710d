"""OpenAI's own grader check: ``POST /v1/fine_tuning/alpha/graders/validate``.

The local JSON-schema check (``ftwizard.graders.export_openai``) catches shape errors offline;
this asks OpenAI itself, which also knows which models and packages it accepts today. Used
only when ``OPENAI_API_KEY`` is set.
"""

from __future__ import annotations

from typing import Any

from ftwizard.credentials import is_set
from ftwizard.providers.base import ProviderError
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.openai.chat import translate_openai_error
from ftwizard.providers.retry import RetryPolicy, call_with_retries

API_KEY_ENV = "OPENAI_API_KEY"


def can_validate_online() -> bool:
    """Whether an OpenAI key is available for the online check."""
    return is_set(API_KEY_ENV)


async def validate_grader_online(
    grader: dict[str, Any],
    *,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = 60.0,
) -> list[str]:
    """Ask OpenAI to validate ``grader``; return its objections (empty when accepted).

    A 400 from the endpoint is OpenAI rejecting the grader: its message is returned as a
    problem. Anything else that fails after retries (no key, network, 5xx) raises
    :class:`ProviderError`.
    """
    from openai import AsyncOpenAI, BadRequestError

    key = read_api_key(API_KEY_ENV, provider="openai", model=None)
    client = AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s)

    async def attempt() -> Any:
        return await client.fine_tuning.alpha.graders.validate(grader=grader)  # type: ignore[arg-type]

    try:
        await call_with_retries(
            attempt,
            translate=lambda exc: (
                None if isinstance(exc, BadRequestError) else translate_openai_error(exc)
            ),
            policy=retry or RetryPolicy(),
            provider="openai",
            model=None,
            api_key_env=API_KEY_ENV,
            base_url=base_url,
        )
    except BadRequestError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error", body) if isinstance(body, dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        return [str(message or exc)]
    except ProviderError:
        raise
    finally:
        await client.close()
    return []
