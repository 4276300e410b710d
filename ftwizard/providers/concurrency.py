"""Running many chat requests at once: bounded concurrency, results in request order, progress."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal, overload

from pydantic import BaseModel

from ftwizard.providers.base import ChatProvider, Generation, GenerationRequest, ProviderError
from ftwizard.providers.retry import retry_waits


class _Slot:
    """One worker's claim on the shared in-flight limit, given back while a retry waits."""

    def __init__(self, limit: asyncio.Semaphore) -> None:
        self.limit = limit
        self.held = False

    async def take(self) -> None:
        await self.limit.acquire()
        self.held = True

    def give(self) -> None:
        if self.held:
            self.held = False
            self.limit.release()

    async def wait_out(self, seconds: float) -> None:
        """A retry's wait: the request is not in flight, so another one may use the slot."""
        self.give()
        await asyncio.sleep(seconds)
        await self.take()


class BatchProgress(BaseModel):
    """Where a :func:`generate_many` run stands, reported after each finished request."""

    done: int
    total: int
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


ResultCallback = Callable[[int, Generation | ProviderError], None]
ProgressCallback = Callable[[BatchProgress], None]


@overload
async def generate_many(
    provider: ChatProvider,
    requests: Sequence[GenerationRequest],
    *,
    concurrency: int = ...,
    on_result: ResultCallback | None = ...,
    on_progress: ProgressCallback | None = ...,
    return_errors: Literal[False] = ...,
) -> list[Generation]: ...


@overload
async def generate_many(
    provider: ChatProvider,
    requests: Sequence[GenerationRequest],
    *,
    concurrency: int = ...,
    on_result: ResultCallback | None = ...,
    on_progress: ProgressCallback | None = ...,
    return_errors: Literal[True],
) -> list[Generation | ProviderError]: ...


async def generate_many(
    provider: ChatProvider,
    requests: Sequence[GenerationRequest],
    *,
    concurrency: int = 8,
    on_result: ResultCallback | None = None,
    on_progress: ProgressCallback | None = None,
    return_errors: bool = False,
) -> list[Generation] | list[Generation | ProviderError]:
    """Run ``requests`` on ``provider`` with at most ``concurrency`` in flight.

    A request waiting out a retry (a 429's ``retry-after``, a backoff) is not in flight: it
    gives its slot to the next request for the wait and queues for one again afterwards.
    Results come back in request order. ``on_result(index, result)`` and ``on_progress`` are
    called as each request finishes (in completion order). With ``return_errors=False`` the
    first :class:`ProviderError` cancels the rest and is raised; with ``True`` failures take
    their request's place in the list and the run goes on.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    total = len(requests)
    results: list[Generation | ProviderError | None] = [None] * total
    progress = BatchProgress(done=0, total=total)
    next_index = 0

    def record(index: int, result: Generation | ProviderError) -> None:
        results[index] = result
        progress.done += 1
        if isinstance(result, ProviderError):
            progress.failed += 1
        else:
            progress.input_tokens += result.input_tokens
            progress.output_tokens += result.output_tokens
        if on_result is not None:
            on_result(index, result)
        if on_progress is not None:
            on_progress(progress.model_copy())

    limit = asyncio.Semaphore(concurrency)
    stopped = False  # a failure is being raised: no more requests go out

    # A fixed pool of workers pulling indexes, rather than one task per request, keeps a
    # 50,000-row relabeling run from creating 50,000 tasks up front. Twice as many workers as
    # slots, so a slot freed by a waiting retry is taken at once by a worker with a request.
    async def worker() -> None:
        nonlocal next_index, stopped
        slot = _Slot(limit)
        with retry_waits(slot.wait_out):
            while next_index < total:
                index = next_index
                next_index += 1
                await slot.take()
                if stopped:
                    slot.give()
                    return
                try:
                    result: Generation | ProviderError = await provider.generate(requests[index])
                except ProviderError as exc:
                    if not return_errors:
                        stopped = True
                        raise
                    result = exc
                finally:
                    slot.give()
                record(index, result)
                # record() may have asked to stop (a run's first 401 cancels it): a cancel that
                # some library swallowed on the way must not let this worker send the rest.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise asyncio.CancelledError

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(2 * concurrency, total)):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        # Callers catch ProviderError, not a TaskGroup's ExceptionGroup.
        matched, _rest = failures.split(ProviderError)
        if matched is not None:
            raise matched.exceptions[0] from None
        raise

    if return_errors:
        return [r for r in results if r is not None]
    return [r for r in results if isinstance(r, Generation)]
