"""Serving the tuned model with vLLM or SGLang, and deploying to a server that already runs.

The vLLM/SGLang lines are checked as text (no GPU or vllm here); the registration is checked
against the fake OpenAI server shaped as vLLM (``/health``, adapters listed with a parent)
and as Ollama (no ``/health``), with the real openai SDK making the test call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.deploy.serve_lines import serve_lines, vllm_max_lora_rank
from ftwizard.errors import InputError
from ftwizard.providers.openai.server_probe import ServedModel, ServerProbe
from ftwizard.session import Session
from ftwizard.store import SessionStore
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training


@pytest.mark.parametrize(
    ("rank", "accepted"), [(1, 1), (4, 8), (8, 8), (12, 16), (16, 16), (33, 64), (300, 320)]
)
def test_the_lora_rank_is_rounded_up_to_one_vllm_accepts(rank: int, accepted: int) -> None:
    assert vllm_max_lora_rank(rank) == accepted


def test_a_rank_above_vllms_largest_is_refused_with_the_merged_model_as_way_out() -> None:
    with pytest.raises(
        InputError, match=r"above vLLM's largest --max-lora-rank \(512\); serve the"
    ):
        vllm_max_lora_rank(1024)


def _adapter(folder: Path, rank: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "rank_pattern": {}}))
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_vllm_and_sglang_lines_for_a_hub_base_model(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path / "adapter", 12)
    lines = serve_lines("Qwen/Qwen3-0.6B", adapter, "ftwizard-tuned")
    assert lines.vllm == (
        f"vllm serve Qwen/Qwen3-0.6B --enable-lora --lora-modules ftwizard-tuned={adapter} "
        "--max-lora-rank 16 --port 8000"
    )
    assert lines.sglang == (
        f"sglang serve --model-path Qwen/Qwen3-0.6B --enable-lora --lora-paths "
        f"ftwizard-tuned={adapter} --max-lora-rank 16 --port 30000"
    )
    assert lines.vllm_docker.startswith("docker run --rm --gpus all --ipc=host")
    assert '"$HOME/.cache/huggingface:/root/.cache/huggingface"' in lines.vllm_docker
    assert f"-v {adapter}:/adapters/ftwizard-tuned" in lines.vllm_docker
    assert lines.vllm_docker.endswith(
        "vllm/vllm-openai:latest Qwen/Qwen3-0.6B --enable-lora --lora-modules "
        "ftwizard-tuned=/adapters/ftwizard-tuned --max-lora-rank 16"
    )


@pytest.mark.slow
def test_vllm_export_writes_runnable_scripts_for_the_sessions_adapter(
    store: SessionStore, trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", trained_session.id, "--to", "vllm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    folder = Path(result["folder"])
    script = (folder / "serve-vllm.sh").read_text()
    # builtin-tiny is a folder: served from its path; the adapter's rank 12 becomes 16.
    assert "--max-lora-rank 16" in script and "-v " in script and "/models/base" in script
    assert f"ftwizard-tuned={folder / 'adapter'}" in script
    assert result["commands"][0].startswith("vllm serve /")
    assert "LoRA rank 12 -> --max-lora-rank 16" in result["notes"]
    assert any("vllm is not installed here" in n or "no GPU" in n for n in result["notes"])
    for name in ("serve-vllm.sh", "serve-sglang.sh"):
        assert (folder / name).stat().st_mode & 0o111
        subprocess.run(["sh", "-n", str(folder / name)], check=True)  # valid shell syntax


def _vllm_like(server: FakeOpenAIServer) -> None:
    server.route("GET", "/health", lambda request, params: FakeResponse(200, ""))
    plain = server._model_object

    def with_parent(model: str) -> dict[str, Any]:
        data = plain(model)
        if model == "ftwizard-tuned":
            data.update(parent="Qwen/Qwen3-0.6B", root="/adapters/ftwizard-tuned")
        return data

    server._model_object = with_parent  # type: ignore[method-assign]


def test_deploy_registers_a_running_vllm_server_and_calls_the_adapter(
    store: SessionStore, tickets: Tickets, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets)
    with FakeOpenAIServer(api_key=None, models=["Qwen/Qwen3-0.6B", "ftwizard-tuned"]) as server:
        _vllm_like(server)
        url = server.base_url
        code = main(["deploy", session.id, "--server", server.base_url + "/", "--json"])
        assert code == 0, capsys.readouterr().err
        chats = server.chat_bodies()
    deployment = json.loads(capsys.readouterr().out)
    assert deployment["model"] == "openai:ftwizard-tuned"
    assert deployment["base_url"] == f"{url}/v1"
    assert deployment["test_reply"].startswith("echo: ")
    # The adapter, not the base model, answered; with the data's system prompt first.
    assert [c["model"] for c in chats] == ["ftwizard-tuned"]
    assert chats[0]["messages"][0]["role"] == "system"
    saved = store.load(session.id)
    assert saved.deployment.model == "openai:ftwizard-tuned" and saved.deployment.test_reply


def test_an_ollama_like_server_without_health_route_needs_the_model_named(
    store: SessionStore, tickets: Tickets, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets)
    with FakeOpenAIServer(api_key=None, models=["tickets:latest", "llama3:8b"]) as server:
        assert main(["deploy", session.id, "--server", server.v1_url]) == 2
        assert "lists several models (tickets:latest, llama3:8b); name one with --model" in (
            capsys.readouterr().err
        )
        assert (
            main(["deploy", session.id, "--server", server.v1_url, "--model", "tickets:latest"])
            == 0
        )
    assert "openai:tickets:latest" in capsys.readouterr().out


def test_no_server_is_a_clear_error(
    store: SessionStore, tickets: Tickets, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets)
    assert main(["deploy", session.id, "--server", "http://127.0.0.1:9/v1"]) == 1
    err = capsys.readouterr().err
    assert "no server answers at http://127.0.0.1:9" in err and "Traceback" not in err


def test_sglang_adapter_names_are_picked_when_they_are_the_only_adapter() -> None:
    probe = ServerProbe(
        base_url="http://x/v1",
        health="ok",
        models=[ServedModel(id="Qwen/Qwen3-0.6B"), ServedModel(id="Qwen/Qwen3-0.6B:ft")],
    )
    assert probe.pick(None) == "Qwen/Qwen3-0.6B:ft"


FAKE_VLLM = """#!/bin/sh
# A stand-in for `vllm serve BASE --enable-lora --lora-modules NAME=ADAPTER ... --port P`:
# ftwizard's own OpenAI-compatible server, serving the adapter under NAME.
shift 2
while [ $# -gt 0 ]; do
  case "$1" in
    --lora-modules) NAME="${2%%=*}"; ADAPTER="${2#*=}"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    *) shift ;;
  esac
