"""Getting a base model from the Hugging Face Hub before training (training never downloads).

:func:`plan_download` asks the Hub what a repo holds (file sizes, the commit) and answers a
gated or missing repo with a clear :class:`InputError`; :func:`download_model` fetches the files
through ``huggingface_hub`` into its cache (``HF_HOME``), from ``HF_ENDPOINT``, with
``HF_TOKEN``, reporting :class:`DownloadProgress` (bytes, rate, ETA) and stopping when ``cancel``
is set. A transfer that breaks is resumed by ``huggingface_hub`` with a ``Range`` request; after
a cancel, the files already fetched stay in the cache and the next call fetches only the rest
(huggingface_hub >= 2 keeps no partial file across calls, so the file being fetched restarts).
:func:`is_cached` tells whether a repo is already there.

Both go through ftwizard's deadline policy (:class:`RetryPolicy`, default
:data:`HUB_DOWNLOAD_POLICY`): a 5xx, 429 (after its ``Retry-After``) or broken connection is
retried with backoff; 401, 403 and 404 never are. For a transfer the deadlines count time
*without progress*: an attempt ends once no byte arrived for ``attempt_deadline_s`` and a file
gives up once none arrived for ``total_deadline_s``, so a slow multi-gigabyte shard that keeps
moving is never cut while a Hub that stalls or keeps failing is. huggingface_hub keeps its own
knobs (its read timeout, its resume of a broken body); two client hooks make them answer to
the policy: every request's timeouts are capped to the attempt's remaining time, and a
retryable status is handed to ftwizard's loop instead of huggingface_hub's (which sleeps
``Retry-After`` + 1 s up to five times, whatever the deadline).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import (
    RETRYABLE_STATUS,
    CallFailure,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
)

HUB_DOWNLOAD_POLICY = RetryPolicy(attempt_deadline_s=60.0, total_deadline_s=600.0)
"""The default policy of Hub calls: an attempt that gets no byte for a minute is stalled, and a
file that gets none for ten minutes (failures and waits included) fails."""


class DownloadCancelled(Exception):
    """The user cancelled the download; the files already fetched stay in the cache."""


class HubFile(BaseModel):
    """One file of a repo."""

    name: str
    size: int


class DownloadPlan(BaseModel):
    """What downloading a repo means: its commit, files and total size."""

    repo_id: str
    revision: str
    files: list[HubFile]
    # Downloaded by branch, so the cache maps it to the commit and offline lookups find it.
    ref: str = "main"

    @property
    def total_bytes(self) -> int:
        """Bytes of every file."""
        return sum(f.size for f in self.files)


class DownloadProgress(BaseModel):
    """Where a download stands."""

    done_bytes: int
    total_bytes: int
    bytes_per_s: float
    file: str

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the current rate, or ``None`` before a rate is known."""
        if self.bytes_per_s <= 0:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.bytes_per_s)


def has_weights(folder: Path) -> bool:
    """Whether a model folder holds its weights (every shard of a sharded checkpoint)."""
    import json

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        return all((folder / shard).is_file() for shard in shards)
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def is_cached(repo_id: str) -> bool:
    """Whether ``repo_id`` is in the local Hugging Face cache with its config and weights (a
    cancelled download leaves the repo's folder but not its weights)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # without the local extra nothing is cached for local training
        return False
    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return False
    return (folder / "config.json").is_file() and has_weights(folder)


class _HubStatus(Exception):
    """A retryable status, raised by the client hook before huggingface_hub can retry it."""

    def __init__(self, status_code: int, retry_after_s: float | None) -> None:
        super().__init__(f"the Hub answered HTTP {status_code}")
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class _AttemptExpired(Exception):
    """The attempt's deadline passed (raised where huggingface_hub would go on retrying)."""


