"""The Ollama TEMPLATE, rendered by Go's text/template, gives the prompt the HF chat template gives.

Each family of the test matrix (plus ``builtin-tiny``) has its TEMPLATE written from its own
tokenizer; a small Go program executes it exactly as Ollama would (``text/template`` with
``.System``, ``.Prompt``, ``.Response``) and the text is compared with the tokenizer's
``apply_chat_template`` of the same conversation. Skipped where Go is not installed
(Debian: ``apt-get install golang-go``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ftwizard.deploy.modelfile import modelfile_parts, render_modelfile
from tests.local.families import FAMILIES, build_family
from tests.tiny_local import TinyBuild

GO_MAIN = """package main

import (
	"encoding/json"
	"os"
	"text/template"
)

func main() {
	text, _ := os.ReadFile(os.Args[1])
	var data map[string]string
	raw, _ := os.ReadFile(os.Args[2])
	if err := json.Unmarshal(raw, &data); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("t").Parse(string(text)))
	if err := tmpl.Execute(os.Stdout, data); err != nil {
		panic(err)
	}
}
"""
SYSTEM = "You sort support tickets."
PROMPT = "My invoice {{ is }} wrong"
ANSWER = "billing"


@pytest.fixture(scope="module")
def go_render(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A function rendering a Go template with data, via a Go binary built once."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go)")
    folder = tmp_path_factory.mktemp("go-render")
    (folder / "main.go").write_text(GO_MAIN)
    env = {**os.environ, "GOCACHE": str(folder / "cache"), "GOPATH": str(folder / "gopath")}
    env["GO111MODULE"] = "off"
    subprocess.run([go, "build", "-o", "render", "main.go"], cwd=folder, env=env, check=True)

    def render(template: str, data: dict[str, str]) -> str:
        (folder / "t.tmpl").write_text(template)
        (folder / "d.json").write_text(json.dumps(data))
        done = subprocess.run(
            [str(folder / "render"), "t.tmpl", "d.json"],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    return render


def _tokenizer(name: str, tmp_path: Path, tiny: TinyBuild) -> Any:
    from transformers import AutoTokenizer

    folder = tiny.model_dir if name == "builtin-tiny" else build_family(name, tmp_path / name)
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("family", ["builtin-tiny", *FAMILIES])
def test_go_rendering_of_the_template_matches_the_chat_template(
    family: str, tmp_path: Path, tiny_model_build: TinyBuild, go_render: Any
) -> None:
    tokenizer = _tokenizer(family, tmp_path, tiny_model_build)
    parts = modelfile_parts(tokenizer, adds_bos=True)
    bos = tokenizer.bos_token or ""

    def hf(messages: list[dict[str, str]], generation: bool) -> str:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation
        )
        # llama.cpp prepends BOS itself, so the TEMPLATE leaves it out.
        return text[len(bos) :] if bos and text.startswith(bos) else text

    user = {"role": "user", "content": PROMPT}
    answer = {"role": "assistant", "content": ANSWER}
    # Ollama renders the prompt up to .Response for the turn being generated.
    head = parts.template.split("{{ .Response }}")[0]
    assert go_render(head, {"Prompt": PROMPT}) == hf([user], True)
    assert go_render(parts.template, {"Prompt": PROMPT, "Response": ANSWER}) == hf(
        [user, answer], False
    )
    if parts.system_supported:
        system = {"role": "system", "content": SYSTEM}
        data = {"System": SYSTEM, "Prompt": PROMPT}
        assert go_render(head, data) == hf([system, user], True)
        assert go_render(parts.template, {**data, "Response": ANSWER}) == hf(
            [system, user, answer], False
        )
    else:
        assert family == "nosystem"
    # Every end-of-turn token stops generation, and the eos token too.
    spec = FAMILIES.get(family)
    expected = {spec.end_of_turn, spec.eos} if spec else {"<|end|>"}
    assert expected <= set(parts.stops)
    modelfile = render_modelfile("model-f16.gguf", parts, SYSTEM)
    for stop in expected:
        assert f"PARAMETER stop {json.dumps(stop)}" in modelfile
    assert (f'SYSTEM """{SYSTEM}"""' in modelfile) == parts.system_supported
