"""Group figures of an RFT dry run: K answers per prompt, and whether they score differently.

GRPO-style training (TRL GRPO/RLOO, Vertex ``samplesPerPrompt``, Fireworks ``--inference-n``)
learns only from prompts whose K samples get different rewards: a group whose K scores are all
equal has zero advantage everywhere. The share of such groups is the dry run's estimate of
TRL's ``frac_reward_zero_std``; it splits into all-fail groups (the model never solves the
prompt) and all-pass groups (it always does). The within-prompt std is the sample standard
deviation (``ddof=1``, as ``torch.std`` in TRL's grouped rewards).

Only complete groups count: a prompt with a draw that failed to generate or to grade is left
out of the group figures (its draws still count in the overall score figures).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from ftwizard.errors import InputError
from ftwizard.inputs import read_text_lines

# TRL's GRPOConfig samples at temperature 1.0 unless told otherwise; a dry run that predicts
# GRPO's groups samples the same way when the caller names no temperature.
TRAINING_TEMPERATURE = 1.0
DEFAULT_K_RFT = 4
_EQUAL = 1e-9


class GroupStats(BaseModel):
    """Group figures over complete groups (percentages 0-100, like ``ScoreStats.pct_*``)."""

    k: int
    groups: int
    zero_variance_pct: float
    all_fail_pct: float
    all_pass_pct: float
    mean_within_std: float
    pass_at_1_pct: float | None = None
    pass_at_k_pct: float | None = None
    always_solved: list[int] = Field(default_factory=list)
    never_solved: list[int] = Field(default_factory=list)

    def to_cli_json(self) -> dict[str, float | int | None]:
        """The ``"groups"`` object of ``ftwizard dryrun --json``."""
        return {
            "k": self.k,
            "zero_variance_pct": self.zero_variance_pct,
            "all_fail_pct": self.all_fail_pct,
            "all_pass_pct": self.all_pass_pct,
            "mean_within_std": self.mean_within_std,
            "pass_at_1_pct": self.pass_at_1_pct,
            "pass_at_k_pct": self.pass_at_k_pct,
        }


def _std(scores: Sequence[float]) -> float:
    if len(scores) < 2:
        return 0.0
    mean = math.fsum(scores) / len(scores)
    return math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / (len(scores) - 1))


def _pct(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


def group_stats(
    groups: Iterable[tuple[int, Sequence[float]]], k: int, *, binary: bool
) -> GroupStats | None:
    """Figures over ``(line, scores)`` groups of 0-1 scores; ``None`` when ``k`` < 2.

    ``binary`` (every score is 0 or 1) adds pass@1 (share of draws that pass) and pass@K (share
    of prompts with at least one passing draw among its K).
    """
    if k < 2:
        return None
    complete = [(line, list(scores)) for line, scores in groups if len(scores) == k]
    n = len(complete)
    flat = zero = fail = passed = any_pass = draws_passed = 0
    stds: list[float] = []
    always: list[int] = []
    never: list[int] = []
    for line, scores in complete:
        stds.append(_std(scores))
        if max(scores) - min(scores) <= _EQUAL:
            zero += 1
            if scores[0] <= _EQUAL:
                fail += 1
                never.append(line)
            elif scores[0] >= 1 - _EQUAL:
                passed += 1
                always.append(line)
        flat += len(scores)
        hits = sum(1 for s in scores if s >= 1 - _EQUAL)
        draws_passed += hits
        any_pass += hits > 0
    return GroupStats(
        k=k,
        groups=n,
        zero_variance_pct=_pct(zero, n),
        all_fail_pct=_pct(fail, n),
        all_pass_pct=_pct(passed, n),
        mean_within_std=math.fsum(stds) / n if n else 0.0,
        pass_at_1_pct=_pct(draws_passed, flat) if binary else None,
        pass_at_k_pct=_pct(any_pass, n) if binary else None,
        always_solved=sorted(always),
        never_solved=sorted(never),
    )


def drop_prompts(data: str | Path, lines: Iterable[int], out: str | Path) -> int:
    """Write ``data`` without the 1-based ``lines`` to the new file ``out``; return rows kept.

    The original is never touched: ``out`` must be another path and must not exist yet. Only
    JSONL data (one example a line) can be rewritten line by line.
    """
    from ftwizard.files import atomic_write_text

    src, dst = Path(data), Path(out)
    if src.suffix.lower() not in (".jsonl", ".ndjson"):
        raise InputError(
            "dropping prompts rewrites JSONL data only; convert the data to JSONL first",
            path=str(src),
        )
    if dst.exists() or dst.resolve() == src.resolve():
        raise InputError("the new dataset file already exists; choose another path", path=str(dst))
    drop = set(lines)
    kept: list[str] = []
    for number, text in read_text_lines(src):
        if number not in drop:
            kept.append(text if text.endswith("\n") else text + "\n")
    atomic_write_text(dst, "".join(kept))
    return sum(1 for text in kept if text.strip())
