"""The command lines that serve a LoRA adapter with vLLM or SGLang, written as scripts.

vLLM accepts ``--max-lora-rank`` only from a fixed set (``vllm/config/lora.py`` in 0.34:
1, 8, 16, 32, 64, 128, 256, 320, 512) and refuses an adapter whose rank exceeds it, so the
adapter's rank is rounded up to the next accepted value. SGLang infers the rank when it is not
given; it is passed anyway so both servers are sized alike.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

from pydantic import BaseModel

from ftwizard.errors import InputError

VLLM_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)
VLLM_PORT = 8000
SGLANG_PORT = 30000
VLLM_IMAGE = "vllm/vllm-openai:latest"
SGLANG_IMAGE = "lmsys/sglang:latest"


class ServeLines(BaseModel):
    """How to serve one adapter: the lines a user copies, and the scripts holding them."""

    base: str
    adapter: str
    name: str
    lora_rank: int
    max_lora_rank: int
    vllm_port: int = VLLM_PORT
    vllm: str
    vllm_docker: str
    sglang: str
    sglang_docker: str


def adapter_rank(adapter_dir: Path) -> int:
    """The largest LoRA rank in an adapter folder (``r`` and any per-module ``rank_pattern``)."""
    path = adapter_dir / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the adapter's config: {exc}", path=path) from None
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    numbers = [r for r in ranks if isinstance(r, int) and r > 0]
    if not numbers:
        raise InputError("the adapter config has no LoRA rank", path=path, field="r")
    return max(numbers)


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest ``--max-lora-rank`` vLLM accepts that holds an adapter of ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise InputError(
        f"LoRA rank {rank} is above vLLM's largest --max-lora-rank ({VLLM_LORA_RANKS[-1]}); "
        "serve the merged model instead",
        field="lora_r",
    )


def _join(words: list[str]) -> str:
    return " ".join(shlex.quote(w) for w in words)


def serve_lines(base: str, adapter_dir: Path, name: str, *, port: int = VLLM_PORT) -> ServeLines:
    """The vLLM and SGLang command lines (and their ``docker run`` forms) for one adapter.

    ``base`` is a Hub repo id or a local folder; a folder is mounted into the containers.
    """
    adapter = str(adapter_dir.resolve())
    rank = adapter_rank(adapter_dir)
    max_rank = vllm_max_lora_rank(rank)
    base_is_folder = Path(base).is_dir()
    base_arg = str(Path(base).resolve()) if base_is_folder else base
    vllm = ["vllm", "serve", base_arg, "--enable-lora", "--lora-modules", f"{name}={adapter}"]
    vllm += ["--max-lora-rank", str(max_rank), "--port", str(port)]
    sglang = ["sglang", "serve", "--model-path", base_arg, "--enable-lora"]
    sglang += ["--lora-paths", f"{name}={adapter}", "--max-lora-rank", str(max_rank)]
    sglang += ["--port", str(SGLANG_PORT)]
    mounts = ["-v", "$HOME/.cache/huggingface:/root/.cache/huggingface"]
    mounts += ["-v", f"{adapter}:/adapters/{name}"]
    in_box_base = "/models/base" if base_is_folder else base
    if base_is_folder:
        mounts += ["-v", f"{base_arg}:/models/base"]
    docker = ["docker", "run", "--rm", "--gpus", "all", "--ipc=host"]
    vllm_docker = [*docker, *mounts, "-p", f"{port}:{VLLM_PORT}", VLLM_IMAGE, in_box_base]
    vllm_docker += ["--enable-lora", "--lora-modules", f"{name}=/adapters/{name}"]
    vllm_docker += ["--max-lora-rank", str(max_rank)]
    sglang_docker = [*docker, *mounts, "-p", f"{SGLANG_PORT}:{SGLANG_PORT}", SGLANG_IMAGE]
    sglang_docker += ["sglang", "serve", "--model-path", in_box_base, "--enable-lora"]
    sglang_docker += ["--lora-paths", f"{name}=/adapters/{name}", "--max-lora-rank", str(max_rank)]
    sglang_docker += ["--host", "0.0.0.0", "--port", str(SGLANG_PORT)]
    # $HOME stays unquoted so the shell expands it.
    home = shlex.quote("$HOME/.cache/huggingface:/root/.cache/huggingface")
    return ServeLines(
        base=base_arg,
        adapter=adapter,
        name=name,
        lora_rank=rank,
        max_lora_rank=max_rank,
        vllm_port=port,
        vllm=_join(vllm),
        vllm_docker=_join(vllm_docker).replace(
            home, '"$HOME/.cache/huggingface:/root/.cache/huggingface"'
        ),
        sglang=_join(sglang),
        sglang_docker=_join(sglang_docker).replace(
            home, '"$HOME/.cache/huggingface:/root/.cache/huggingface"'
        ),
    )


SCRIPT_HEAD = """#!/bin/sh
# Written by ftwizard: serve the tuned LoRA adapter ({name}, rank {rank}) on {base}.
# Then: ftwizard deploy SESSION --server http://127.0.0.1:{port}/v1 --model {name}
set -e
if [ "$1" = "--docker" ]; then
  exec {docker}
fi
exec {line}
"""


def write_scripts(folder: Path, lines: ServeLines) -> list[Path]:
    """Write ``serve-vllm.sh`` and ``serve-sglang.sh`` (``--docker`` runs the container form)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file, line, docker, port in (
        ("serve-vllm.sh", lines.vllm, lines.vllm_docker, lines.vllm_port),
        ("serve-sglang.sh", lines.sglang, lines.sglang_docker, SGLANG_PORT),
    ):
        path = folder / file
        path.write_text(
            SCRIPT_HEAD.format(
                name=lines.name,
                rank=lines.lora_rank,
                base=lines.base,
                port=port,
                docker=docker,
                line=line,
            ),
            encoding="utf-8",
        )
        path.chmod(0o755)
        written.append(path)
    return written


def vllm_startable() -> str | None:
    """Why this machine cannot start vLLM itself (``None``: vllm imports and a GPU is visible)."""
    from ftwizard.providers.local.process import visible_gpu_count

    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed here; run the script on a GPU machine"
    if visible_gpu_count() < 1:
        return "no GPU is visible here; run the script on a GPU machine"
    return None


__all__ = [
    "VLLM_LORA_RANKS",
    "ServeLines",
    "adapter_rank",
    "serve_lines",
    "vllm_max_lora_rank",
    "vllm_startable",
    "write_scripts",
]
