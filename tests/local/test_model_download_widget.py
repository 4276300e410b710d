"""The download offer widget in a bare app, against the fake Hub."""

from __future__ import annotations

from types import SimpleNamespace

from textual.app import App, ComposeResult
from textual.widgets import Button, Static

from ftwizard.providers.local.download import DownloadProgress, is_cached
from ftwizard.widgets.model_download import ModelDownload, progress_line
from tests.fakes.hf_hub import FakeHub
from tests.local.conftest import REPO


class Host(App[None]):
    def __init__(self, model: str) -> None:
        super().__init__()
        self.session = SimpleNamespace(
            task=SimpleNamespace(base_model=model, backend=SimpleNamespace(value="local"))
        )
        self.finished: list[str] = []

    def compose(self) -> ComposeResult:
        yield ModelDownload(id="dl")

    def on_model_download_finished(self, message: ModelDownload.Finished) -> None:
        self.finished.append(message.repo_id)


def test_progress_line_shows_size_rate_and_eta() -> None:
    line = progress_line(
        DownloadProgress(done_bytes=2_000_000, total_bytes=10_000_000, bytes_per_s=1e6, file="w")
    )
    assert line == "2.0 MB / 10.0 MB, 1.0 MB/s, about 8 s left"


async def test_the_offer_downloads_a_missing_hub_model(hub: FakeHub) -> None:
    app = Host(REPO)
    async with app.run_test() as pilot:
        await pilot.pause()
        widget = app.query_one(ModelDownload)  # offered at once: a replay presses it next
        assert widget.display and widget.model == REPO
        assert "not on this machine" in str(widget.query_one("#download-status", Static).render())
        downloaded = ModelDownload.WAIT_CONDITIONS["model-downloaded"]
        assert not downloaded(widget)  # what a replay waits for: not before the download
        await pilot.click("#download-start")
        for _ in range(100):
            await pilot.pause(0.1)
            if app.finished:
                break
        assert app.finished == [REPO] and is_cached(REPO)
        assert not widget.display and downloaded(widget)


async def test_a_gated_model_is_answered_with_its_message(hub: FakeHub) -> None:
    app = Host("meta/gated")
    async with app.run_test() as pilot:
        await pilot.pause(0.8)
        await pilot.click("#download-start")
        status = app.query_one("#download-status", Static)
        for _ in range(100):
            await pilot.pause(0.1)
            if "gated" in str(status.render()):
                break
        assert "HF_TOKEN" in str(status.render())
        assert app.query_one("#download-start", Button).display
