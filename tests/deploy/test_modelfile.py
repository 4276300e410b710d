"""Ollama builds, from the exported TEMPLATE, the prompt the HF chat template gives.

Each family of the test matrix (plus ``builtin-tiny``) has its TEMPLATE written from its own
tokenizer. ``ollama_render/main.go`` executes it as Ollama's ``template.Execute`` does for an
``/api/chat`` request (Go's ``text/template``; messages collated into ``.System`` and
``.Messages``, or the legacy ``.Prompt``/``.Response`` path), and the text is compared with
the tokenizer's ``apply_chat_template(..., add_generation_prompt=True)`` of the same
conversation, single- and multi-turn: Ollama sends the whole history on every call, so a
TEMPLATE right only for the first turn would give a tuned model an unseen prompt from the
second turn on. Skipped where Go is not installed (Debian: ``apt-get install golang-go``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ftwizard.deploy.modelfile import ModelfileParts, modelfile_parts, render_modelfile
from tests.local.families import FAMILIES, build_family
from tests.tiny_local import TinyBuild

GO_SOURCE = Path(__file__).parent / "ollama_render" / "main.go"
SYSTEM = "You sort support tickets."
Message = dict[str, str]
OllamaChat = Callable[[str, list[Message]], str]


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _answer(text: str) -> Message:
    return {"role": "assistant", "content": text}


# Contents carry "{{" so a TEMPLATE that lets message text reach Go's parser would fail.
CONVERSATIONS: dict[str, list[Message]] = {
    "one-turn": [_user("My invoice {{ is }} wrong")],
    "system-one-turn": [{"role": "system", "content": SYSTEM}, _user("My invoice is wrong")],
    "three-turns": [_user("My invoice is wrong"), _answer("billing"), _user("App crashes")],
    "system-six-turns": [
        {"role": "system", "content": SYSTEM},
        _user("My invoice {{ is }} wrong"),
        _answer("billing"),
        _user("The app crashes on start"),
        _answer("bug"),
        _user("Please add dark mode"),
    ],
}


@pytest.fixture(scope="module")
def ollama_chat(tmp_path_factory: pytest.TempPathFactory) -> OllamaChat:
    """``(template, messages) -> prompt``, as Ollama renders an /api/chat request."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go)")
    folder = tmp_path_factory.mktemp("ollama-render")
    env = {**os.environ, "GOCACHE": str(folder / "cache"), "GOPATH": str(folder / "gopath")}
    env["GO111MODULE"] = "off"
    binary = folder / "render"
    subprocess.run([go, "build", "-o", str(binary), str(GO_SOURCE)], env=env, check=True)

    def render(template: str, messages: list[Message]) -> str:
        (folder / "t.tmpl").write_text(template, encoding="utf-8")
        (folder / "m.json").write_text(json.dumps(messages), encoding="utf-8")
        done = subprocess.run(
            [str(binary), "t.tmpl", "m.json"], cwd=folder, capture_output=True, check=True
        )
        return done.stdout.decode("utf-8")

    return render


@pytest.fixture(scope="module")
def tokenizers(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_build: TinyBuild
) -> Callable[[str], Any]:
    """``family -> tokenizer``, each family's tiny model built once for this module."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("modelfile-families")
    cache: dict[str, Any] = {}

    def tokenizer(name: str) -> Any:
        if name not in cache:
            if name == "builtin-tiny":
                folder = tiny_model_build.model_dir
            else:
                folder = build_family(name, root / name)
            cache[name] = AutoTokenizer.from_pretrained(str(folder))
        return cache[name]

    return tokenizer


def _training_prompt(tokenizer: Any, messages: list[Message]) -> str:
    text = str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    bos = tokenizer.bos_token or ""
    # llama.cpp prepends BOS itself (the GGUF's add_bos_token), so the TEMPLATE leaves it out.
    return text[len(bos) :] if bos and text.startswith(bos) else text


def _parts(tokenizer: Any) -> ModelfileParts:
    return modelfile_parts(tokenizer, adds_bos=True)


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("family", ["builtin-tiny", *FAMILIES])
def test_ollama_chat_prompt_is_the_training_prompt(
    family: str, conversation: str, tokenizers: Callable[[str], Any], ollama_chat: OllamaChat
) -> None:
    tokenizer = tokenizers(family)
    parts = _parts(tokenizer)
    messages = CONVERSATIONS[conversation]
    if messages[0]["role"] == "system" and not parts.system_supported:
        # The template raises on a system message, so there is no training prompt to match;
        # the export writes no SYSTEM line (checked below) and Ollama then sends none.
        assert family == "nosystem"
        pytest.skip("this chat template refuses system messages")
    assert ollama_chat(parts.template, messages) == _training_prompt(tokenizer, messages)


def test_modelfile_system_line_reaches_the_prompt_as_the_system_message(
    tokenizers: Callable[[str], Any], ollama_chat: OllamaChat
) -> None:
    # Ollama puts the Modelfile's SYSTEM in front of a chat that brings none of its own.
    tokenizer = tokenizers("qwen2")
    history = CONVERSATIONS["three-turns"]
    with_system = [{"role": "system", "content": SYSTEM}, *history]
    assert ollama_chat(_parts(tokenizer).template, with_system) == _training_prompt(
        tokenizer, with_system
    )
    # Without any system prompt Qwen 2's template writes its default one; so does the TEMPLATE.
    assert "You are a helpful assistant." in ollama_chat(_parts(tokenizer).template, history)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Qwen 3's chat template rewrites an earlier answer that contains '</think>' to the text "
        "after its last '</think>' (minus leading newlines). The TEMPLATE cannot: Go "
        "text/template's functions (and, or, not, eq, len, index, slice, print*, html, js, "
        "urlquery, call; Ollama adds json, currentDate, yesterdayDate, toTypeScriptType) cannot "
        "search a string. Ollama's server strips such blocks before the TEMPLATE runs "
        "(server/routes.go filterThinkTags, for GGUF family qwen3 and deepseek-r1 only), a step "
        "ollama_render does not emulate. Answers without '</think>' render identically."
    ),
)
def test_qwen3_drops_reasoning_of_earlier_answers_as_in_training(
    tokenizers: Callable[[str], Any], ollama_chat: OllamaChat
) -> None:
    tokenizer = tokenizers("qwen3")
    messages = [
        _user("My invoice is wrong"),
        _answer("<think>\nan invoice is money\n</think>\n\nbilling"),
        _user("The app crashes on start"),
    ]
    expected = _training_prompt(tokenizer, messages)
    assert "an invoice is money" not in expected  # the template does drop it
    assert ollama_chat(_parts(tokenizer).template, messages) == expected


@pytest.mark.parametrize("family", ["builtin-tiny", *FAMILIES])
def test_modelfile_stops_at_every_end_of_turn_and_writes_the_system_prompt(
    family: str, tokenizers: Callable[[str], Any]
) -> None:
    parts = _parts(tokenizers(family))
    assert parts.system_supported == (family != "nosystem")
    # Every end-of-turn token stops generation, and the eos token too.
    spec = FAMILIES.get(family)
    expected = {spec.end_of_turn, spec.eos} if spec else {"<|end|>"}
    assert expected <= set(parts.stops)
    modelfile = render_modelfile("model-f16.gguf", parts, SYSTEM)
    for stop in expected:
        assert f"PARAMETER stop {json.dumps(stop)}" in modelfile
    assert (f'SYSTEM """{SYSTEM}"""' in modelfile) == parts.system_supported