class _Clock:
    """The deadlines of the attempt running in this thread; progress pushes them back."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        now = time.monotonic()
        self.give_up_at = now + policy.total_deadline_s
        self.attempt_ends_at = now

    def start_attempt(self) -> float:
        """Open an attempt; its budget in seconds."""
        now = time.monotonic()
        budget = min(self.policy.attempt_deadline_s, max(0.0, self.give_up_at - now))
        self.attempt_ends_at = now + budget
        return budget

    def progressed(self) -> None:
        """Bytes arrived: the transfer is alive, so both deadlines restart from now."""
        now = time.monotonic()
        self.give_up_at = max(self.give_up_at, now + self.policy.total_deadline_s)
        self.attempt_ends_at = max(self.attempt_ends_at, now + self.policy.attempt_deadline_s)

    def left(self) -> float:
        """Seconds left in the current attempt."""
        return self.attempt_ends_at - time.monotonic()


# Thread-local: the wizard downloads in a worker thread, and other Hub calls (uploads) share the
# same huggingface_hub client but must not be bound by a download's clock.
_ACTIVE = threading.local()
_hooks_installed = False
_hooks_lock = threading.Lock()


def _active_clock() -> _Clock | None:
    return getattr(_ACTIVE, "clock", None)


def _request_hook(request: Any) -> None:
    clock = _active_clock()
    if clock is None:
        return
    left = clock.left()
    if left <= 0:
        # huggingface_hub resumes a broken body and retries a timed-out HEAD on its own;
        # refusing the request here is what ends those retries at the deadline.
        raise _AttemptExpired
    timeouts = dict(request.extensions.get("timeout") or {})
    request.extensions["timeout"] = {
        key: left if timeouts.get(key) is None else min(float(timeouts[key]), left)
        for key in ("connect", "read", "write", "pool")
    }


def _response_hook(response: Any) -> None:
    if _active_clock() is None:
        return
    status = int(response.status_code)
    if status in RETRYABLE_STATUS or status >= 500:
        raise _HubStatus(status, parse_retry_after(dict(response.headers)))


def _install_hooks() -> None:
    """Add the deadline hooks to huggingface_hub's HTTP client (once per process)."""
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory

        def factory() -> Any:
            client = default_client_factory()
            client.event_hooks["request"].append(_request_hook)
            client.event_hooks["response"].append(_response_hook)
            return client

        set_client_factory(factory)
        _hooks_installed = True


