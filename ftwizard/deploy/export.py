"""``ftwizard export``: take the tuned local model where people run models.

- ``merged``: the adapter folded into the base model, a plain transformers folder.
- ``gguf``: that folder converted by llama.cpp's own converter (f32, f16, bf16, q8_0; Q4_K_M
  where llama.cpp's quantizer is installed), read back with transformers' GGUF loader and
  checked against the merged model's greedy tokens on validation prompts before it is done.
- ``ollama``: the GGUF plus a Modelfile (TEMPLATE and stops from the training tokenizer, the
  data's system prompt) and a README with ``ollama create NAME -f Modelfile``.
- ``vllm``: the adapter plus ``serve-vllm.sh`` / ``serve-sglang.sh`` (the exact ``vllm serve``
  and ``sglang serve`` lines, rank rounded up to one vLLM accepts, and their ``docker run``).
- ``hub``: the adapter (or merged model) with a model card, pushed to a Hugging Face repo.

Everything runs in the calling thread and can take minutes: call it off the UI thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from ftwizard.errors import InputError
from ftwizard.session import Backend, Session
from ftwizard.store import SessionStore

ExportTarget = Literal["gguf", "ollama", "merged", "vllm", "hub"]
EXPORT_TARGETS: tuple[str, ...] = ("gguf", "ollama", "merged", "vllm", "hub")
EXPORT_DIR = "export"
DEFAULT_QUANT = "f16"
CHECK_PROMPTS = 3
SERVED_NAME = "ftwizard-tuned"


class ExportResult(BaseModel):
    """What an export wrote, how it was checked, and what to run next."""

    target: str
    folder: str
    files: list[str] = Field(default_factory=list)
    quant: str | None = None
    check: dict[str, Any] | None = None
    commands: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    url: str | None = None
    deployed: bool = False


def sample_prompts(session: Session, n: int = CHECK_PROMPTS) -> list[str]:
    """Up to ``n`` user prompts from the validation data (else the training data)."""
    result = session.dataset.result
    prompts: list[str] = []
    for path in (result.validation_file, result.training_file) if result else ():
        if not path or not Path(path).is_file():
            continue
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                messages = (
                    row.get("messages") or row.get("prompt") if isinstance(row, dict) else None
                )
                if isinstance(messages, str):
                    prompts.append(messages)
                elif isinstance(messages, list):
                    users = [
                        m.get("content")
                        for m in messages
                        if isinstance(m, dict) and m.get("role") == "user"
                    ]
                    if users and isinstance(users[-1], str):
                        prompts.append(users[-1])
                if len(prompts) >= n:
                    return prompts
        if prompts:
            break
    return prompts or ["Hello"]


def _adapter(session: Session) -> Path:
    from ftwizard.deploy.engine import model_to_deploy

    if session.task.backend is not Backend.local:
        raise InputError(
            "export works on a locally trained adapter; this session trained on "
            f"{session.task.backend.value if session.task.backend else 'no backend'}",
            field="task.backend",
        )
    return Path(model_to_deploy(session))


def _merged(store: SessionStore, session: Session, adapter: Path) -> Path:
    from ftwizard.providers.local.export import export_merged

    stat = (adapter / "adapter_model.safetensors").stat()
    key = f"{adapter.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    folder = (
        store.artifacts_dir(session.id)
        / EXPORT_DIR
        / f".merged-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    if not (folder / "config.json").is_file():
        export_merged(adapter, folder, overwrite=True)
    return folder


def _check_gguf_tools(quant: str) -> None:
    # Before the merge, which takes a while: a missing tool is known at once.
    from ftwizard.providers.local import gguf

    problem = gguf.converter_problem()
    if problem:
        raise InputError(problem, field="export")
    if quant not in gguf.available_quants():
        problem = gguf.quantizer_problem() if quant in gguf.K_QUANTS else None
        raise InputError(
            problem or f"choose one of {', '.join(gguf.available_quants())}", field="--quant"
        )


def _gguf(merged: Path, out: Path, quant: str, prompts: list[str]) -> tuple[Path, dict[str, Any]]:
    from ftwizard.providers.local import gguf

    target = out / f"model-{quant}.gguf"
    if quant in gguf.CONVERT_TYPES:
        gguf.convert_to_gguf(merged, target, quant)  # type: ignore[arg-type]
    else:
        wide = gguf.convert_to_gguf(merged, out / ".model-f16.gguf", "f16")
        try:
            gguf.quantize_gguf(wide, target, quant)
        finally:
            wide.unlink(missing_ok=True)
    check = gguf.verify_gguf(merged, target, prompts, quant=quant).model_dump()
    (out / "gguf-check.json").write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
    return target, check


def _gguf_adds_bos(path: Path) -> bool:
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field is not None and field.parts[-1][0])


def _ollama(session: Session, merged: Path, out: Path, target: Path) -> tuple[list[str], list[str]]:
    from transformers import AutoTokenizer, GenerationConfig

    from ftwizard.deploy.modelfile import write_modelfile
    from ftwizard.deploy.request import dataset_system_prompt

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    eos = GenerationConfig.from_pretrained(str(merged)).eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
    system = dataset_system_prompt(session)
    path, parts = write_modelfile(
        out, target.name, tokenizer, adds_bos=_gguf_adds_bos(target), eos_ids=eos_ids, system=system
    )
    notes = []
    if system and not parts.system_supported:
        notes.append("the chat template refuses a system message, so the Modelfile has no SYSTEM")
    # Ollama model names: lowercase letters, digits, '-', '_', '.'.
    name = re.sub(r"[^a-z0-9_.-]+", "-", session.name.lower()).strip("-.") or SERVED_NAME
    command = f"ollama create {name} -f Modelfile"
    readme = out / "README.md"
    readme.write_text(
        f"# {session.name} for Ollama\n\n```\ncd {out}\n{command}\nollama run {name}\n```\n\n"
        "To quantize further: `ollama create NAME -f Modelfile --quantize q4_K_M` "
        "(from an f16 or f32 GGUF).\n",
        encoding="utf-8",
    )
    return [str(path), str(readme)], [command, *notes]


def _vllm(
    session: Session, adapter: Path, out: Path, result: ExportResult, *, start: bool, port: int
) -> None:
    from ftwizard.deploy.serve_lines import serve_lines, vllm_startable, write_scripts
    from ftwizard.providers.local.export import export_adapter
    from ftwizard.providers.local.models import resolve_local_model

    why_not = vllm_startable()
    if start and why_not:
        raise InputError(f"cannot start vLLM here: {why_not}", field="--start")
    copy = export_adapter(adapter, out / "adapter", overwrite=True)
    base = session.task.base_model or ""
    bare = base.removeprefix("local:")
    # A Hub repo id serves as is; a built-in or folder model is served from its folder.
    hub_id = bare.count("/") == 1 and not Path(bare).exists()
    base_arg = bare if hub_id else str(resolve_local_model(base))
    lines = serve_lines(base_arg, copy, SERVED_NAME, port=port)
    scripts = write_scripts(out, lines)
    result.files = [str(copy), *map(str, scripts)]
    result.commands = [lines.vllm, lines.vllm_docker, lines.sglang]
    result.notes = [f"LoRA rank {lines.lora_rank} -> --max-lora-rank {lines.max_lora_rank}"]
    if not start:
        result.notes.append(why_not or "vllm and a GPU are here: --start runs serve-vllm.sh")
        return
    from ftwizard.deploy.external import register_server
    from ftwizard.providers.local.engine_server import start_script, wait_until_serving

    url = f"http://127.0.0.1:{port}/v1"
    pid = start_script(scripts[0])
    wait_until_serving(url, pid, scripts[0].with_suffix(".log"))
    register_server(session, url, SERVED_NAME)
    result.deployed = True
    result.notes.append(f"vLLM runs (pid {pid}, log serve-vllm.log) and is the deployment")


def _hub(
    session: Session,
    store: SessionStore,
    adapter: Path,
    out: Path,
    repo: str | None,
    merged: bool,
    private: bool,
) -> tuple[list[str], str]:
    from ftwizard.deploy.model_card import model_card
    from ftwizard.providers.local.export import export_adapter
    from ftwizard.providers.local.hub_upload import push_folder
    from ftwizard.training.plan import current_hyperparameters

    if not repo:
        raise InputError("name the Hub repo: --repo OWNER/NAME", field="--repo")
    if merged:
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(_merged(store, session, adapter), out)
    else:
        export_adapter(adapter, out, overwrite=True)
    card = model_card(session, merged=merged, hyperparameters=current_hyperparameters(session))
    (out / "README.md").write_text(card, encoding="utf-8")
    url = push_folder(out, repo, private=private, message=f"ftwizard: {session.name}")
    return sorted(str(p) for p in out.rglob("*") if p.is_file()), url


def export_model(
    session: Session,
    store: SessionStore,
    target: str,
    *,
    out: str | Path | None = None,
    quant: str | None = None,
    repo: str | None = None,
    merged: bool = False,
    private: bool = True,
    start: bool = False,
    port: int = 8000,
) -> ExportResult:
    """Export the session's tuned local model as ``target`` into ``out`` (default: artifacts).

    ``start`` (target ``vllm``, where vllm imports and a GPU is visible) runs the script and
    makes the server the session's deployment (the caller saves and makes the test call).
    """
    if target not in EXPORT_TARGETS:
        raise InputError(f"choose one of {', '.join(EXPORT_TARGETS)}", field="--to")
    adapter = _adapter(session)
    folder = Path(out) if out else store.artifacts_dir(session.id) / EXPORT_DIR / target
    folder.mkdir(parents=True, exist_ok=True)
    result = ExportResult(target=target, folder=str(folder))
    if target == "merged":
        from ftwizard.providers.local.export import export_merged

        export_merged(adapter, folder, overwrite=True)
        result.files = sorted(str(p) for p in folder.iterdir())
    elif target in ("gguf", "ollama"):
        result.quant = quant or DEFAULT_QUANT
        _check_gguf_tools(result.quant)
        prompts = sample_prompts(session)
        merged_dir = _merged(store, session, adapter)
        gguf_file, result.check = _gguf(merged_dir, folder, result.quant, prompts)
        result.files = [str(gguf_file), str(folder / "gguf-check.json")]
        if target == "ollama":
            files, result.commands = _ollama(session, merged_dir, folder, gguf_file)
            result.files += files
        else:
            result.commands = [f"llama-server -m {gguf_file} --port 8080"]
    elif target == "vllm":
        _vllm(session, adapter, folder, result, start=start, port=port)
    else:
        result.files, result.url = _hub(session, store, adapter, folder, repo, merged, private)
    return result


def quant_problem() -> str | None:
    """Why Q4_K_M cannot be made here (llama.cpp's quantizer is absent), or ``None``."""
    from ftwizard.providers.local.gguf import quantizer_problem

    return quantizer_problem()


__all__ = ["EXPORT_TARGETS", "ExportResult", "export_model", "quant_problem", "sample_prompts"]
