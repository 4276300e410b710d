"""The deploy step's core: make the tuned model callable, then call it.

- Local: the adapter (the chosen checkpoint or the final one) is exported, merged into its base
  model, and served on an OpenAI-compatible endpoint on 127.0.0.1
  (:class:`~ftwizard.providers.local.serve.LocalServer`, detached, found again after a restart);
  the deployment is ``openai:<name>`` with that server's base URL.
- OpenAI: the fine-tuned model id is the deployment (``openai:ft:...``).
- Vertex: the tuned model's endpoint is the deployment (``vertex:projects/.../endpoints/...``).
- Together: the fine-tuned model's name is the deployment (``together:<account>/<name>``),
  called through Together's OpenAI-compatible chat completions.
- Fireworks: the output model is the deployment (``fireworks:accounts/<account>/models/<id>``),
  called through Fireworks' OpenAI-compatible chat completions.

:func:`try_model` calls the deployment once with any prompt and records the exchange, which is
what makes the step done: a model that answered.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ftwizard.errors import InputError
from ftwizard.session import Backend, DeploymentSection, Session
from ftwizard.store import SessionStore

DEPLOY_DIR = "deploy"
SERVED_NAME = "ftwizard-tuned"
DEFAULT_PROMPT = "Reply with one short sentence to show that you are working."
MAX_TEST_TOKENS = 64


def deploy_problem(session: Session) -> str | None:
    """Why the deploy step is not complete (a deployed model that answered), or ``None``."""
    deployment = session.deployment
    if not deployment.model:
        return "Deploy the tuned model."
    if deployment.test_reply is None:
        return "Try the model once: send a prompt."
    return None


def deploy_folder(session: Session, store: SessionStore) -> Path:
    """Where the local deployment keeps its exports and server state."""
    return store.artifacts_dir(session.id) / DEPLOY_DIR


def model_to_deploy(session: Session) -> str:
    """The tuned model training produced (local: the adapter folder); ``InputError`` if none."""
    from ftwizard.training.results import final_model, training_problem

    problem = training_problem(session)
    if problem:
        raise InputError(f"training is not done: {problem}", field="training")
    model = final_model(session)
    if not model:
        raise InputError("training produced no model to deploy", field="training")
    return model


def _deploy_local(session: Session, store: SessionStore, adapter: str) -> DeploymentSection:
    from ftwizard.providers.local.export import export_adapter, export_merged
    from ftwizard.providers.local.serve import LocalServer

    folder = deploy_folder(session, store)
    adapter_dir = export_adapter(adapter, folder / "adapter", overwrite=True)
    # Named after its source, so choosing another checkpoint never serves a stale merge.
    digest = hashlib.sha256(str(Path(adapter).resolve()).encode()).hexdigest()[:12]
    merged_dir = folder / f"merged-{digest}"
    server = LocalServer(folder / "server")
    record = server.record()
    running = record is not None and server.is_alive()
    if running and record is not None and record.model == str(merged_dir) and server.healthy():
        pass  # the same model is already served (the app restarted): keep it
    else:
        if running:
            server.stop()
        export_merged(adapter_dir, merged_dir, overwrite=True)
        server = LocalServer.start(str(merged_dir), folder / "server", name=SERVED_NAME)
        record = server.record()
        for stale in folder.glob("merged-*"):
            if stale != merged_dir and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
    assert record is not None  # start() returns only once the server answered
    return DeploymentSection(
        model=f"openai:{SERVED_NAME}",
        base_url=record.base_url,
        endpoint=record.base_url,
        deployed_at=datetime.now(UTC),
        adapter_dir=str(adapter_dir),
        merged_dir=str(merged_dir),
        server_dir=str(server.folder),
    )


def deploy(session: Session, store: SessionStore) -> DeploymentSection:
    """Deploy the session's tuned model and record how to call it (the caller saves).

    Local export and merge take seconds to minutes: call this off the UI thread.
    """
    model = model_to_deploy(session)
    backend = session.task.backend
    if backend is Backend.local:
        section = _deploy_local(session, store, model)
    elif backend is Backend.openai:
        section = DeploymentSection(model=f"openai:{model}", deployed_at=datetime.now(UTC))
    elif backend is Backend.vertex:
        section = DeploymentSection(
            model=f"vertex:{model}", endpoint=model, deployed_at=datetime.now(UTC)
        )
    elif backend is Backend.together:
        # Together serves the fine-tuned model by name on its OpenAI-compatible chat API.
        section = DeploymentSection(model=f"together:{model}", deployed_at=datetime.now(UTC))
    elif backend is Backend.fireworks:
        # Fireworks serves the tuned LoRA (accounts/A/models/ID) on its OpenAI-compatible
        # chat API once it is deployed (serverless LoRA or a dedicated deployment).
        section = DeploymentSection(model=f"fireworks:{model}", deployed_at=datetime.now(UTC))
    else:
        raise InputError("choose a backend on the task step", field="task.backend")
    session.deployment = section
    return section


def local_server_alive(session: Session) -> bool:
    """Whether the local deployment's server still runs (it survives the app)."""
    from ftwizard.providers.local.serve import LocalServer

    folder = session.deployment.server_dir
    return folder is not None and LocalServer(folder).is_alive()


