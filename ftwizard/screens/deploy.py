"""The deploy step: the final results, Deploy, then how to call the model and a prompt box."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Collapsible, Input, Label, Static

from ftwizard.deploy import engine as deploy
from ftwizard.deploy import request as deploy_request
from ftwizard.errors import FtwizardError
from ftwizard.screens.deploy_export import ExportPanel
from ftwizard.screens.step import StepScreen, job_conditions
from ftwizard.session import Backend, DeploymentSection, StepId
from ftwizard.training import results as training_results

HELP = """\
# Deploy

**Deploy** makes the tuned model callable:

- **Local**: the adapter is exported, merged into its base model, and served on an
  OpenAI-compatible endpoint on 127.0.0.1 (it keeps running after you quit; call it with any
  OpenAI client at the base URL shown, model `ftwizard-tuned`). **Stop server** stops it, as
  does `ftwizard deploy ID --stop`.
- **OpenAI**: the fine-tuned model id is the deployment.
- **Vertex AI**: the tuned model's endpoint is the deployment.

Then type a prompt and press **Send** to try the model. The request shown below the prompt is
exactly what is sent, and the curl command and the openai-SDK code send the same. The system
prompt field starts with the training data's system prompt (the model learned with it); what
it holds is sent, and nothing else: clear it to send the prompt alone. The step is done once
the model answered.
Then type a prompt and press **Send** to try the model. The step is done once it answered.

