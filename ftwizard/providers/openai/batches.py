"""OpenAI Batch API: chat completions in bulk at half the per-token price.

The requests go up as one JSONL file (``/v1/files``, purpose ``batch``), a batch is created on
it (``/v1/batches``, endpoint ``/v1/chat/completions``, window 24 h), polled until it ends, and
its output and error files are read back keyed by ``custom_id``. The runner has the interface
of :class:`~ftwizard.providers.anthropic.batches.AnthropicBatchRunner` (submit, status, wait,
results, cancel) and reports the same :class:`BatchStatus`, so the journaled batch code in
:mod:`ftwizard.providers.batch_journal` drives either.

As with Anthropic, creating the batch spends money: its creation is retried only when the
server says it refused the request (429); after a dropped connection or a 5xx the batch may
exist, and the error says to look before submitting again. Uploading the file costs nothing
and is retried as usual.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ftwizard.providers.anthropic.batches import (
    BatchItemResult,
    BatchStatus,
    ItemStatus,
    wait_until_ended,
)
from ftwizard.providers.base import GenerationRequest
from ftwizard.providers.keys import read_api_key
from ftwizard.providers.openai.chat import URL_ADVICE, OpenAIChatProvider, translate_openai_error
from ftwizard.providers.openai.http import parse_completion
from ftwizard.providers.retry import CallFailure, call_with_retries

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
# OpenAI allows custom ids of any length; the shared journal keeps Anthropic's rule so one
# request id works for both.
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SAFE_TO_RESUBMIT = frozenset({429})
# Batch statuses, folded into the three that BatchStatus (and the dry run's progress) knows.
_RUNNING = frozenset({"validating", "in_progress", "finalizing"})
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
# Error-file codes of requests the batch never ran.
_ERROR_CODES: dict[str, ItemStatus] = {"batch_expired": "expired", "batch_cancelled": "canceled"}


def _get(obj: Any, name: str) -> Any:
    # SDK objects carry attributes; nested dicts (errors, counts) may come as either.
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _status(batch: Any) -> BatchStatus:
    state = str(_get(batch, "status"))
    counts = _get(batch, "request_counts")
    total = int(_get(counts, "total") or 0) if counts is not None else 0
    completed = int(_get(counts, "completed") or 0) if counts is not None else 0
    failed = int(_get(counts, "failed") or 0) if counts is not None else 0
    rest = max(0, total - completed - failed)
    ended = state in _ENDED
    return BatchStatus(
        id=str(_get(batch, "id")),
        processing_status="ended"
        if ended
        else ("canceling" if state == "cancelling" else "in_progress"),
        processing=0 if ended else rest,
        succeeded=completed,
        # A batch that failed validation ran nothing: every request counts as errored.
        errored=failed + (rest if state == "failed" else 0),
        canceled=rest if state == "cancelled" else 0,
        expired=rest if state == "expired" else 0,
    )


def _batch_errors(batch: Any) -> str:
    errors = _get(batch, "errors")
    data = _get(errors, "data") if errors is not None else None
    messages = [str(_get(e, "message")) for e in data or []][:3]
    return "; ".join(messages) or "the batch failed validation"


def _line_error(line: dict[str, Any]) -> str:
    error = line.get("error")
    if isinstance(error, dict) and error.get("message"):
        code = error.get("code")
        return f"{code}: {error['message']}" if code else str(error["message"])
    response = line.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        return f"HTTP {response.get('status_code')}: {inner['message']}"
    return f"HTTP {response.get('status_code')}" if response else "errored"


class OpenAIBatchRunner:
    """Uploads, creates, polls and reads OpenAI batches with the settings of an
    :class:`OpenAIChatProvider` (key variable, base URL, retries, model quirks)."""

    def __init__(
        self,
        provider: OpenAIChatProvider,
        *,
        poll_interval_s: float = 30.0,
        max_wait_s: float = 25 * 3600.0,
    ) -> None:
        self.provider = provider
        self.poll_interval_s = poll_interval_s
        self.max_wait_s = max_wait_s

    def _client(self, model: str | None = None) -> Any:
        p = self.provider
        key = read_api_key(
            p.api_key_env,
            provider=p.name,
            model=model,
            required=not p.compatible or p.api_key_env is not None,
        )
        return p._clients.get(key)

    async def _call(
        self,
        make_call: Callable[[], Awaitable[Any]],
        *,
        model: str | None,
        translate: Callable[[BaseException], CallFailure | None] = translate_openai_error,
    ) -> Any:
        p = self.provider
        return await call_with_retries(
            make_call,
            translate=translate,
            policy=p.retry,
            provider=p.name,
            model=model,
            api_key_env=p.api_key_env,
            base_url=p.base_url,
            url_advice=URL_ADVICE,
            gate=p.gate,
            on_retry=p.on_retry,
        )

    def batch_line(self, custom_id: str, request: GenerationRequest) -> dict[str, Any]:
        """One line of the input file: the same body a single call would send."""
        return {
            "custom_id": custom_id,
            "method": "POST",
            "url": ENDPOINT,
            "body": self.provider.build_params(request),
        }

    async def submit(self, requests: Iterable[tuple[str, GenerationRequest]]) -> str:
        """Upload ``(custom_id, request)`` pairs as a JSONL file, create a batch; return its id."""
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
        model = items[0][1].model
        data = "".join(json.dumps(self.batch_line(cid, req)) + "\n" for cid, req in items)
        client = self._client(model)
        upload = await self._call(
            lambda: client.files.create(
                file=("ftwizard-batch.jsonl", data.encode("utf-8"), "application/jsonl"),
                purpose="batch",
            ),
            model=model,
        )

        def translate_create(exc: BaseException) -> CallFailure | None:
            failure = translate_openai_error(exc)
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
            lambda: client.batches.create(
                input_file_id=upload.id, endpoint=ENDPOINT, completion_window=COMPLETION_WINDOW
            ),
            model=model,
            translate=translate_create,
        )
        return str(batch.id)

    async def _retrieve(self, batch_id: str) -> Any:
        client = self._client()
        return await self._call(lambda: client.batches.retrieve(batch_id), model=None)

    async def status(self, batch_id: str) -> BatchStatus:
        """The batch's current status and request counts."""
        return _status(await self._retrieve(batch_id))

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

    async def _file_lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        client = self._client()

        async def read() -> str:
            content = await client.files.content(file_id)
            return str(content.text)

        text = await self._call(read, model=None)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def results(self, batch_id: str) -> dict[str, BatchItemResult]:
        """Every answered or failed item, keyed by ``custom_id`` (the batch must have ended).

        Items a cancelled or expired batch never ran may have no line in either file; they
        are absent from the result, as the Anthropic runner's callers already expect.
        """
        batch = await self._retrieve(batch_id)
        if str(_get(batch, "status")) == "failed":
            # Nothing ran and there are no result files: every request errored, for the
            # reason the batch gives. Its ids are read back from the input file.
            why = f"the batch failed: {_batch_errors(batch)}"
            return {
                str(line.get("custom_id")): BatchItemResult(
                    custom_id=str(line.get("custom_id")), status="errored", error=why
                )
                for line in await self._file_lines(_get(batch, "input_file_id"))
            }
        outcomes: dict[str, BatchItemResult] = {}
        for line in await self._file_lines(_get(batch, "output_file_id")):
            custom_id = str(line.get("custom_id"))
            response = line.get("response") or {}
            if response.get("status_code") == 200 and not line.get("error"):
                body = response.get("body") or {}
                try:
                    generation = parse_completion(body, str(body.get("model") or ""))
                except CallFailure as exc:
                    outcomes[custom_id] = BatchItemResult(
                        custom_id=custom_id, status="errored", error=exc.detail
                    )
                    continue
                outcomes[custom_id] = BatchItemResult(
                    custom_id=custom_id, status="succeeded", generation=generation
                )
            else:
                outcomes[custom_id] = BatchItemResult(
                    custom_id=custom_id, status="errored", error=_line_error(line)
                )
        for line in await self._file_lines(_get(batch, "error_file_id")):
            custom_id = str(line.get("custom_id"))
            error = line.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            status: ItemStatus = _ERROR_CODES.get(str(code), "errored")
            outcomes[custom_id] = BatchItemResult(
                custom_id=custom_id, status=status, error=_line_error(line)
            )
        return outcomes

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the API to stop the batch; finished items keep their results."""
        client = self._client()
        batch = await self._call(lambda: client.batches.cancel(batch_id), model=None)
        return _status(batch)