def _hub_error(repo_id: str, exc: BaseException, *, what: str) -> InputError | CallFailure:
    """An :class:`InputError` for what another attempt cannot change (no access, nothing there),
    else the :class:`CallFailure` the retry loop judges."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"https://huggingface.co/{repo_id}"
    if isinstance(exc, _HubStatus):
        return CallFailure(str(exc), status_code=exc.status_code, retry_after_s=exc.retry_after_s)
    if isinstance(exc, GatedRepoError):
        return InputError(
            f"'{repo_id}' is a gated model: accept its licence on its Hub page ({page}), then "
            "set HF_TOKEN to a token of that account (not retried: the answer stays the same)",
            field="base_model",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return InputError(
            f"no model '{repo_id}' on the Hub (or it is private: set HF_TOKEN to a token with "
            f"access to {page}); not retried",
            field="base_model",
        )
    if isinstance(exc, RevisionNotFoundError):
        return InputError(
            f"'{repo_id}' has no such revision on the Hub ({what}); not retried",
            field="base_model",
        )
    if isinstance(exc, EntryNotFoundError):
        return InputError(
            f"'{repo_id}' has no {what} on the Hub (404); not retried", field="base_model"
        )
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (401, 403):
            return InputError(
                f"the Hub refused {what} of '{repo_id}' (HTTP {status}): it is gated or "
                f"private; set HF_TOKEN to a token with access to {page} (not retried)",
                field="base_model",
            )
        if status == 404:
            return InputError(
                f"'{repo_id}' has no {what} on the Hub (404); not retried", field="base_model"
            )
        return CallFailure(
            f"the Hub answered HTTP {status}",
            status_code=status,
            retry_after_s=parse_retry_after(dict(exc.response.headers)),
        )
    cause = exc.__cause__ if isinstance(exc, LocalEntryNotFoundError) else exc
    if isinstance(exc, _AttemptExpired) or "Timeout" in type(cause).__name__:
        return CallFailure(
            "no complete answer in time (the Hub accepted the connection but stalled)",
            connection_error=True,
            error_type="deadline",
        )
    # A refused or reset connection, a body cut short (huggingface_hub's size check is an
    # OSError), or no answer while looking the file up (LocalEntryNotFoundError).
    if isinstance(exc, OSError | LocalEntryNotFoundError) or "Error" in type(exc).__name__:
        name = type(cause).__name__ if cause is not None else type(exc).__name__
        return CallFailure(f"connection failed: {name}: {exc}", connection_error=True)
    return CallFailure(f"{type(exc).__name__}: {exc}", should_retry=False)


T = TypeVar("T")


def _under_policy(
    call: Callable[[], T],
    *,
    repo_id: str,
    what: str,
    policy: RetryPolicy,
    clock: _Clock | None = None,
    cancel: threading.Event | None = None,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run one Hub call under ``policy``: retry what may pass, raise a clear error otherwise."""
    _install_hooks()
    clock = clock or _Clock(policy)
    attempt = 0
    while True:
        attempt += 1
        budget = clock.start_attempt()
        _ACTIVE.clock = clock
        try:
            return call()
        except DownloadCancelled:
            raise
        except Exception as exc:
            judged = _hub_error(repo_id, exc, what=what)
        finally:
            _ACTIVE.clock = None
        if isinstance(judged, InputError):
            raise judged from None
        failure = judged
        if failure.error_type == "deadline":
            failure.detail = f"no byte for {budget:.0f} s: {failure.detail}"
        delay = backoff_delay(policy, attempt, failure.retry_after_s)
        too_long = failure.retry_after_s is not None and delay > policy.max_retry_after_s
        out_of_time = time.monotonic() + delay >= clock.give_up_at
        if not failure.retryable or attempt >= policy.max_attempts or too_long or out_of_time:
            raise _final_error(failure, repo_id, what, attempt, policy, too_long) from None
        if on_retry is not None:
            on_retry()
        if cancel is not None and cancel.wait(delay):
            raise DownloadCancelled
        if cancel is None:
            time.sleep(delay)


def _final_error(
    failure: CallFailure,
    repo_id: str,
    what: str,
    attempts: int,
    policy: RetryPolicy,
    too_long: bool,
) -> ProviderError:
    status = failure.status_code
    if failure.connection_error:
        hint = "check the network or HF_ENDPOINT, then retry"
    elif status == 429:
        hint = "the Hub is rate limiting: wait, or set HF_TOKEN (a signed-in user gets more)"
    else:
        hint = "the Hugging Face Hub is failing: try again later"
    if too_long:
        hint = f"the Hub asks to wait {failure.retry_after_s:.0f} s before retrying; " + hint
    elif failure.retryable:
        hint = (
            f"gave up after {attempts} attempt(s) (deadlines: {policy.attempt_deadline_s:.0f} s "
            f"per attempt, {policy.total_deadline_s:.0f} s in all); " + hint
        )
    hint += "; the files already fetched stay in the cache and the next run fetches the rest"
    return ProviderError(
        f"the Hugging Face Hub did not answer for {what} of '{repo_id}': {failure.detail}",
        provider="huggingface",
        model=repo_id,
        status_code=status,
        hint=hint,
        attempts=attempts,
        retryable=failure.retryable,
    )


