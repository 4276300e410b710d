"""Retrying model calls: which failures are worth another try, how long to wait, when to give up.

It is also the one request-deadline policy for calls to the outside: besides the SDK's
connect and read timeouts (which a server that trickles bytes, or accepts and never answers,
can keep from firing), each attempt must finish within ``RetryPolicy.attempt_deadline_s`` and
all attempts with their waits within ``RetryPolicy.total_deadline_s``.

This is the only retry mechanism for chat calls: the SDK clients are built with
``max_retries=0`` so a failed call is never retried twice over (SDK inside, us outside), and so
every provider backs off, honours ``retry-after`` and reports attempts the same way.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from ftwizard.credentials import key_fix
from ftwizard.providers.base import ProviderError

T = TypeVar("T")

# 408 timeout, 409 lock conflict, 429 rate limit; every 5xx (529 is Anthropic's "overloaded").
RETRYABLE_STATUS: frozenset[int] = frozenset({408, 409, 429})
# A missing or wrong key, no access, no such model or endpoint: the same request gets the same
# answer, so these never enter the retry loop, whatever a server's x-should-retry says.
NEVER_RETRY_STATUS: frozenset[int] = frozenset({401, 403, 404})


Sleep = Callable[[float], Awaitable[None]]

# Set by a caller that bounds the requests in flight (generate_many): a call waiting out a
# retry gives its slot back for the wait, because a request that is not sent is not in flight
# and its idle slot could carry another request meanwhile.
_RETRY_WAIT: ContextVar[Sleep | None] = ContextVar("ftwizard_retry_wait", default=None)


async def wait_before_retry(seconds: float) -> None:
    """Sleep ``seconds`` before a retry, through the caller's :func:`retry_waits` hook if any."""
    hook = _RETRY_WAIT.get()
    await (hook(seconds) if hook is not None else asyncio.sleep(seconds))


@contextmanager
def retry_waits(hook: Sleep) -> Iterator[None]:
    """Make retries in this context wait through ``hook`` (for example: free a slot, sleep)."""
    token = _RETRY_WAIT.set(hook)
    try:
        yield
    finally:
        _RETRY_WAIT.reset(token)


class RetryPolicy(BaseModel):
    """How many times to try a call and how long to wait between tries."""

    max_attempts: int = Field(default=5, ge=1, le=20)
    initial_delay_s: float = Field(default=0.5, ge=0.0)
    max_delay_s: float = Field(default=8.0, ge=0.0)
    # A server that asks for a longer pause than this is out of quota, not briefly busy:
    # waiting would look like a hang, so the call fails with the server's number instead.
    max_retry_after_s: float = Field(default=120.0, ge=0.0)
    # Fraction of each backoff delay that is randomised, so parallel callers do not retry in step.
    jitter: float = Field(default=0.25, ge=0.0, le=1.0)
    # One attempt, from sending to the last byte of the answer; generous for long generations.
    attempt_deadline_s: float = Field(default=600.0, gt=0.0)
    # Every attempt and wait together: the call fails after this, whatever the server does.
    total_deadline_s: float = Field(default=1800.0, gt=0.0)


class CallFailure(Exception):
    """One failed attempt, described independently of the SDK that raised it."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        should_retry: bool | None = None,
        connection_error: bool = False,
        error_type: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.connection_error = connection_error
        self.error_type = error_type
        self._should_retry = should_retry

    @property
    def retryable(self) -> bool:
        """Whether another attempt could succeed: the server's ``x-should-retry`` wins, except
        for 401, 403 and 404, which another attempt cannot change."""
        if self.status_code in NEVER_RETRY_STATUS:
            return False
        if self._should_retry is not None:
            return self._should_retry
        if self.connection_error:
            return True
        if self.status_code is None:
            return False
        return self.status_code in RETRYABLE_STATUS or self.status_code >= 500


class RetryEvent(BaseModel):
    """What a caller hears before each retry (for progress lines and logs)."""

    attempt: int
    max_attempts: int
    delay_s: float
    status_code: int | None = None
    detail: str


def translate_sdk_error(
    exc: BaseException, sdk: Any, *, message: str | None, invalid_reply: str
) -> CallFailure | None:
    """A :class:`CallFailure` for an error of the ``openai`` or ``anthropic`` SDK module.

    Both SDKs are generated from the same template and raise the same exception classes;
    only the message (``message``, when the caller has a better one than the SDK's) and the
    words for an unparsable reply differ. ``None`` for anything that is not an SDK error.
    """
    if isinstance(exc, sdk.APIStatusError):
        headers = dict(exc.response.headers)
        should = headers.get("x-should-retry")
        return CallFailure(
            str(message or exc.message),
            status_code=exc.status_code,
            retry_after_s=parse_retry_after(headers),
            should_retry={"true": True, "false": False}.get(should or ""),
            error_type=exc.type,
        )
    if isinstance(exc, sdk.APITimeoutError):
        return CallFailure("the request timed out", connection_error=True)
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__
        reason = f": {type(cause).__name__}" if cause is not None else ""
        return CallFailure(f"connection failed{reason}", connection_error=True)
    if isinstance(exc, sdk.APIResponseValidationError):
        return CallFailure(invalid_reply, status_code=exc.status_code, should_retry=False)
    return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw_date = lowered.get("retry-after")
    if raw_date:
        parsed = email.utils.parsedate_tz(raw_date)
        if parsed is not None:
            return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after_s: float | None) -> float:
    """Delay before attempt ``attempt + 1``: the server's ask if given, else capped exponential."""
    if retry_after_s is not None:
        return retry_after_s
    base = min(policy.max_delay_s, policy.initial_delay_s * 2 ** (attempt - 1))
    return base * (1.0 - policy.jitter * random.random())


class RateGate:
    """Shared pause for every call on one provider after the server says "slow down" for long.

    A long wait (``min_shared_s`` or more) means the quota is spent: without the gate, N
    concurrent workers would each discover the same 429 on their own and hammer the server N
    times more while it is asking for quiet. A short wait is the server pacing that one
    request: it waits and the others go on, since sharing every short pause would stall all
    workers once per 429 (14 stalls in a 200-request run where every 15th reply is a 429).
    """

    def __init__(self, min_shared_s: float = 1.0) -> None:
        self._until = 0.0
        self.min_shared_s = min_shared_s

    def hold(self, seconds: float) -> None:
        """Ask every later attempt to wait until ``seconds`` from now, if that is a long wait."""
        if seconds >= self.min_shared_s:
            self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self, sleep: Sleep = wait_before_retry) -> None:
        """Wait out the current pause, if any."""
        remaining = self._until - time.monotonic()
        if remaining > 0:
            await sleep(remaining)


