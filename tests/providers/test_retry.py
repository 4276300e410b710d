"""The retry primitives: retry-after parsing, backoff bounds, what counts as retryable."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import (
    CallFailure,
    RateGate,
    RetryPolicy,
    backoff_delay,
    call_with_retries,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),
        ({"retry-after-ms": "nonsense", "retry-after": "3"}, 3.0),
        ({"retry-after": "-1"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_accepts_an_http_date() -> None:
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    wait = parse_retry_after({"retry-after": in_ten})
    assert wait is not None and 8.0 <= wait <= 10.5


def test_backoff_grows_exponentially_capped_and_jittered_down_only() -> None:
    policy = RetryPolicy(initial_delay_s=1.0, max_delay_s=5.0, jitter=0.25)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        delays = [backoff_delay(policy, attempt, None) for _ in range(50)]
        assert all(0.75 * ceiling <= d <= ceiling for d in delays), (attempt, delays)
    assert backoff_delay(policy, 1, 7.5) == 7.5


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (CallFailure("x", status_code=429), True),
        (CallFailure("x", status_code=408), True),
        (CallFailure("x", status_code=409), True),
        (CallFailure("x", status_code=500), True),
        (CallFailure("x", status_code=529), True),
        (CallFailure("x", status_code=400), False),
        (CallFailure("x", status_code=401), False),
        (CallFailure("x", status_code=404), False),
        (CallFailure("x", connection_error=True), True),
        (CallFailure("x", status_code=500, should_retry=False), False),
        (CallFailure("x", status_code=400, should_retry=True), True),
        # A key, access or a name that is wrong stays wrong: never retried, whatever the
        # server's x-should-retry says.
        (CallFailure("x", status_code=401, should_retry=True), False),
        (CallFailure("x", status_code=403, should_retry=True), False),
        (CallFailure("x", status_code=404, should_retry=True), False),
    ],
)
def test_which_failures_are_retryable(failure: CallFailure, retryable: bool) -> None:
    assert failure.retryable is retryable


async def test_call_with_retries_sleeps_as_told_and_gives_up_with_attempt_count() -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    calls = 0

    async def always_busy() -> str:
        nonlocal calls
        calls += 1
        raise CallFailure("busy", status_code=503, retry_after_s=1.5)

    with pytest.raises(ProviderError) as caught:
        await call_with_retries(
            always_busy,
            translate=lambda e: e if isinstance(e, CallFailure) else None,
            policy=RetryPolicy(max_attempts=4),
            provider="p",
            model="m",
            sleep=fake_sleep,
        )
    assert calls == 4
    assert slept == [1.5, 1.5, 1.5]
    assert caught.value.attempts == 4
    assert str(caught.value).startswith("p model 'm': busy (HTTP 503) after 4 attempts.")


async def test_unrelated_exceptions_pass_through_untouched() -> None:
    async def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await call_with_retries(
            broken, translate=lambda e: None, policy=RetryPolicy(), provider="p", model="m"
        )


async def test_rate_gate_makes_later_callers_wait() -> None:
    gate = RateGate()
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    await gate.wait(record)
    gate.hold(2.0)
    gate.hold(0.5)  # a shorter pause never shortens a longer one
    await gate.wait(record)
    assert len(waited) == 1 and 1.9 <= waited[0] <= 2.0


async def test_only_a_long_retry_after_pauses_every_call() -> None:
    gate = RateGate(min_shared_s=1.0)
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    gate.hold(0.2)  # the server pacing one request: the others go on
    await gate.wait(record)
    assert waited == []
    gate.hold(2.0)  # out of quota: everyone waits
    await gate.wait(record)
    assert len(waited) == 1 and waited[0] > 1.9


async def test_a_stop_that_lands_as_the_call_fails_still_stops() -> None:
    """A run cancelled in the very moment its call gets a 401 back is cancelled: the 401 must
    not come back instead and let the run send its other requests (asyncio.wait_for on 3.11)."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def attempt() -> str:
        return await answer

    def translate(exc: BaseException) -> CallFailure:
        return CallFailure(str(exc), status_code=401)

    task = asyncio.create_task(
        call_with_retries(
            attempt, translate=translate, policy=RetryPolicy(), provider="fake", model=None
        )
    )
    for _ in range(3):  # until the call is under way
        await asyncio.sleep(0)
    answer.set_exception(RuntimeError("Incorrect API key provided"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
