"""The model card (``README.md``) pushed to the Hub with the tuned model.

It says what a reader needs to trust or reproduce the model: the base model, the data (its
SHA-256 and size, so a reader can check they have the same file), the hyperparameters, the
training metrics, and the evaluation with its intervals (the A/B win rate's 95 % Wilson
interval, the grader means with their count and flips).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftwizard.session import Session


def file_digest(path: str | Path) -> tuple[str, int]:
    """SHA-256 and size in bytes of a file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _data_rows(session: Session) -> list[str]:
    result = session.dataset.result
    if result is None:
        return ["- data: not recorded"]
    rows = []
    for label, path, count in (
        ("training", result.training_file, result.examples),
        ("validation", result.validation_file, result.validation_examples),
    ):
        if not path or not Path(path).is_file():
            continue
        sha, size = file_digest(path)
        examples = "" if count is None else f"{count} examples, "
        rows.append(f"- {label}: {examples}{size} bytes, sha256 `{sha}`")
    rows.append(f"- format: {result.format}; tokens: {result.tokens_total}")
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _evaluation_rows(session: Session) -> list[str]:
    ev = session.evaluation
    rows = []
    if ev.base_mean is not None or ev.tuned_mean is not None:
        rows.append(
            f"- grader mean: base {_fmt(ev.base_mean)}, tuned {_fmt(ev.tuned_mean)} "
            f"(n = {_fmt(ev.grader_n)}; fail->pass {_fmt(ev.fail_to_pass)}, "
            f"pass->fail {_fmt(ev.pass_to_fail)})"
        )
    if ev.tuned_win_rate is not None:
        interval = ev.tuned_win_ci95
        shown = f" (95 % interval {interval[0]:.3f}-{interval[1]:.3f})" if interval else ""
        rows.append(
            f"- A/B win rate of the tuned model: {ev.tuned_win_rate:.3f}{shown}, n = {_fmt(ev.n)}, "
            f"judges: {', '.join(ev.judges) or '-'}, verdict: {ev.ab_verdict or '-'}"
        )
    return rows or ["- not evaluated yet (run `ftwizard evaluate`)"]


def model_card(session: Session, *, merged: bool, hyperparameters: dict[str, Any]) -> str:
    """The card's Markdown, with the Hub's YAML metadata block."""
    from ftwizard.training.results import training_summary

    base = session.task.base_model or "unknown"
    summary = training_summary(session)
    meta = ["---", f"base_model: {json.dumps(base)}"]
    meta += ["library_name: transformers" if merged else "library_name: peft"]
    method = session.task.method.value if session.task.method else "sft"
    meta += ["tags:", "  - ftwizard", f"  - {method}"]
    meta += ["---", ""]
    kind = "merged model (LoRA folded into the base weights)" if merged else "LoRA adapter"
    lines = [
        f"# {session.name}",
        "",
        f"A {kind} fine-tuned from `{base}` with ftwizard ({method.upper()}).",
        "",
        "## Data",
        *_data_rows(session),
        "",
        "## Hyperparameters",
        *[f"- {k}: {_fmt(v)}" for k, v in sorted(hyperparameters.items()) if v is not None],
        "",
        "## Training",
        *[f"- {k}: {_fmt(v)}" for k, v in sorted((summary.get("latest") or {}).items())],
        f"- steps: {_fmt(summary.get('step'))}; "
        f"trained tokens: {_fmt(summary.get('trained_tokens'))}; "
        f"duration: {_fmt(summary.get('duration_s'))} s",
        "",
        "## Evaluation",
        *_evaluation_rows(session),
        "",
    ]
    return "\n".join(meta + lines)


__all__ = ["file_digest", "model_card"]