def plan_download(repo_id: str, policy: RetryPolicy | None = None) -> DownloadPlan:
    """The files and size of ``repo_id`` on the Hub (``HF_ENDPOINT``, ``HF_TOKEN``), under
    ``policy`` (default :data:`HUB_DOWNLOAD_POLICY`); see the module for the errors."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise InputError(
            "downloading models needs the local extra: pip install 'ftwizard[local]'",
            field="base_model",
        ) from None

    policy = policy or HUB_DOWNLOAD_POLICY
    info = _under_policy(
        lambda: HfApi().model_info(repo_id, files_metadata=True, timeout=policy.attempt_deadline_s),
        repo_id=repo_id,
        what="the file list",
        policy=policy,
    )
    files = [HubFile(name=s.rfilename, size=int(s.size or 0)) for s in info.siblings or []]
    return DownloadPlan(repo_id=repo_id, revision=str(info.sha), files=files)


def _progress_class(on_bytes: Callable[[int], None], cancel: threading.Event) -> type[Any]:
    from tqdm.auto import tqdm

    class Progress(tqdm):  # type: ignore[misc]
        # huggingface_hub reports each chunk to its tqdm bar: count it, draw nothing, and
        # stop the transfer here when asked.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if cancel.is_set():
                raise DownloadCancelled
            clock = _active_clock()
            if clock is not None and n:
                clock.progressed()
            on_bytes(int(n or 0))
            return None

    return Progress


def download_model(
    plan: DownloadPlan,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
    policy: RetryPolicy | None = None,
) -> Path:
    """Download every file of ``plan`` into the cache; the snapshot folder it lands in.

    Each file is fetched under ``policy`` (default :data:`HUB_DOWNLOAD_POLICY`, deadlines
    counted from the last byte received): a stalled or failing Hub ends in a
    :class:`ProviderError` naming the repo and file, no access or nothing there in an
    :class:`InputError`. A file lands in the snapshot folder only once complete
    (huggingface_hub renames it from a ``.incomplete`` file it deletes on failure), so a failed
    run never leaves a folder :func:`is_cached` takes for whole.
    Raises :class:`DownloadCancelled` when ``cancel`` is set (a later call goes on from the
    files already fetched)."""
    from huggingface_hub import hf_hub_download

    cancel = cancel or threading.Event()
    policy = policy or HUB_DOWNLOAD_POLICY
    started = time.monotonic()
    state = {"done": 0, "resumed": 0, "file": ""}

    def report() -> None:
        if on_progress is None:
            return
        elapsed = max(time.monotonic() - started, 1e-6)
        fresh = state["done"] - state["resumed"]
        on_progress(
            DownloadProgress(
                done_bytes=int(state["done"]),
                total_bytes=plan.total_bytes,
                bytes_per_s=fresh / elapsed if fresh else 0.0,
                file=str(state["file"]),
            )
        )

    def on_bytes(n: int) -> None:
        state["done"] = int(state["done"]) + n
        report()

    snapshot: Path | None = None
    for hub_file in plan.files:
        if cancel.is_set():
            raise DownloadCancelled
        state["file"] = hub_file.name
        before = int(state["done"])

        def restart_count(before: int = before) -> None:
            # The failed attempt's bytes were thrown away with its .incomplete file.
            state["done"] = before
            report()

        path = _under_policy(
            lambda name=hub_file.name: hf_hub_download(
                plan.repo_id,
                name,
                revision=plan.ref,
                etag_timeout=policy.attempt_deadline_s,
                tqdm_class=_progress_class(on_bytes, cancel),
            ),
            repo_id=plan.repo_id,
            what=f"file '{hub_file.name}'",
            policy=policy,
            cancel=cancel,
            on_retry=restart_count,
        )
        # A resumed or cached file reports fewer bytes than its size: count the rest as done.
        counted = int(state["done"]) - before
        if counted < hub_file.size:
            state["resumed"] = int(state["resumed"]) + hub_file.size - counted
            state["done"] = before + hub_file.size
        report()
        snapshot = Path(path).parents[len(Path(hub_file.name).parts) - 1]
    if snapshot is None:
        raise InputError(f"'{plan.repo_id}' has no files to download", field="base_model")
    return snapshot


__all__ = [
    "HUB_DOWNLOAD_POLICY",
    "DownloadCancelled",
    "DownloadPlan",
    "DownloadProgress",
    "HubFile",
    "download_model",
    "has_weights",
    "is_cached",
    "plan_download",
]