done
exec "$FTW_PYTHON" -m ftwizard.providers.local.serve --model "$ADAPTER" --name "$NAME" \\
  --port "$PORT" --device cpu
"""


@pytest.mark.slow
def test_start_runs_the_script_where_vllm_and_a_gpu_are_and_deploys_to_it(
    store: SessionStore,
    trained_session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os
    import re
    import signal
    import sys

    from ftwizard.deploy import serve_lines as serve_module
    from ftwizard.providers.local.job import free_port

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FTW_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    monkeypatch.setattr(serve_module, "vllm_startable", lambda: None)
    port = free_port()
    args = ["export", trained_session.id, "--to", "vllm", "--start", "--port", str(port)]
    code = main([*args, "--json"])
    result = json.loads(capsys.readouterr().out) if code == 0 else {}
    pids = [int(p) for n in result.get("notes", []) for p in re.findall(r"pid (\d+)", n)]
    try:
        assert code == 0, capsys.readouterr().err
        assert result["deployed"] is True
        assert any(n.startswith("test call answered: ") for n in result["notes"])
        saved = store.load(trained_session.id)
        assert saved.deployment.model == "openai:ftwizard-tuned"
        assert saved.deployment.base_url == f"http://127.0.0.1:{port}/v1"
        assert saved.deployment.test_reply is not None
    finally:
        for pid in pids:
            os.killpg(pid, signal.SIGTERM)


def test_start_without_vllm_says_why(
    trained_session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", trained_session.id, "--to", "vllm", "--start"]) == 2
    err = capsys.readouterr().err
    assert "cannot start vLLM here: vllm is not installed here" in err
