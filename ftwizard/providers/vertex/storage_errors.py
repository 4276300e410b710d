"""google-cloud-storage and transport errors as the retry loop's :class:`CallFailure`."""

from __future__ import annotations

from ftwizard.providers.retry import CallFailure
from ftwizard.providers.vertex.chat import translate_vertex_error


def translate_storage_error(exc: BaseException) -> CallFailure | None:
    """A :class:`CallFailure` for a google-cloud-storage or transport error; else ``None``."""
    translated = translate_vertex_error(exc)
    if translated is not None:
        return translated
    from google.api_core import exceptions as core_exceptions

    if isinstance(exc, core_exceptions.GoogleAPICallError):
        code = exc.code if isinstance(exc.code, int) else None
        return CallFailure(str(exc.message or exc), status_code=code)
    try:
        import requests
    except ImportError:  # google-cloud-storage depends on it; without it nothing ran
        return None
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return CallFailure(f"connection failed: {type(exc).__name__}", connection_error=True)
    return None
