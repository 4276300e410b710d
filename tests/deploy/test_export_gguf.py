"""``ftwizard export --to gguf|ollama|merged``: llama.cpp's converter, read back and checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.providers.local import gguf
from ftwizard.session import Session
from ftwizard.store import SessionStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(gguf.converter_problem() is not None, reason="no GGUF converter here"),
]


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["export", *args, "--json"]) == 0, capsys.readouterr().err
    return dict(json.loads(capsys.readouterr().out))


def test_gguf_reads_back_with_the_merged_models_greedy_tokens(
    store: SessionStore, trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _export(capsys, trained_session.id, "--to", "gguf", "--quant", "f32")
    gguf_file = Path(str(result["files"][0]))  # type: ignore[index]
    assert gguf_file.name == "model-f32.gguf" and gguf_file.stat().st_size > 100_000
    check = result["check"]
    assert isinstance(check, dict) and check["passed"] and check["agreement"] == 1.0
    # The prompts are the validation tickets'.
    assert trained_session.dataset.result and trained_session.dataset.result.validation_file
    text = Path(trained_session.dataset.result.validation_file).read_text()
    valid = [json.loads(line) for line in text.splitlines()]
    assert [p["prompt"] for p in check["prompts"]] == [
        row["messages"][-2]["content"] for row in valid[:3]
    ]
    assert all(p["merged_tokens"] == p["gguf_tokens"] != [] for p in check["prompts"])
    assert check["weight_error"] <= gguf.MAX_WEIGHT_ERROR["f32"]
    saved = json.loads((gguf_file.parent / "gguf-check.json").read_text())
    assert saved["agreement"] == 1.0


def test_a_gguf_of_another_model_is_refused_naming_the_prompt(
    store: SessionStore, trained_session: Session, tiny_model: Path, tmp_path: Path
) -> None:
    # The untrained base model's GGUF checked against the tuned merged model: the greedy
    # answers differ, and the error says on which prompt and token.
    base_gguf = gguf.convert_to_gguf(tiny_model, tmp_path / "base.gguf", "f32")
    from ftwizard.deploy.export import _adapter, _merged

    merged = _merged(store, trained_session, _adapter(trained_session))
    with pytest.raises(gguf.GgufMismatch) as caught:
        gguf.verify_gguf(merged, base_gguf, ["My invoice was charged twice"], quant="f32")
    message = str(caught.value)
    assert "base.gguf (f32) does not reproduce the merged model" in message
    assert "'My invoice was charged twice'" in message and "greedy token 1 differs" in message


def test_a_rounded_gguf_of_another_model_is_refused_for_its_weights(
    store: SessionStore, trained_session: Session, tiny_model: Path, tmp_path: Path
) -> None:
    """A quantized file is judged by its weights too: the base model's q8_0 GGUF, checked
    against the tuned merged model, is refused naming the tensor that differs."""
    base_gguf = gguf.convert_to_gguf(tiny_model, tmp_path / "base-q8_0.gguf", "q8_0")
    from ftwizard.deploy.export import _adapter, _merged

    merged = _merged(store, trained_session, _adapter(trained_session))
    with pytest.raises(gguf.GgufMismatch) as caught:
        gguf.verify_gguf(merged, base_gguf, ["My invoice was charged twice"], quant="q8_0")
    message = str(caught.value)
    assert "base-q8_0.gguf (q8_0) does not hold the merged model's weights" in message
    assert "self_attn" in message and "(2.0% allowed for q8_0)" in message


def test_ollama_folder_has_the_gguf_a_modelfile_and_the_create_line(
    store: SessionStore, trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _export(capsys, trained_session.id, "--to", "ollama", "--quant", "q8_0")
    folder = Path(str(result["folder"]))
    modelfile = (folder / "Modelfile").read_text()
    assert "FROM ./model-q8_0.gguf" in modelfile
    # The whole chat history (.Messages), joined as the tiny model's chat template joins it.
    assert (
        'TEMPLATE """{{ if .System }}<|system|>{{ .System }}<|end|><|user|>{{ else }}<|user|>'
        '{{ end }}{{ $prev := "" }}{{ range .Messages }}{{ if eq .Role "user" }}'
        '{{ if eq $prev "assistant" }}<|end|><|user|>{{ end }}{{ .Content }}{{ $prev = "user" }}'
        '{{ else if eq .Role "assistant" }}{{ if eq $prev "user" }}<|end|><|assistant|>{{ end }}'
        '{{ .Content }}{{ $prev = "assistant" }}{{ end }}{{ end }}'
        '{{ if eq $prev "user" }}<|end|><|assistant|>{{ end }}"""'
    ) in modelfile
    assert 'SYSTEM """Classify the support ticket' in modelfile
    assert 'PARAMETER stop "<|end|>"' in modelfile
    assert "ollama create tickets -f Modelfile" in (folder / "README.md").read_text()
    assert result["check"]["passed"]  # type: ignore[index]


def test_q4_k_m_is_said_plainly_unavailable_without_llama_cpp(
    trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    if gguf.quantizer_problem() is None:
        pytest.skip("llama.cpp's quantizer is installed here")
    code = main(["export", trained_session.id, "--to", "gguf", "--quant", "q4_k_m"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Q4_K_M needs llama.cpp's quantizer, which is not installed here" in err


def test_q4_k_m_is_made_by_llama_cpps_quantizer_and_reads_back(
    trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where llama-cpp-python is installed (a C++ build the suite's install leaves out: ~13 min
    on 2 cores), Q4_K_M comes from llama.cpp's own quantizer and passes the read-back check."""
    if gguf.quantizer_problem() is not None:
        pytest.skip("llama.cpp's quantizer (llama-cpp-python) is not installed here")
    from gguf import GGUFReader, LlamaFileType

    result = _export(capsys, trained_session.id, "--to", "gguf", "--quant", "q4_k_m")
    gguf_file = Path(str(result["files"][0]))  # type: ignore[index]
    assert gguf_file.name == "model-q4_k_m.gguf"
    field = GGUFReader(gguf_file).fields["general.file_type"]
    assert int(field.parts[field.data[0]][0]) == LlamaFileType.MOSTLY_Q4_K_M
    check = result["check"]
    assert isinstance(check, dict) and check["passed"] and check["quant"] == "q4_k_m"
    # Every tensor reads back close to the merged one: rounding, not a conversion fault.
    assert 0.0 < check["weight_error"] <= gguf.MAX_WEIGHT_ERROR["q4_k_m"]


def test_merged_export_is_a_plain_transformers_folder(
    trained_session: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "merged"
    result = _export(capsys, trained_session.id, "--to", "merged", "-o", str(out))
    assert result["folder"] == str(out)
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists()
