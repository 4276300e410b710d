"""The offer to download a Hugging Face base model that is not on this machine yet.

Shown on the task screen under the base model: for local training with a Hub id (``org/name``)
missing from the cache, a Download button; while downloading, a progress bar with bytes, rate
and ETA and a Cancel button. The download runs on a worker thread through
:mod:`ftwizard.providers.local.download` (``HF_ENDPOINT``, ``HF_HOME``, ``HF_TOKEN``); a gated
or unknown model is answered with its message. Training itself never downloads.

A replay waits for ``model-downloaded`` (see :data:`ModelDownload.WAIT_CONDITIONS`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, ProgressBar, Static

from ftwizard.errors import FtwizardError
from ftwizard.providers.local.download import (
    DownloadCancelled,
    DownloadProgress,
    download_model,
    is_cached,
    plan_download,
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def progress_line(progress: DownloadProgress) -> str:
    """``12.3 MB / 950.0 MB, 4.1 MB/s, about 3 min left``."""
    line = f"{_mb(progress.done_bytes)} / {_mb(progress.total_bytes)}"
    if progress.bytes_per_s > 0:
        line += f", {_mb(progress.bytes_per_s)}/s"
    eta = progress.eta_s
    if eta is not None:
        line += f", about {eta / 60:.0f} min left" if eta >= 90 else f", about {eta:.0f} s left"
    return line


class ModelDownload(Vertical):
    """Offers, runs and cancels the download of ``model`` (see the module docstring)."""

    DEFAULT_CSS = """
    ModelDownload { height: auto; }
    ModelDownload Horizontal { height: auto; }
    """

    # Conditions a replay can ``wait`` for on any screen that shows this widget: the last
    # download started here finished and the model is in the cache.
    WAIT_CONDITIONS: ClassVar[dict[str, Callable[[Any], bool]]] = {
        "model-downloaded": lambda widget: (
            not widget.busy and widget.downloaded is not None and is_cached(widget.downloaded)
        ),
    }

    class Finished(Message):
        """The model is in the cache now."""

        def __init__(self, repo_id: str) -> None:
            super().__init__()
            self.repo_id = repo_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model: str | None = None
        self._cancel = threading.Event()
        self._busy = False
        self.downloaded: str | None = None

    @property
    def busy(self) -> bool:
        """Whether a download is running."""
        return self._busy

    def compose(self) -> ComposeResult:
        yield Static("", id="download-status")
        yield ProgressBar(total=100, show_eta=False, id="download-bar")
        with Horizontal():
            yield Button("Download", id="download-start", variant="primary")
            yield Button("Cancel", id="download-cancel")

    def on_mount(self) -> None:
        self._show(None)
        self.display = False
        # Follows the screen's session (task.base_model / task.backend) without the screen
        # having to call in; a model is looked up in the cache only when it changes.
        self._seen: tuple[str | None, bool] | None = None
        self.set_interval(0.5, self._follow_session)
        # Now too, so that the offer is there as soon as the screen is: a replay presses
        # Download right after the task screen appears.
        self._follow_session()

    def _follow_session(self) -> None:
        # The app's open session (``None`` while the session list shows): never the screen's,
        # which asserts one is open and may run after it closed.
        if not self.is_attached or self.screen is not self.app.screen:
            return
        session = getattr(self.app, "session", None)
        task = getattr(session, "task", None)
        if task is None:
            return
        key = (task.base_model, getattr(task.backend, "value", None) == "local")
        if key != self._seen:
            self._seen = key
            self.offer(*key)

    def offer(self, model: str | None, local_backend: bool) -> None:
        """Show the offer when ``model`` is a Hub id that local training lacks; hide otherwise."""
        if self._busy:
            return
        wanted = (
            local_backend
            and model is not None
            and bool(_HUB_ID.match(model))
            and not Path(model).expanduser().exists()
            and not is_cached(model)
        )
        self.model = model if wanted else None
        self.display = wanted
        if wanted:
            self._show(f"'{model}' is not on this machine yet; download it from the Hub?")

    def _show(self, status: str | None, *, busy: bool = False) -> None:
        self.query_one("#download-status", Static).update(status or "")
        self.query_one("#download-bar", ProgressBar).display = busy
        self.query_one("#download-start", Button).display = not busy
        self.query_one("#download-cancel", Button).display = busy

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "download-start" and self.model and not self._busy:
            self._busy = True
            self.downloaded = None  # the condition is about this download, not an earlier one
            self._cancel.clear()
            self._show(f"Looking up '{self.model}' on the Hub...", busy=True)
            self.run_worker(lambda: self._download(str(self.model)), thread=True)
        elif event.button.id == "download-cancel":
            self._cancel.set()

    def _download(self, repo_id: str) -> None:
        app = self.app
        try:
            plan = plan_download(repo_id)
            files = len(plan.files)
            app.call_from_thread(
                self._show,
                f"Downloading '{repo_id}': {_mb(plan.total_bytes)} in {files} files",
                busy=True,
            )
            download_model(plan, lambda p: app.call_from_thread(self._progress, p), self._cancel)
        except DownloadCancelled:
            app.call_from_thread(self._end, "Download cancelled; the files fetched are kept.")
        except FtwizardError as exc:
            app.call_from_thread(self._end, str(exc))
        else:
            app.call_from_thread(self._end, None, repo_id)
            app.call_from_thread(self.post_message, self.Finished(repo_id))
            refresh = getattr(self.screen, "refresh_frame", None)
            if callable(refresh):  # the step's checks see the model on disk now
                app.call_from_thread(refresh)

    def _progress(self, progress: DownloadProgress) -> None:
        bar = self.query_one("#download-bar", ProgressBar)
        bar.update(total=max(progress.total_bytes, 1), progress=progress.done_bytes)
        self.query_one("#download-status", Static).update(
            f"Downloading '{self.model}': {progress_line(progress)}"
        )

    def _end(self, message: str | None, downloaded: str | None = None) -> None:
        self._busy = False
        self.downloaded = downloaded
        if message is None:
            self.display = False
            self._show(None)
        else:
            self._show(message)


__all__ = ["ModelDownload", "progress_line"]
