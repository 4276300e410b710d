"""Getting a base model from the Hugging Face Hub before training (training never downloads).

:func:`plan_download` asks the Hub what a repo holds (file sizes, the commit) and answers a
gated or missing repo with a clear :class:`InputError`; :func:`download_model` fetches the files
through ``huggingface_hub`` into its cache (``HF_HOME``), from ``HF_ENDPOINT``, with
``HF_TOKEN``, reporting :class:`DownloadProgress` (bytes, rate, ETA) and stopping when ``cancel``
is set. A transfer that breaks is resumed by ``huggingface_hub`` with a ``Range`` request; after
a cancel, the files already fetched stay in the cache and the next call fetches only the rest
(huggingface_hub >= 2 keeps no partial file across calls, so the file being fetched restarts).
:func:`is_cached` tells whether a repo is already there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.retry import RetryPolicy, backoff_delay


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


def _hub_error(repo_id: str, exc: Exception) -> Exception:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(exc, GatedRepoError):
        return InputError(
            f"'{repo_id}' is a gated model: accept its licence on its Hub page "
            f"(https://huggingface.co/{repo_id}), then set HF_TOKEN to a token of that account",
            field="base_model",
        )
    if isinstance(exc, RepositoryNotFoundError):
        return InputError(
            f"no model '{repo_id}' on the Hub (or it is private: set HF_TOKEN)",
            field="base_model",
        )
    return ProviderError(
        f"the Hugging Face Hub did not answer: {type(exc).__name__}: {exc}",
        provider="huggingface",
        model=repo_id,
        hint="check the network or HF_ENDPOINT, then retry",
    )


def plan_download(repo_id: str, policy: RetryPolicy | None = None) -> DownloadPlan:
    """The files and size of ``repo_id`` on the Hub (``HF_ENDPOINT``, ``HF_TOKEN``); network
    faults are retried with backoff, then a :class:`ProviderError`."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise InputError(
            "downloading models needs the local extra: pip install 'ftwizard[local]'",
            field="base_model",
        ) from None

    policy = policy or RetryPolicy()
    for attempt in range(1, policy.max_attempts + 1):
        try:
            info = HfApi().model_info(repo_id, files_metadata=True)
            break
        except Exception as exc:
            error = _hub_error(repo_id, exc)
            # A gated or missing repo stays so; a network fault or a busy Hub may pass.
            if isinstance(error, InputError) or attempt == policy.max_attempts:
                raise error from None
            time.sleep(backoff_delay(policy, attempt, None))
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
            on_bytes(int(n or 0))
            return None

    return Progress


def download_model(
    plan: DownloadPlan,
    on_progress: Callable[[DownloadProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download every file of ``plan`` into the cache; the snapshot folder it lands in.

    Raises :class:`DownloadCancelled` when ``cancel`` is set (a later call goes on from the
    files already fetched)."""
    from huggingface_hub import hf_hub_download

    cancel = cancel or threading.Event()
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
        try:
            path = hf_hub_download(
                plan.repo_id,
                hub_file.name,
                revision=plan.ref,
                tqdm_class=_progress_class(on_bytes, cancel),
            )
        except DownloadCancelled:
            raise
        except Exception as exc:
            raise _hub_error(plan.repo_id, exc) from None
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
    "DownloadCancelled",
    "DownloadPlan",
    "DownloadProgress",
    "HubFile",
    "download_model",
    "has_weights",
    "is_cached",
    "plan_download",
]