def failure_hint(
    failure: CallFailure,
    *,
    provider: str,
    api_key_env: str | None,
    base_url: str | None,
    url_advice: str | None = None,
) -> str:
    """The next step a user can take for a failed call, in one sentence."""
    status = failure.status_code
    where = base_url or "the default endpoint"
    if failure.connection_error:
        return (
            f"Could not reach {where}: check the base URL, that the server is running, "
            "and your network"
        )
    if status in (401, 403):
        if api_key_env and not os.environ.get(api_key_env, "").strip():
            return f"{api_key_env} is not set: {key_fix(api_key_env)}"
        key = api_key_env or "the API key variable"
        return f"Check that {key} holds a valid key with access to this model"
    if status == 404:
        advice = f"; {url_advice}" if url_advice else ""
        return f"Check the model name and the base URL ({where}){advice}"
    if status == 429:
        return "Rate limited or out of quota: wait, lower the concurrency, or check your plan"
    if status in (408, 409, 529) or (status is not None and status >= 500):
        return f"The {provider} service is failing or overloaded: try again later"
    if status in (400, 422):
        return "The request was rejected: check the model's supported parameters"
    return "See the message above"


async def call_with_retries(
    attempt_call: Callable[[], Awaitable[T]],
    *,
    translate: Callable[[BaseException], CallFailure | None],
    policy: RetryPolicy,
    provider: str,
    model: str | None,
    api_key_env: str | None = None,
    base_url: str | None = None,
    url_advice: str | None = None,
    gate: RateGate | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    sleep: Sleep = wait_before_retry,
) -> T:
    """Run ``attempt_call`` until it succeeds, fails for good, or runs out of attempts.

    ``translate`` turns an SDK exception into a :class:`CallFailure` (``None``: not a call
    failure, re-raise it). The final failure becomes a :class:`ProviderError` with a hint;
    ``url_advice`` is the provider's own tip about base URLs, added to a 404's hint.
    """
    attempt = 0
    deadline = time.monotonic() + policy.total_deadline_s
    while True:
        attempt += 1
        if gate is not None:
            await gate.wait(sleep)
        budget = min(policy.attempt_deadline_s, max(0.0, deadline - time.monotonic()))
        try:
            # Not asyncio.wait_for: on 3.11 a cancel that lands as the call completes is lost
            # (the call's result or error comes back instead), so a run stopped at its first
            # 401 went on sending every request.
            async with asyncio.timeout(budget):
                return await attempt_call()
        except asyncio.CancelledError:
            raise
        except TimeoutError:  # the deadline's: the server did not finish answering in time
            failure = CallFailure(
                f"no complete answer within {budget:.0f} s (the server accepted the request "
                "but did not finish answering)",
                connection_error=True,
                error_type="deadline",
            )
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            failure = translated
        too_long = (
            failure.retry_after_s is not None and failure.retry_after_s > policy.max_retry_after_s
        )
        delay = backoff_delay(policy, attempt, failure.retry_after_s)
        out_of_time = time.monotonic() + delay >= deadline
        if not failure.retryable or attempt >= policy.max_attempts or too_long or out_of_time:
            hint = failure_hint(
                failure,
                provider=provider,
                api_key_env=api_key_env,
                base_url=base_url,
                url_advice=url_advice,
            )
            if too_long:
                hint = (
                    f"The server asks to wait {failure.retry_after_s:.0f} s before retrying. "
                    + hint
                )
            elif out_of_time and failure.retryable:
                hint = (
                    f"Gave up after {attempt} attempt(s): the call's deadline of "
                    f"{policy.total_deadline_s:.0f} s is reached. " + hint
                )
            raise ProviderError(
                failure.detail,
                provider=provider,
                model=model,
                status_code=failure.status_code,
                hint=hint,
                attempts=attempt,
                retryable=failure.retryable,
            ) from None
        if gate is not None and failure.status_code == 429:
            gate.hold(delay)
        if on_retry is not None:
            on_retry(
                RetryEvent(
                    attempt=attempt,
                    max_attempts=policy.max_attempts,
                    delay_s=delay,
                    status_code=failure.status_code,
                    detail=failure.detail,
                )
            )
        await sleep(delay)
