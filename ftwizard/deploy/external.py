"""Deploy to a server that already runs: vLLM, SGLang, llama-server, Ollama, any OpenAI API.

The server's health and ``/v1/models`` are checked (:mod:`ftwizard.providers.openai.server_probe`),
then the deployment becomes ``openai:<model>`` at that base URL: the same kind of deployment
the local server gives, so evaluation calls it without knowing which engine answers. The
caller then makes the test call (:func:`ftwizard.deploy.engine.try_model`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ftwizard.session import DeploymentSection, Session


def register_server(session: Session, url: str, model: str | None = None) -> DeploymentSection:
    """Check the server at ``url`` and make it the session's deployment (the caller saves).

    ``model`` names the served model to call; without it, the one LoRA adapter the server
    lists (or its only model) is chosen.
    """
    from ftwizard.providers.openai.server_probe import probe_server

    probe = probe_server(url)
    name = probe.pick(model)
    section = DeploymentSection(
        model=f"openai:{name}",
        base_url=probe.base_url,
        endpoint=probe.base_url,
        deployed_at=datetime.now(UTC),
    )
    session.deployment = section
    return section


__all__ = ["register_server"]
