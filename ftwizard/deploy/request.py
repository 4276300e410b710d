"""The deploy step's test call as the endpoint sees it: the exact request, as curl and as SDK code.

"Try the model" sends what :func:`try_request` builds, with the same provider code that builds
its body, so the request shown, the curl command and the openai-SDK snippet are the call made,
not a description of it. Nothing is added behind the user's back: the system prompt goes in
only when the user's system field holds one.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

from pydantic import BaseModel

from ftwizard.errors import InputError
from ftwizard.inputs import read_text_lines
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.session import Session

MAX_TEST_TOKENS = 64


class TryRequest(BaseModel):
    """One chat call to the deployment: where it goes and its JSON body."""

    provider: str  # the model string's provider (openai, together, vertex, ...)
    model: str  # the model name the endpoint is asked for
    url: str | None  # the chat completions URL; None where the API is not OpenAI-compatible
    api_key_env: str | None  # the variable whose key is sent, when one is
    body: dict[str, Any]
    generation: GenerationRequest

    def text(self) -> str:
        """``POST URL`` and the JSON body, as shown on the deploy step."""
        head = f"POST {self.url}" if self.url else f"{self.provider} generate ({self.model})"
        return head + "\n" + json.dumps(self.body, indent=2, ensure_ascii=False)


def first_row(path: str) -> object:
    """The first line of a JSONL file, decoded (``{}`` when the file is empty)."""
    for _, text in read_text_lines(path):
        return json.loads(text or "{}")
    return {}


def dataset_system_prompt(session: Session) -> str | None:
    """The training data's system prompt (its first row's first message), or ``None``.

    The deploy step offers it in its system field because the model learned with it; it is
    sent only as the field holds it when the user presses Send.
    """
    result = session.dataset.result
    if result is None:
        return None
    try:
        row = first_row(result.training_file)
    except (OSError, ValueError, InputError):
        return None
    messages = row.get("messages") if isinstance(row, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        first = messages[0]
        if first.get("role") == "system" and isinstance(first.get("content"), str):
            return str(first["content"])
    return None


def try_request(
    session: Session, prompt: str, *, system: str | None = None, max_tokens: int = MAX_TEST_TOKENS
) -> TryRequest:
    """The request a test call sends: ``system`` (when not empty), then ``prompt``."""
    from ftwizard.providers.models import VENDOR_ENDPOINTS, parse_model

    deployment = session.deployment
    if not deployment.model:
        raise InputError("deploy the model first", field="deployment.model")
    prompt = prompt.strip()
    if not prompt:
        raise InputError("type a prompt", field="prompt")
    ref = parse_model(deployment.model, base_url=deployment.base_url, field="deployment.model")
    messages = [ChatMessage(role="user", content=prompt)]
    if system and system.strip():
        messages.insert(0, ChatMessage(role="system", content=system.strip()))
    generation = GenerationRequest(model=ref.name, messages=messages, max_tokens=max_tokens)
    url: str | None = None
    key_env: str | None = None
    if ref.provider == "openai" or ref.provider in VENDOR_ENDPOINTS:
        from ftwizard.providers.models import build_generation_provider
        from ftwizard.providers.openai.http import LeanOpenAIChatProvider

        provider = build_generation_provider(ref)
        assert isinstance(provider, LeanOpenAIChatProvider)
        body = provider.build_params(generation)
        url = provider.endpoint() + "/chat/completions"
        key_env = provider.api_key_env
        if provider.compatible and not os.environ.get(key_env or "", "").strip():
            key_env = None  # a compatible server gets a key only when the variable holds one
    else:
        body = {
            "model": ref.name,
            "messages": [m.model_dump(include={"role", "content"}) for m in messages],
            "max_tokens": max_tokens,
        }
    return TryRequest(
        provider=ref.provider,
        model=ref.name,
        url=url,
        api_key_env=key_env,
        body=body,
        generation=generation,
    )


def curl_snippet(request: TryRequest) -> str | None:
    """The same request as a curl command, or ``None`` when the API is not OpenAI-compatible."""
    if request.url is None:
        return None
    lines = [f"curl {shlex.quote(request.url)}", "  -H 'Content-Type: application/json'"]
    if request.api_key_env:
        lines.append(f'  -H "Authorization: Bearer ${request.api_key_env}"')
    lines.append(f"  -d {shlex.quote(json.dumps(request.body, ensure_ascii=False))}")
    return " \\\n".join(lines)


def sdk_snippet(request: TryRequest) -> str | None:
    """The same request with the openai SDK, or ``None`` when the API is not OpenAI-compatible."""
    if request.url is None:
        return None
    base_url = request.url.removesuffix("/chat/completions")
    key = f'os.environ["{request.api_key_env}"]' if request.api_key_env else '"not-needed"'
    body = {k: v for k, v in request.body.items() if k != "messages"}
    lines = [
        "import os" if request.api_key_env else "",
        "from openai import OpenAI",
        "",
        f"client = OpenAI(base_url={base_url!r}, api_key={key})",
        "reply = client.chat.completions.create(",
        f"    messages={request.body.get('messages')!r},",
        *(f"    {name}={value!r}," for name, value in body.items()),
        ")",
        "print(reply.choices[0].message.content)",
    ]
    return "\n".join(lines).lstrip("\n")


__all__ = [
    "MAX_TEST_TOKENS",
    "TryRequest",
    "curl_snippet",
    "dataset_system_prompt",
    "first_row",
    "sdk_snippet",
    "try_request",
]
