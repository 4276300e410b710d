"""Getting a model from the Hub: against a fake Hub on 127.0.0.1 (``HF_ENDPOINT``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import ProviderError
from ftwizard.providers.local.download import (
    DownloadCancelled,
    DownloadProgress,
    HubFile,
    download_model,
    is_cached,
    plan_download,
)
from ftwizard.providers.local.models import resolve_local_model
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.hf_hub import FakeHub
from tests.local.conftest import REPO


def test_plan_shows_the_size_and_download_reports_progress(hub: FakeHub) -> None:
    assert not is_cached(REPO)
    plan = plan_download(REPO)
    sizes = {f.name: f.size for f in plan.files}
    assert sizes["model.safetensors"] > 10_000 and plan.total_bytes == sum(sizes.values())
    seen: list[DownloadProgress] = []
    folder = download_model(plan, seen.append)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert seen[-1].done_bytes == plan.total_bytes
    assert [p.done_bytes for p in seen] == sorted(p.done_bytes for p in seen)
    assert any(p.eta_s is not None for p in seen)
    assert is_cached(REPO)
    assert resolve_local_model(REPO) == folder


def test_cancel_stops_and_the_next_call_keeps_what_was_fetched(hub: FakeHub) -> None:
    plan = plan_download(REPO)
    cancel = threading.Event()

    def stop_midway(progress: DownloadProgress) -> None:
        if progress.done_bytes > 0:
            cancel.set()  # after the first chunk: nothing else is fetched

    # The weights last, so the small files are complete when the download is cancelled.
    ordered = plan.model_copy(
        update={"files": sorted(plan.files, key=lambda f: f.name == "model.safetensors")}
    )
    with pytest.raises(DownloadCancelled):
        download_model(ordered, stop_midway, cancel)
    assert not is_cached(REPO)
    folder = download_model(ordered)
    assert is_cached(REPO) and (folder / "model.safetensors").is_file()
    gets = [p for m, p, _, _ in hub.requests if m == "GET" and "/resolve/" in p]
    first = ordered.files[0].name
    assert sum(p.endswith("/" + first) for p in gets) == 1  # kept, not fetched again
    assert len(gets) == len(plan.files)


def test_a_broken_transfer_resumes_with_a_range_request(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants

    # Real weights are gigabytes; with the default 10 MB chunks this tiny file would break
    # before its first chunk and restart instead of resuming.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    plan = plan_download(REPO)
    hub.drop_once_after = 20_480
    seen: list[DownloadProgress] = []
    folder = download_model(plan, seen.append)
    size = next(f.size for f in plan.files if f.name == "model.safetensors")
    assert (folder / "model.safetensors").stat().st_size == size
    ranges = [r for m, p, r, _ in hub.requests if m == "GET" and p.endswith("model.safetensors")]
    assert ranges == [None, "bytes=20480-"]
    assert seen[-1].done_bytes == plan.total_bytes


def test_gated_and_unknown_models_get_a_clear_message(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match=r"gated model.*HF_TOKEN"):
        plan_download("meta/gated")
    with pytest.raises(InputError, match="no model 'nobody/nothing'"):
        plan_download("nobody/nothing")
    monkeypatch.setenv("HF_TOKEN", hub.gated_token)
    plan = plan_download("meta/gated")
    assert download_model(plan).is_dir()
    assert all(auth == f"Bearer {hub.gated_token}" for *_, auth in hub.requests[-3:])


def test_an_unreachable_hub_is_retried_then_a_clear_error(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as constants

    from ftwizard.providers.base import ProviderError
    from ftwizard.providers.local.serve import free_port
    from ftwizard.providers.retry import RetryPolicy

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    with pytest.raises(ProviderError, match="did not answer") as caught:
        plan_download(REPO, RetryPolicy(max_attempts=2, initial_delay_s=0.01))
    assert "HF_ENDPOINT" in (caught.value.hint or "")


# Deadlines short enough that a misbehaving Hub ends the test in seconds; huggingface_hub's own
# defaults (10 s read timeout, five resumes, Retry-After + 1 s sleeps) would take a minute.
FAST = RetryPolicy(
    max_attempts=4,
    initial_delay_s=0.01,
    max_delay_s=0.05,
    jitter=0.0,
    attempt_deadline_s=1.0,
    total_deadline_s=3.0,
)


def _no_partial_files(hub_home: Path) -> bool:
    return not list(hub_home.rglob("*.incomplete"))


def _file_requests(hub: FakeHub, name: str) -> int:
    return sum(1 for _, p, _, _ in hub.requests if p.endswith("/" + name))


def test_a_stalled_transfer_ends_at_the_deadline_and_leaves_no_broken_model(
    hub: FakeHub, tmp_path: Path
) -> None:
    plan = plan_download(REPO, FAST)
    hub.stall_after = 4096  # headers and 4 KiB of the weights, then silence
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        download_model(plan, policy=FAST)
    # Bounded by FAST's 3 s without progress, far below huggingface_hub's own ~60 s.
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert REPO in message and "model.safetensors" in message and "no byte for 1 s" in message
    assert "gave up after" in (caught.value.hint or "") and caught.value.exit_code == 1
    assert not is_cached(REPO) and _no_partial_files(tmp_path / "hf-home")
    hub.stall_after = None
    assert is_cached(REPO) is False and download_model(plan, policy=FAST).is_dir()
    assert is_cached(REPO)


@pytest.mark.parametrize(
    "faults",
    [
        [(503, {}), (503, {})],
        [(429, {"Retry-After": "0"})],
    ],
    ids=["503-then-success", "429-retry-after-then-success"],
)
def test_a_busy_hub_is_retried_within_the_deadline(
    hub: FakeHub, faults: list[tuple[int, dict[str, str]]]
) -> None:
    plan = plan_download(REPO, FAST)
    hub.faults = list(faults)
    folder = download_model(plan, policy=FAST)
    assert hub.faults == [] and is_cached(REPO) and (folder / "model.safetensors").is_file()


def test_a_long_retry_after_fails_at_once_with_the_servers_number(hub: FakeHub) -> None:
    plan = plan_download(REPO, FAST)
    hub.faults = [(429, {"Retry-After": "3600"})]
    with pytest.raises(ProviderError, match="HTTP 429") as caught:
        download_model(plan, policy=FAST)
    assert "wait 3600 s" in (caught.value.hint or "") and caught.value.attempts == 1


def test_no_access_is_not_retried_and_names_hf_token_and_the_page(hub: FakeHub) -> None:
    plan = plan_download(REPO, FAST)
    hub.faults = [(401, {}), (401, {})]
    with pytest.raises(InputError) as caught:
        download_model(plan, policy=FAST)
    message = str(caught.value)
    assert "HF_TOKEN" in message and f"https://huggingface.co/{REPO}" in message
    assert "not retried" in message and caught.value.exit_code == 2
    assert len(hub.faults) == 1  # one request, no retry
    assert not is_cached(REPO)


def test_a_missing_file_is_not_retried(hub: FakeHub, tmp_path: Path) -> None:
    plan = plan_download(REPO, FAST)
    missing = plan.model_copy(update={"files": [HubFile(name="missing.bin", size=1)]})
    with pytest.raises(InputError, match=r"no file 'missing.bin'.*not retried") as caught:
        download_model(missing, policy=FAST)
    assert caught.value.exit_code == 2 and _file_requests(hub, "missing.bin") == 1
    assert not is_cached(REPO) and _no_partial_files(tmp_path / "hf-home")