**Export** (local backend) writes the tuned model where people run models: a GGUF made by
llama.cpp's converter and checked against the merged model, an Ollama folder (GGUF and
Modelfile), the merged model, vLLM/SGLang scripts, or a push to the Hugging Face Hub
(`HF_TOKEN`). **Use server** makes an OpenAI-compatible server that already runs (vLLM, SGLang,
llama-server, Ollama) the deployment that evaluation calls.
"""


class DeployScreen(StepScreen):
    """Final results, deploy, model id / endpoint / base URL, and a prompt box."""

    STEP: ClassVar[StepId] = StepId.deploy
    HELP: ClassVar[str] = HELP
    WAIT_CONDITIONS: ClassVar[dict[str, Any]] = {
        "deployed": lambda screen: not screen.busy and screen.session.deployment.model is not None,
        "model-answered": lambda screen: (
            not screen.busy and screen.session.deployment.test_reply is not None
        ),
        "server-stopped": lambda screen: (
            not screen.busy and not deploy.local_server_alive(screen.session)
        ),
        **job_conditions("deploy"),
        **job_conditions("model-call"),
        **job_conditions("server-stop"),
        "exported": lambda screen: (
            not screen.query_one(ExportPanel).busy
            and screen.query_one(ExportPanel).last_result is not None
        ),
    }

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="deploy-results")
        with Horizontal(classes="row"):
            yield Button("Deploy", id="deploy-model", variant="primary")
            yield Button("Stop server", id="deploy-stop")
            yield Static("", id="deploy-status")
        yield Static("", id="deploy-info")
        yield Label("Try the model", classes="field-label")
        yield Label(
            "System prompt (sent as written; clear it to send the prompt alone)",
            classes="field-label",
        )
        yield Input(placeholder="no system prompt", id="deploy-system")
        with Horizontal(classes="row"):
            yield Input(placeholder="a prompt for the tuned model", id="deploy-prompt")
            yield Button("Send", id="deploy-send")
        yield Static("", id="deploy-request")
        with Collapsible(
            title="The same request with curl and the openai SDK",
            collapsed=True,
            id="deploy-snippets-box",
        ):
            yield Static("", id="deploy-snippets")
        yield Static("", id="deploy-reply")
        yield ExportPanel(on_deployed=self._server_deployed)

    def on_mount(self) -> None:
        deployment = self.session.deployment
        self.query_one("#deploy-prompt", Input).value = deployment.test_prompt or (
            deploy.sample_prompt(self.session)
        )
        # After a test, the system prompt it sent (none included); before, the data's own.
        system = (
            deployment.test_system
            if deployment.test_prompt is not None
            else deploy_request.dataset_system_prompt(self.session)
        )
        self.query_one("#deploy-system", Input).value = system or ""
        self._show_results()
        self._show_deployment()
        super().on_mount()

    def step_problem(self) -> str | None:
        if self.busy:
            return "Working..."
        return deploy.deploy_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        deployed = self.session.deployment.model is not None
        self.query_one("#deploy-model", Button).disabled = self.busy
        self.query_one("#deploy-model", Button).label = "Deploy again" if deployed else "Deploy"
        self.query_one("#deploy-send", Button).disabled = self.busy or not deployed
        local = self.session.task.backend is Backend.local and bool(
            self.session.deployment.server_dir
        )
        stop = self.query_one("#deploy-stop", Button)
        stop.display = local
        stop.disabled = self.busy or not (local and deploy.local_server_alive(self.session))

    def _show_results(self) -> None:
        summary = training_results.training_summary(self.session)
        text = Text()
        text.append(f"Training {summary['status'] or 'not started'}", style="bold")
        latest = ", ".join(f"{k} {v:.4f}" for k, v in summary["latest"].items())
        text.append(f"\nFinal metrics: {latest or '-'}")
        model = training_results.final_model(self.session)
        text.append(f"\nModel to deploy: {model or '-'}")
        if summary["chosen_checkpoint"]:
            text.append(" (a chosen checkpoint)")
        if summary["choice_note"]:
            text.append(f"\n{summary['choice_note']}", style="bold yellow")
        self.query_one("#deploy-results", Static).update(text)

    def _show_deployment(self) -> None:
        deployment = self.session.deployment
        info = self.query_one("#deploy-info", Static)
        if deployment.model is None:
            info.update("Not deployed yet.")
        else:
            text = Text()
            text.append(f"Model {deployment.model}", style="bold green")
            if deployment.base_url:
                text.append(f"\nBase URL {deployment.base_url}")
            if deployment.endpoint and deployment.endpoint != deployment.base_url:
                text.append(f"\nEndpoint {deployment.endpoint}")
            if self.session.task.backend is Backend.local and not deploy.local_server_alive(
                self.session
            ):
                text.append("\nThe local server is not running: press Deploy again.", style="red")
            from ftwizard.widgets.evidence import evidence_text

            text.append_text(evidence_text(self.session))
            info.update(text)
        reply = deployment.test_reply
        self.query_one("#deploy-reply", Static).update(
            "" if reply is None else Text(f"Reply: {reply}", style="cyan")
        )
        self._show_request()

    def _show_request(self) -> None:
        """The request Send makes, exactly, and the same as curl and openai-SDK code."""
        target = self.query_one("#deploy-request", Static)
        snippets = self.query_one("#deploy-snippets", Static)
        if self.session.deployment.model is None:
            target.update("")
            snippets.update("")
            return
        try:
            request = deploy_request.try_request(
                self.session,
                self.query_one("#deploy-prompt", Input).value,
                system=self.query_one("#deploy-system", Input).value,
            )
        except FtwizardError as exc:
            target.update(Text(str(exc), style="yellow"))
            snippets.update("")
            return
        text = Text()
        if request.url is None:
            heading = f"Send sends these messages (in {request.provider}'s own request format):"
        else:
            heading = "Send makes exactly this request:"
        text.append(heading + "\n", style="bold")
        text.append(request.text())
        target.update(text)
        curl = deploy_request.curl_snippet(request)
        sdk = deploy_request.sdk_snippet(request)
        if curl is None or sdk is None:
            snippets.update(f"{request.provider} is not an OpenAI-compatible API: no curl form.")
            return
        code = Text()
        code.append("curl:\n", style="bold")
        code.append(curl + "\n\n")
        code.append("openai SDK (Python):\n", style="bold")
        code.append(sdk)
        snippets.update(code)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id
        if button not in ("deploy-model", "deploy-send", "deploy-stop"):
            pass  # next and back: Textual calls StepScreen.on_button_pressed after this
            return
        event.stop()
        if button == "deploy-model":
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._deploy()
        elif button == "deploy-stop":
            self.wizard.journal({"press": button}, screen=self.screen_name)
            self._stop_server()
        else:
            self._send()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "deploy-prompt":
            event.stop()
            self._send()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("deploy-prompt", "deploy-system"):
            event.stop()
            self._show_request()

    def _set_busy(self, message: str) -> None:
        self.busy = True
        self.query_one("#deploy-status", Static).update(message)
        self.refresh_frame()

    def _done(self, message: str = "", *, error: bool = False, job: str | None = None) -> None:
        self.busy = False
        if job is not None:
            self.job_ended(job, "failed" if error else "done")
        self.query_one("#deploy-status", Static).update(
            Text(message, style="red") if error else message
        )
        if error:
            self.notify(message, title="Deploy", severity="error")
        self._show_deployment()
        self.refresh_frame()

    def _call(self, callback: Any, *args: Any, **kwargs: Any) -> None:
        # RuntimeError: the app is shutting down.
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(callback, *args, **kwargs)

    # Deploy ---------------------------------------------------------------------------------

    def _deploy(self) -> None:
        if self.busy:
            return
        self.job_started("deploy")
        problem = training_results.training_problem(self.session)
        if problem:
            self.notify(problem, title="Not yet", severity="warning")
            self.job_ended("deploy", "failed")
            return
        self._set_busy("Deploying...")
        self._run_deploy(self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="deploy", exit_on_error=False)
    def _run_deploy(self, snapshot: Any) -> None:
        try:
            section = deploy.deploy(snapshot, self.wizard.store)
        except FtwizardError as exc:
            self._call(self._done, str(exc), error=True, job="deploy")
            return
        except Exception as exc:  # a fault must reach the screen
            self._call(self._done, f"{type(exc).__name__}: {exc}", error=True, job="deploy")
            return
        self._call(self._deployed, section)

    def _deployed(self, section: DeploymentSection) -> None:
        section.test_prompt = None
        section.test_reply = None
        self.session.deployment = section
        self.wizard.save_session()
        self._done("Deployed.", job="deploy")
        # What was deployed in view, and the prompt box ready: trying the model comes next.
        self.show_outcome(self.query_one("#deploy-info"), self.query_one("#deploy-prompt"))

    def _server_deployed(self, section: DeploymentSection, reply: str) -> None:
        # A running vLLM/SGLang/Ollama server became the deployment and answered a sample.
        self.session.deployment = section
        self.query_one("#deploy-prompt", Input).value = section.test_prompt or ""
        self.wizard.save_session()
        self._done("")

    # Try it ---------------------------------------------------------------------------------

    def _send(self) -> None:
        if self.busy or self.session.deployment.model is None:
            return
        prompt = self.query_one("#deploy-prompt", Input).value
        system = self.query_one("#deploy-system", Input).value
        if not prompt.strip():
            self.notify("Type a prompt first.", severity="warning")
            return
        # The system prompt and the prompt, then the press: the order a replay repeats them in.
        self.wizard.journal({"set": {"deploy-system": system}}, screen=self.screen_name)
        self.wizard.journal({"set": {"deploy-prompt": prompt}}, screen=self.screen_name)
        self.wizard.journal({"press": "deploy-send"}, screen=self.screen_name)
        self.job_started("model-call")
        self._set_busy("Calling the model...")
        self._run_try(self.session.model_copy(deep=True), prompt, system)

    @work(thread=True, exclusive=True, group="deploy", exit_on_error=False)
    def _run_try(self, snapshot: Any, prompt: str, system: str) -> None:
        try:
            asyncio.run(deploy.try_model(snapshot, prompt, system=system))
        except FtwizardError as exc:
            self._call(self._done, str(exc), error=True, job="model-call")
            return
        except Exception as exc:  # a fault must reach the screen
            self._call(self._done, f"{type(exc).__name__}: {exc}", error=True, job="model-call")
            return
        self._call(self._answered, snapshot.deployment)

    def _answered(self, tried: DeploymentSection) -> None:
        deployment = self.session.deployment
        deployment.test_prompt = tried.test_prompt
        deployment.test_system = tried.test_system
        deployment.test_reply = tried.test_reply
        self.wizard.save_session()
        self._done("", job="model-call")

    # Stop -----------------------------------------------------------------------------------

    def _stop_server(self) -> None:
        if self.busy:
            return
        self.job_started("server-stop")
        self._set_busy("Stopping the local server...")
        self._run_stop(self.session.model_copy(deep=True))

    @work(thread=True, exclusive=True, group="deploy", exit_on_error=False)
    def _run_stop(self, snapshot: Any) -> None:
        try:
            deploy.stop_local_server(snapshot)
        except (OSError, FtwizardError) as exc:
            self._call(
                self._done, f"Could not stop the server: {exc}", error=True, job="server-stop"
            )
            return
        self._call(self._done, "Stopped the local server.", job="server-stop")
