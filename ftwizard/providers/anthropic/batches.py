"""Anthropic Message Batches: bulk teacher relabeling at half the per-token price.

A batch is submitted once, polled until it ends (up to 24 hours), and its results are read
back keyed by ``custom_id``. Creating a batch spends money, so its creation is retried only
when the server says it refused the request (429, 529); after a dropped connection or a 5xx
the batch may exist, and the error says to look before submitting again.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel

from ftwizard.providers.anthropic.chat import (
    URL_ADVICE,
    AnthropicChatProvider,
    message_to_generation,
    translate_anthropic_error,
)
from ftwizard.providers.base import Generation, GenerationRequest, ProviderError
from ftwizard.providers.retry import CallFailure, RetryPolicy, call_with_retries

_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Statuses at which Anthropic has certainly not accepted the batch.
_SAFE_TO_RESUBMIT = frozenset({429, 529})

ItemStatus = Literal["succeeded", "errored", "canceled", "expired"]


class BatchStatus(BaseModel):
    """A batch's progress as the API reports it."""

    id: str
    processing_status: Literal["in_progress", "canceling", "ended"]
    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    @property
    def ended(self) -> bool:
        """Whether every request has a result (of any kind)."""
        return self.processing_status == "ended"


class BatchItemResult(BaseModel):
    """The outcome of one request in a batch."""

    custom_id: str
    status: ItemStatus
    generation: Generation | None = None
    error: str | None = None


def _status(batch: Any) -> BatchStatus:
    counts = batch.request_counts
    return BatchStatus(
        id=batch.id,
        processing_status=batch.processing_status,
        processing=counts.processing,
        succeeded=counts.succeeded,
        errored=counts.errored,
        canceled=counts.canceled,
        expired=counts.expired,
    )


def _item_error(result: Any) -> str:
    error = getattr(result, "error", None)
    inner = getattr(error, "error", None)
    message = getattr(inner, "message", None)
    kind = getattr(inner, "type", None)
    return f"{kind}: {message}" if kind and message else str(message or result.type)


