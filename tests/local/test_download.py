"""Getting a model from the Hub: against a fake Hub on 127.0.0.1 (``HF_ENDPOINT``)."""

from __future__ import annotations

import threading

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.local.download import (
    DownloadCancelled,
    DownloadProgress,
    download_model,
    is_cached,
    plan_download,
)
from ftwizard.providers.local.models import resolve_local_model
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