def stop_local_server(session: Session) -> None:
    """Stop the local deployment's server, if one runs."""
    from ftwizard.providers.local.serve import LocalServer

    if session.deployment.server_dir:
        LocalServer(session.deployment.server_dir).stop()


def sample_prompt(session: Session) -> str:
    """A prompt from the validation (else training) data: the first row's last user turn."""
    result = session.dataset.result
    for path in (result.validation_file, result.training_file) if result else ():
        if not path:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                row = json.loads(handle.readline() or "{}")
        except (OSError, ValueError):
            continue
        messages = row.get("messages") if isinstance(row, dict) else None
        if isinstance(messages, list):
            users = [m.get("content") for m in messages if isinstance(m, dict)]
            turns = [
                m.get("content")
                for m in messages
                if isinstance(m, dict) and m.get("role") == "user"
            ]
            if turns and isinstance(turns[-1], str):
                return turns[-1]
            if users and isinstance(users[0], str):
                return users[0]
    return DEFAULT_PROMPT


def data_system_prompt(session: Session) -> str | None:
    """The system prompt the training data uses (its first row's), or ``None``."""
    # The tuned model learned with the dataset's system prompt; a test without it would ask a
    # question the model was never trained on.
    result = session.dataset.result
    if result is None:
        return None
    try:
        with open(result.training_file, encoding="utf-8") as handle:
            row = json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return None
    messages = row.get("messages") if isinstance(row, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        first = messages[0]
        if first.get("role") == "system" and isinstance(first.get("content"), str):
            return str(first["content"])
    return None


async def try_model(session: Session, prompt: str, *, max_tokens: int = MAX_TEST_TOKENS) -> str:
    """Call the deployed model once with ``prompt``; record and return its reply.

    The dataset's system prompt, when it has one, goes first, as in training.
    """
    from ftwizard.providers.base import ChatMessage, GenerationRequest
    from ftwizard.providers.models import build_generation_provider, close_provider, parse_model

    deployment = session.deployment
    if not deployment.model:
        raise InputError("deploy the model first", field="deployment.model")
    prompt = prompt.strip()
    if not prompt:
        raise InputError("type a prompt", field="deploy-prompt")
    ref = parse_model(deployment.model, base_url=deployment.base_url, field="deployment.model")
    provider = build_generation_provider(ref)
    messages = [ChatMessage(role="user", content=prompt)]
    system = data_system_prompt(session)
    if system:
        messages.insert(0, ChatMessage(role="system", content=system))
    try:
        reply = await provider.generate(
            GenerationRequest(model=ref.name, messages=messages, max_tokens=max_tokens)
        )
    finally:
        await close_provider(provider)
    deployment.test_prompt = prompt
    deployment.test_reply = reply.text
    return reply.text


__all__ = [
    "DEFAULT_PROMPT",
    "data_system_prompt",
    "deploy",
    "deploy_folder",
    "deploy_problem",
    "local_server_alive",
    "model_to_deploy",
    "sample_prompt",
    "stop_local_server",
    "try_model",
]
