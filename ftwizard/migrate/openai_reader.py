"""Reading an OpenAI fine-tuning job, its files and the models list, with the openai SDK.

The calls are the documented ones (OpenAI OpenAPI 2026-08): ``GET /fine_tuning/jobs/{id}``,
``GET /fine_tuning/jobs`` (paged with ``after``), ``GET /files/{id}`` and
``GET /files/{id}/content`` (the bytes as uploaded), ``GET /models``. The SDK's own retries are
off; :func:`~ftwizard.providers.retry.call_with_retries` retries 429/5xx and connection errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.openai.chat import URL_ADVICE, translate_openai_error
from ftwizard.providers.retry import RateGate, RetryPolicy, call_with_retries

T = TypeVar("T")
API_KEY_ENV = "OPENAI_API_KEY"
_METHODS: dict[str, Literal["sft", "dpo", "rft"]] = {
    "supervised": "sft",
    "dpo": "dpo",
    "reinforcement": "rft",
}
# The most one read (with its retries) may take, whatever the server does.
READ_DEADLINE_S = 150.0
# A listing stops here: an organisation with more jobs than this sees the newest ones.
MAX_LISTED_JOBS = 1000


class OpenAIJob(BaseModel):
    """What the import needs of a fine-tuning job."""

    id: str
    status: str
    method: Literal["sft", "dpo", "rft"]
    base_model: str
    fine_tuned_model: str | None = None
    training_file: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    grader: dict[str, Any] | None = None
    suffix: str | None = None
    created_at: int | None = None


def parse_job(data: Any) -> OpenAIJob:
    """An :class:`OpenAIJob` from the job object (``method`` first, then the legacy
    top-level ``hyperparameters``); a malformed object is an :class:`InputError`."""
    try:
        return _parse_job(data)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        job_id = data.get("id") if isinstance(data, dict) else None
        what = f"job {str(job_id)[:80]!r}" if job_id is not None else "a job"
        raise InputError(
            f"the server sent {what} that is not a fine-tuning job object "
            f"({type(exc).__name__}: {str(exc)[:200]}); is the base URL OpenAI's?",
        ) from None


def _parse_job(data: Any) -> OpenAIJob:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    method = data.get("method") or {"type": "supervised"}
    kind = str(method.get("type") or "supervised")
    if kind not in _METHODS:
        raise InputError(f"job {data.get('id')}: unknown fine-tuning method '{kind}'")
    details = method.get(kind) or {}
    hyper = {
        k: v
        for k, v in {
            **(data.get("hyperparameters") or {}),
            **(details.get("hyperparameters") or {}),
        }.items()
        if v is not None
    }
    return OpenAIJob(
        id=str(data["id"]),
        status=str(data.get("status") or ""),
        method=_METHODS[kind],
        base_model=str(data.get("model") or ""),
        fine_tuned_model=data.get("fine_tuned_model"),
        training_file=str(data["training_file"]),
        validation_file=data.get("validation_file"),
        hyperparameters=hyper,
        grader=details.get("grader") if kind == "reinforcement" else None,
        suffix=data.get("user_provided_suffix"),
        created_at=data.get("created_at"),
    )


class OpenAIJobReader:
    """Read-only access to an organisation's fine-tuning jobs, files and models."""

    provider = "openai"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key_env: str = API_KEY_ENV,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url
        self.api_key_env = api_key_env
        # Reading a job is metadata and a file or two: a server that stalls is given up on
        # within minutes, not left to hang the import (see the deadline policy in retry.py).
        self.retry = retry or RetryPolicy(
            attempt_deadline_s=timeout_s, total_deadline_s=READ_DEADLINE_S
        )
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.gate = RateGate()
        self._client: Any | None = None

    def _sdk(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                api_key=read_api_key(self.api_key_env, provider=self.provider),
                base_url=self.base_url,
                max_retries=0,  # retries are ours, never stacked
                timeout=self.timeout_s,
            )
        return self._client

    async def _call(self, attempt: Callable[[Any], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await attempt(self._sdk())
            except (RecursionError, ValueError, TypeError, AttributeError, KeyError) as exc:
                # An answer the SDK could not read (not JSON, nested too deep, wrong types).
                raise ProviderError(
                    f"the server's answer could not be read ({type(exc).__name__}: "
                    f"{str(exc)[:200]})",
                    provider=self.provider,
                    hint="Check the base URL: it should be OpenAI's API (or a faithful copy).",
                ) from None

        return await call_with_retries(
            once,
            translate=translate_openai_error,
            policy=self.retry,
            provider=self.provider,
            model=None,
            api_key_env=self.api_key_env,
            base_url=self.base_url,
            url_advice=URL_ADVICE,
            gate=self.gate,
            sleep=self.sleep,
        )

    async def job(self, job_id: str) -> OpenAIJob:
        """The job ``job_id`` (a clear error when OpenAI has none by that id)."""
        try:
            data = await self._call(lambda c: c.fine_tuning.jobs.retrieve(job_id))
        except ProviderError as exc:
            if exc.status_code == 404:
                raise InputError(
                    f"OpenAI has no fine-tuning job '{job_id}' in this organisation",
                    field="JOB_ID",
                ) from None
            raise
        return parse_job(_plain(data))

    async def jobs(self) -> list[OpenAIJob]:
        """Every job of the organisation (newest first, at most ``MAX_LISTED_JOBS``)."""
        out: list[OpenAIJob] = []
        after: str | None = None
        while len(out) < MAX_LISTED_JOBS:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            page = await self._call(lambda c, p=params: c.fine_tuning.jobs.list(**p))
            rows = [parse_job(_plain(j)) for j in _items(page)]
            out.extend(rows)
            if not rows or getattr(page, "has_more", False) is not True:
                break
            after = rows[-1].id
        return out[:MAX_LISTED_JOBS]

    async def file_name(self, file_id: str) -> str:
        """The file's name as uploaded."""
        data = await self._call(lambda c: c.files.retrieve(file_id))
        name = getattr(data, "filename", None)
        return name if isinstance(name, str) else ""

    async def file_bytes(self, file_id: str) -> bytes:
        """``GET /files/{id}/content``: the file exactly as uploaded."""
        response = await self._call(lambda c: c.files.content(file_id))
        return bytes(response.content)

    async def models(self) -> list[dict[str, Any]]:
        """``GET /models`` as plain dicts (``shutdown_date`` kept when the server sends it)."""
        page = await self._call(lambda c: c.models.list())
        return [m for m in (_plain(item) for item in _items(page)) if isinstance(m, dict)]

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        if self._client is not None:
            await self._client.close()
            self._client = None


def _plain(value: Any) -> Any:
    """An SDK object (or whatever a server sent in its place) as plain data."""
    dump = getattr(value, "model_dump", None)
    return dump(warnings=False) if callable(dump) else value


def _items(page: Any) -> list[Any]:
    data = getattr(page, "data", None)
    if not isinstance(data, list):
        raise InputError("the server sent a list without a 'data' array; is the base URL OpenAI's?")
    return data


__all__ = ["MAX_LISTED_JOBS", "OpenAIJob", "OpenAIJobReader", "parse_job"]
