"""The task step: method, backend and base model, with the environment check."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.widgets import Input, Label, RadioButton, RadioSet, Select, Static

from ftwizard.catalog import (
    BACKENDS,
    METHOD_HINTS,
    check_base_model,
    default_model,
    openai_cutoff_notice,
    supported_models,
)
from ftwizard.environment import check_environment
from ftwizard.flow import task_problem
from ftwizard.screens.step import StepScreen
from ftwizard.session import Backend, Method, Session, StepId
from ftwizard.widgets.choice import Choice
from ftwizard.widgets.env_check import EnvCheckPanel
from ftwizard.widgets.model_download import ModelDownload

HELP = """\
# Task

Choose **what** to train and **where**.

- **Method**: SFT imitates example answers; DPO learns from pairs of a better and a worse
  answer; RFT optimises a grader's score and needs a model that can already sometimes succeed.
- **Backend**: *local* trains a LoRA adapter on this machine (free, offline);
  *OpenAI*, *Vertex AI*, *Together* and *Fireworks* train in the cloud and cost money
  (Together and Fireworks tune open models; Together offers SFT and DPO only).
- **Base model**: pick from the list or type one. Local training takes a Hugging Face repo id
  (`org/name`), a local model folder, or `builtin-tiny` (built offline, for trying
  ftwizard out).

The environment check shows which credentials the chosen backend needs and which are set.
Values are never shown or saved: keys are read from the environment when they are used.

Keys: `ctrl+n` next, `ctrl+b` back, `ctrl+p` commands, `ctrl+q` quit (everything is saved).
"""


class TaskScreen(StepScreen):
    """Method, backend and base model."""

    STEP: ClassVar[StepId] = StepId.task
    HELP: ClassVar[str] = HELP

    def compose_body(self) -> ComposeResult:
        yield Label("Method", classes="field-label")
        with RadioSet(id="method"):
            for method in Method:
                yield Choice(METHOD_HINTS[method], id=f"method-{method.value}")
        yield Label("Backend", classes="field-label")
        with RadioSet(id="backend"):
            for backend, info in BACKENDS.items():
                yield Choice(f"{info.label} - {info.summary}", id=f"backend-{backend.value}")
        yield Static("", id="openai-cutoff", classes="warning")
        yield Label("Base model", classes="field-label")
        yield Select[str]([], id="base-model-choice", prompt="Pick a listed model")
        yield Input(placeholder="or type a model name / path", id="base-model")
        yield Static("", id="base-model-error", classes="error")
        yield ModelDownload(id="model-download")
        yield Label("Environment check", classes="field-label")
        yield EnvCheckPanel(id="env-check")

    def on_mount(self) -> None:
        task = self.session.task
        if task.method is not None:
            self.query_one(f"#method-{task.method.value}", RadioButton).value = True
        if task.backend is not None:
            self.query_one(f"#backend-{task.backend.value}", RadioButton).value = True
        self.query_one("#base-model", Input).value = task.base_model or ""
        self._refresh_choices()
        super().on_mount()

    def step_problem(self) -> str | None:
        return task_problem(self.session)

    def refresh_frame(self) -> None:
        super().refresh_frame()
        task = self.session.task
        cutoff = self.query_one("#openai-cutoff", Static)
        cutoff.display = task.backend is Backend.openai
        if task.backend is Backend.openai:
            cutoff.update(openai_cutoff_notice())
        error = ""
        if task.backend and task.method and task.base_model:
            error = check_base_model(task.backend, task.method, task.base_model) or ""
        self.query_one("#base-model-error", Static).update(error)
        self.query_one(EnvCheckPanel).show(check_environment(task.backend))

    def _listed_models(self) -> tuple[str, ...]:
        task = self.session.task
        if task.backend is None or task.method is None:
            return ()
        return supported_models(task.backend, task.method)

    def _refresh_choices(self) -> None:
        """Offer the models the chosen backend supports for the chosen method."""
        select = self.query_one("#base-model-choice", Select)
        models = self._listed_models()
        # A menu that fills the text field, never a second display of its value.
        select.set_options([(model, model) for model in models])

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        pressed_id = event.pressed.id or ""
        before = self.session.task.base_model
        if event.radio_set.id == "method":
            method = Method(pressed_id.removeprefix("method-"))
            self.decide("method", method.value, lambda s: _set_method(s, method))
        elif event.radio_set.id == "backend":
            backend = Backend(pressed_id.removeprefix("backend-"))
            self.decide("backend", backend.value, lambda s: _set_backend(s, backend))
        self._refresh_choices()
        # Only a change of base model made by this choice is written back into the field: the
        # events that restore the saved choices on mount must not undo a model typed meanwhile.
        if self.session.task.base_model != before:
            self.query_one("#base-model", Input).value = self.session.task.base_model or ""

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "base-model-choice" and isinstance(event.value, str):
            # The list only fills the text field; the field is the one source of the choice.
            base_input = self.query_one("#base-model", Input)
            if base_input.value != event.value:
                base_input.value = event.value
            # Back to its prompt: the text field alone shows the chosen model.
            event.select.clear()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "base-model":
            return
        event.stop()
        value = event.value.strip() or None
        self.decide("base-model", event.value, lambda s: _set_base_model(s, value))


def _set_method(session: Session, method: Method) -> bool:
    if session.task.method is method:
        return False
    session.task.method = method
    _keep_base_model_valid(session)
    return True


def _set_backend(session: Session, backend: Backend) -> bool:
    if session.task.backend is backend:
        return False
    session.task.backend = backend
    _keep_base_model_valid(session)
    return True


def _set_base_model(session: Session, model: str | None) -> bool:
    if session.task.base_model == model:
        return False
    session.task.base_model = model
    return True


def _keep_base_model_valid(session: Session) -> None:
    """After a method or backend change, swap a base model that no longer fits for the default."""
    task = session.task
    if task.method is None or task.backend is None:
        return
    if task.base_model and check_base_model(task.backend, task.method, task.base_model) is None:
        return
    task.base_model = default_model(task.backend, task.method)