async def wait_until_ended(
    status: Callable[[str], Awaitable[BatchStatus]],
    batch_id: str,
    *,
    provider: str,
    poll_interval_s: float,
    max_wait_s: float,
    on_status: Callable[[BatchStatus], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BatchStatus:
    """Poll ``status`` until the batch ends; raise :class:`ProviderError` after ``max_wait_s``.

    The one polling loop of every batch runner (Anthropic Message Batches, the OpenAI Batch
    API): they differ in how they read a status, not in how they wait for it.
    """
    started = time.monotonic()
    while True:
        current = await status(batch_id)
        if on_status is not None:
            on_status(current)
        if current.ended:
            return current
        if time.monotonic() - started > max_wait_s:
            raise ProviderError(
                f"batch {batch_id} has not ended after {max_wait_s:.0f} s",
                provider=provider,
                hint="It keeps running remotely; check it later or cancel it",
            )
        await sleep(poll_interval_s)


class AnthropicBatchRunner:
    """Submits, polls and reads Message Batches with the settings of an
    :class:`AnthropicChatProvider` (key variable, base URL, retries, temperature handling)."""

    def __init__(
        self,
        provider: AnthropicChatProvider,
        *,
        poll_interval_s: float = 30.0,
        max_wait_s: float = 25 * 3600.0,
    ) -> None:
        self.provider = provider
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s

    async def _call(
        self,
        make_call: Callable[[], Awaitable[Any]],
        *,
        model: str | None,
        translate: Callable[[BaseException], CallFailure | None] = translate_anthropic_error,
        policy: RetryPolicy | None = None,
    ) -> Any:
        return await call_with_retries(
            make_call,
            translate=translate,
            policy=policy or self.provider.retry,
            provider=self.provider.name,
            model=model,
            api_key_env=self.provider.api_key_env,
            base_url=self.provider.base_url,
            url_advice=URL_ADVICE,
            gate=self.provider.gate,
            on_retry=self.provider.on_retry,
        )

    def batch_params(self, request: GenerationRequest) -> dict[str, Any]:
        """The ``params`` of one batch item: the same body a single call would send."""
        params = self.provider.build_params(request)
        # Batch items carry the raw body: what extra_body adds to a call goes in directly.
        params.update(params.pop("extra_body", {}))
        return params

    async def submit(self, requests: Iterable[tuple[str, GenerationRequest]]) -> str:
        """Create a batch from ``(custom_id, request)`` pairs; return its id."""
        items = list(requests)
        if not items:
            raise ValueError("a batch needs at least one request")
        seen: set[str] = set()
        for custom_id, _ in items:
            if not _CUSTOM_ID.match(custom_id):
                raise ValueError(
                    f"custom_id {custom_id!r} must be 1-64 letters, digits, '_' or '-'"
                )
            if custom_id in seen:
                raise ValueError(f"custom_id {custom_id!r} appears twice")
            seen.add(custom_id)
        body = [{"custom_id": cid, "params": self.batch_params(req)} for cid, req in items]
        model = items[0][1].model
        client = self.provider.sdk_client(model)

        def translate_create(exc: BaseException) -> CallFailure | None:
            failure = translate_anthropic_error(exc)
            if failure is not None and failure.status_code not in _SAFE_TO_RESUBMIT:
                failure = CallFailure(
                    f"{failure.detail}; the batch may have been created: list your batches "
                    "before submitting again",
                    status_code=failure.status_code,
                    should_retry=False,
                    connection_error=failure.connection_error,
                )
            return failure

        batch = await self._call(
            lambda: client.messages.batches.create(requests=body),
            model=model,
            translate=translate_create,
        )
        return str(batch.id)

    async def status(self, batch_id: str) -> BatchStatus:
        """The batch's current processing status and request counts."""
        client = self.provider.sdk_client()
        batch = await self._call(lambda: client.messages.batches.retrieve(batch_id), model=None)
        return _status(batch)

    async def wait(
        self,
        batch_id: str,
        *,
        on_status: Callable[[BatchStatus], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> BatchStatus:
        """Poll until the batch ends; raise :class:`ProviderError` after ``max_wait_s``."""
        return await wait_until_ended(
            self.status,
            batch_id,
            provider=self.provider.name,
            poll_interval_s=self.poll_interval_s,
            max_wait_s=self.max_wait_s,
            on_status=on_status,
            sleep=sleep,
        )

    async def results(self, batch_id: str) -> dict[str, BatchItemResult]:
        """Every item's outcome, keyed by ``custom_id`` (the batch must have ended)."""
        client = self.provider.sdk_client()

        async def read_all() -> list[Any]:
            return [item async for item in await client.messages.batches.results(batch_id)]

        items = await self._call(read_all, model=None)
        outcomes: dict[str, BatchItemResult] = {}
        for item in items:
            result = item.result
            if result.type == "succeeded":
                generation = message_to_generation(result.message, result.message.model)
                outcomes[item.custom_id] = BatchItemResult(
                    custom_id=item.custom_id, status="succeeded", generation=generation
                )
            else:
                outcomes[item.custom_id] = BatchItemResult(
                    custom_id=item.custom_id, status=result.type, error=_item_error(result)
                )
        return outcomes

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the API to stop the batch; finished items keep their results."""
        client = self.provider.sdk_client()
        batch = await self._call(lambda: client.messages.batches.cancel(batch_id), model=None)
        return _status(batch)

    async def run(
        self,
        requests: Iterable[tuple[str, GenerationRequest]],
        *,
        on_status: Callable[[BatchStatus], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> dict[str, BatchItemResult]:
        """Submit, wait and read back in one call."""
        batch_id = await self.submit(requests)
        await self.wait(batch_id, on_status=on_status, sleep=sleep)
        return await self.results(batch_id)
