"""The deploy step's export panel: the tuned model as GGUF, for Ollama, merged, for vLLM/SGLang,
or to the Hub; and a server that already runs (vLLM, SGLang, llama-server, Ollama) as the
deployment.

Kept in its own module so the deploy screen only places it (``yield ExportPanel(...)``). The
work runs in a thread: a GGUF export converts, reads back and checks the file (minutes on a
large model). What ``ftwizard export`` prints, this panel shows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from ftwizard.errors import FtwizardError
from ftwizard.session import DeploymentSection

TARGETS = [
    ("GGUF (llama.cpp)", "gguf"),
    ("Ollama folder", "ollama"),
    ("Merged model", "merged"),
    ("vLLM / SGLang scripts", "vllm"),
    ("Hugging Face Hub", "hub"),
]
QUANTS = [("f16", "f16"), ("f32", "f32"), ("bf16", "bf16"), ("q8_0", "q8_0"), ("Q4_K_M", "q4_k_m")]


def describe(result: Any) -> Text:
    """What an export wrote and what to run next, as the panel shows it."""
    text = Text()
    text.append(f"Exported {result.target} to {result.folder}", style="bold green")
    if result.check:
        share = result.check["agreement"]
        text.append(
            f"\nRead back by transformers: {share:.0%} of greedy tokens equal the merged "
            f"model's on {len(result.check['prompts'])} validation prompts"
        )
    if result.url:
        text.append(f"\nPushed: {result.url}")
    for line in result.commands:
        text.append(f"\nRun: {line}")
    for note in result.notes:
        text.append(f"\nNote: {note}")
    return text


class ExportPanel(Vertical):
    """Export the tuned model, or use a running server as the deployment."""

    DEFAULT_CSS = """
    ExportPanel { height: auto; }
    ExportPanel Select { width: 28; }
    ExportPanel #export-repo, ExportPanel #deploy-server { width: 1fr; }
    """

    def __init__(self, on_deployed: Callable[[DeploymentSection, str], None]) -> None:
        super().__init__(id="export-panel")
        self.busy = False
        self.last_result: Any = None
        self._on_deployed = on_deployed

    def compose(self) -> ComposeResult:
        yield Label("Export the tuned model", classes="field-label")
        with Horizontal(classes="row"):
            yield Select(TARGETS, value="gguf", allow_blank=False, id="export-target")
            yield Select(QUANTS, value="f16", allow_blank=False, id="export-quant")
            yield Input(placeholder="hub: OWNER/NAME", id="export-repo")
            yield Button("Export", id="export-run")
        yield Static("", id="export-status")
        yield Label("Or use a server that already runs", classes="field-label")
        with Horizontal(classes="row"):
            yield Input(placeholder="http://127.0.0.1:8000/v1", id="deploy-server")
            yield Button("Use server", id="deploy-server-use")

    def on_mount(self) -> None:
        from ftwizard.deploy.export import quant_problem

        problem = quant_problem()
        if problem:
            # Said plainly where it is chosen, not only when the export fails.
            self.query_one("#export-status", Static).update(Text(problem, style="dim"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id not in ("export-run", "deploy-server-use"):
            return
        event.stop()
        if self.busy:
            return
        screen: Any = self.screen
        if event.button.id == "export-run":
            values = {
                "export-target": str(self.query_one("#export-target", Select).value),
                "export-quant": str(self.query_one("#export-quant", Select).value),
                "export-repo": self.query_one("#export-repo", Input).value.strip(),
            }
            screen.wizard.journal({"set": values}, screen=screen.screen_name)
            screen.wizard.journal({"press": "export-run"}, screen=screen.screen_name)
            self._busy(f"Exporting {values['export-target']}...")
            self._export(screen.session.model_copy(deep=True), screen.wizard.store, values)
        else:
            url = self.query_one("#deploy-server", Input).value.strip()
            if not url:
                self.app.notify("Type the server's URL first.", severity="warning")
                return
            screen.wizard.journal({"set": {"deploy-server": url}}, screen=screen.screen_name)
            screen.wizard.journal({"press": "deploy-server-use"}, screen=screen.screen_name)
            self._busy("Checking the server...")
            self._register(screen.session.model_copy(deep=True), url)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()

    def _busy(self, message: str) -> None:
        self.busy = True
        self.query_one("#export-status", Static).update(message)
        self.query_one("#export-run", Button).disabled = True
        self.query_one("#deploy-server-use", Button).disabled = True

    def _finish(self, message: Text | str, *, error: bool = False) -> None:
        self.busy = False
        shown = Text(str(message), style="red") if error else message
        self.query_one("#export-status", Static).update(shown)
        self.query_one("#export-run", Button).disabled = False
        self.query_one("#deploy-server-use", Button).disabled = False
        if error:
            self.app.notify(str(message), title="Export", severity="error")

    def _call(self, callback: Any, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the app is shutting down
            self.app.call_from_thread(callback, *args, **kwargs)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, snapshot: Any, store: Any, values: dict[str, str]) -> None:
        from ftwizard.deploy.export import export_model

        try:
            result = export_model(
                snapshot,
                store,
                values["export-target"],
                quant=values["export-quant"],
                repo=values["export-repo"] or None,
            )
        except FtwizardError as exc:
            self._call(self._finish, str(exc), error=True)
            return
        except Exception as exc:  # a fault must reach the screen
            self._call(self._finish, f"{type(exc).__name__}: {exc}", error=True)
            return
        self._call(self._exported, result)

    def _exported(self, result: Any) -> None:
        self.last_result = result
        self._finish(describe(result))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _register(self, snapshot: Any, url: str) -> None:
        from ftwizard.deploy.engine import sample_prompt, try_model
        from ftwizard.deploy.external import register_server
        from ftwizard.deploy.request import dataset_system_prompt

        try:
            section = register_server(snapshot, url)
            reply = asyncio.run(
                try_model(snapshot, sample_prompt(snapshot), system=dataset_system_prompt(snapshot))
            )
        except FtwizardError as exc:
            self._call(self._finish, str(exc), error=True)
            return
        except Exception as exc:  # a fault must reach the screen
            self._call(self._finish, f"{type(exc).__name__}: {exc}", error=True)
            return
        self._call(self._registered, snapshot.deployment or section, reply)

    def _registered(self, section: DeploymentSection, reply: str) -> None:
        self._finish(f"Using {section.model} at {section.base_url}; it answered.")
        self._on_deployed(section, reply)


__all__ = ["ExportPanel", "describe"]
