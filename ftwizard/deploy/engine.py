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

:func:`try_model` calls the deployment once with any prompt (and the system prompt the user
left in the field, nothing else) and records the exchange, which is what makes the step done: a
model that answered. :mod:`ftwizard.deploy.request` builds that call and shows it as curl and
openai-SDK code.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ftwizard.deploy.request import MAX_TEST_TOKENS, first_row
from ftwizard.errors import InputError
from ftwizard.session import Backend, DeploymentSection, Session
from ftwizard.store import SessionStore

DEPLOY_DIR = "deploy"
SERVED_NAME = "ftwizard-tuned"
DEFAULT_PROMPT = "Reply with one short sentence to show that you are working."


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
    from ftwizard.identity import local_identity

    # The checkpoint as chosen (its path resolved before hashing) and the merge that is served.
    identity = local_identity(adapter, model=f"openai:{SERVED_NAME}", merged=merged_dir)
    return DeploymentSection(
        identity=identity,
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
    if section.identity is None and section.model:
        from ftwizard.identity import hosted_identity

        section.identity = hosted_identity(section.model)
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


def running_servers(store: SessionStore) -> list[tuple[str, str]]:
    """``(session id, base URL)`` of every session's local server that still runs."""
    from ftwizard.providers.local.serve import LocalServer

    found: list[tuple[str, str]] = []
    if not store.root.is_dir():
        return found
    for folder in sorted(store.root.glob(f"*/artifacts/{DEPLOY_DIR}/server")):
        server = LocalServer(folder)
        record = server.record()
        if record is not None and server.is_alive():
            found.append((folder.parents[2].name, record.base_url))
    return found


def goodbye(store: SessionStore, session_id: str | None) -> list[str]:
    """What to print once the app has quit: how to resume, and the servers left running."""
    lines = [f"saved; resume with ftwizard resume {session_id}"] if session_id else []
    servers = running_servers(store)
    if servers:
        lines.append("local servers still running:")
        lines += [
            f"  {url} (session {sid}); stop it with: ftwizard deploy {sid} --stop"
            for sid, url in servers
        ]
    return lines


def sample_prompt(session: Session) -> str:
    """A prompt from the validation (else training) data: the first row's last user turn."""
    result = session.dataset.result
    for path in (result.validation_file, result.training_file) if result else ():
        if not path:
            continue
        try:
            row = first_row(path)
        except (OSError, ValueError, InputError):
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


async def try_model(
    session: Session, prompt: str, *, system: str | None = None, max_tokens: int = MAX_TEST_TOKENS
) -> str:
    """Call the deployed model once with ``prompt`` (after ``system``, when given); record the
    exchange and return the reply. What is sent is exactly :func:`~ftwizard.deploy.request.
    try_request`'s body: nothing is added to it."""
    from ftwizard.deploy.request import try_request
    from ftwizard.providers.models import build_generation_provider, close_provider, parse_model

    request = try_request(session, prompt, system=system, max_tokens=max_tokens)
    deployment = session.deployment
    assert deployment.model is not None  # try_request checked it
    ref = parse_model(deployment.model, base_url=deployment.base_url, field="deployment.model")
    provider = build_generation_provider(ref)
    try:
        reply = await provider.generate(request.generation)
    finally:
        await close_provider(provider)
    deployment.test_prompt = prompt.strip()
    deployment.test_system = system.strip() if system and system.strip() else None
    deployment.test_reply = reply.text
    return reply.text


__all__ = [
    "DEFAULT_PROMPT",
    "deploy",
    "deploy_folder",
    "deploy_problem",
    "goodbye",
    "local_server_alive",
    "model_to_deploy",
    "running_servers",
    "sample_prompt",
    "stop_local_server",
    "try_model",
]
