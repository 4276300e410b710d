"""A judge for model-grader tests: answers from a script and records what it was asked.

It implements ``ChatProvider`` in memory, so tests of grading logic (parsing, clipping,
concurrency, retries) run without a server. End-to-end tests use the HTTP fakes in tests/fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ftwizard.providers.base import Generation, GenerationRequest

Reply = str | BaseException
Script = Callable[[GenerationRequest], Reply]


class ScriptedJudge:
    """Answers each request with ``script(request)`` (a text, or an exception to raise)."""

    name = "scripted"

    def __init__(self, script: Script, *, delay_s: float = 0.0) -> None:
        self.script = script
        self.delay_s = delay_s
        self.requests: list[GenerationRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            reply = self.script(request)
        finally:
            self.in_flight -= 1
        if isinstance(reply, BaseException):
            raise reply
        return Generation(text=reply, model=request.model)


def user_text(request: GenerationRequest) -> str:
    """The text of the last user message in a request."""
    return next(m.content for m in reversed(request.messages) if m.role == "user")
