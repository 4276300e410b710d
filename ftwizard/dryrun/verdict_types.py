"""The verdict's vocabulary: diagnoses, next moves, thresholds, the rules' inputs and the verdict.

The numbers of docs/dryrun.md's table live in :class:`Thresholds`; the rules that read them are
in :mod:`ftwizard.dryrun.rules` and :func:`ftwizard.dryrun.verdict.decide` combines them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from ftwizard.dryrun.groups import GroupStats
from ftwizard.dryrun.metrics import ScoreStats

VerdictName = Literal["GO", "WARNING", "NO-GO"]
Level = Literal["note", "warning", "no-go"]
RANK: dict[Level, int] = {"note": 0, "warning": 1, "no-go": 2}


class Diagnosis(StrEnum):
    """What is wrong (or not), in words a screen can turn into advice."""

    healthy = "healthy"
    too_harsh = "too_harsh"
    too_lenient = "too_lenient"
    no_signal = "no_signal"
    inconsistent_grader = "inconsistent_grader"
    outputs_fail_to_parse = "outputs_fail_to_parse"
    grader_errors = "grader_errors"
    outputs_truncated = "outputs_truncated"
    generation_failed = "generation_failed"
    too_few_samples = "too_few_samples"
    # Group dry run (K > 1): most prompts' K answers score the same, so GRPO sees no signal.
    groups_never_solved = "groups_never_solved"
    groups_always_solved = "groups_always_solved"
    groups_all_equal = "groups_all_equal"


class NextMove(StrEnum):
    """What the user can do next."""

    proceed = "proceed"
    adjust_grader = "adjust_grader"
    add_data = "add_data"
    sft_first = "sft_first"
    stronger_base_model = "stronger_base_model"
    more_samples = "more_samples"
    raise_max_tokens = "raise_max_tokens"
    fix_generation = "fix_generation"
    raise_temperature = "raise_temperature"
    drop_flat_prompts = "drop_flat_prompts"


NEXT_MOVES: dict[Diagnosis, list[NextMove]] = {
    Diagnosis.healthy: [NextMove.proceed],
    Diagnosis.too_harsh: [NextMove.adjust_grader, NextMove.sft_first, NextMove.stronger_base_model],
    Diagnosis.too_lenient: [NextMove.adjust_grader, NextMove.add_data],
    Diagnosis.no_signal: [NextMove.adjust_grader],
    Diagnosis.inconsistent_grader: [NextMove.adjust_grader],
    Diagnosis.outputs_fail_to_parse: [NextMove.sft_first, NextMove.adjust_grader],
    Diagnosis.grader_errors: [NextMove.adjust_grader],
    Diagnosis.outputs_truncated: [NextMove.raise_max_tokens],
    Diagnosis.generation_failed: [NextMove.fix_generation],
    Diagnosis.too_few_samples: [NextMove.more_samples],
    Diagnosis.groups_never_solved: [
        NextMove.adjust_grader,
        NextMove.sft_first,
        NextMove.raise_temperature,
    ],
    Diagnosis.groups_always_solved: [NextMove.drop_flat_prompts, NextMove.add_data],
    Diagnosis.groups_all_equal: [NextMove.raise_temperature, NextMove.adjust_grader],
}

MOVE_TEXT: dict[NextMove, str] = {
    NextMove.proceed: "Proceed to training.",
    NextMove.adjust_grader: "Adjust the grader (partial credit, a clearer rubric, a "
    "deterministic judge) with Adjust the grader, and run the dry run again.",
    NextMove.add_data: "Add harder prompts to the training file (the dataset step, --data on "
    "the command line): the base model already solves these.",
    NextMove.sft_first: "Run SFT first (Method on the task step), so the model learns the task "
    "and its output format before RFT.",
    NextMove.stronger_base_model: "Pick a stronger base model (the Base model of the task "
    "step, --model on the command line).",
    NextMove.more_samples: "Run the dry run with more samples (More samples on the dry-run "
    "step, --samples N on the command line).",
    NextMove.raise_max_tokens: "Raise the output token limit (Max output tokens on the dry-run "
    "step, --max-tokens N on the command line): answers are being cut off.",
    NextMove.fix_generation: "Check the model name (Base model on the task step, --model on the "
    "command line), its key and the endpoint (--base-url), then run again.",
    NextMove.raise_temperature: "Raise the sampling temperature so a prompt's answers differ "
    "(ftwizard dryrun --temperature T; with several answers per prompt the dry run samples at "
    "1.0, the training temperature).",
    NextMove.drop_flat_prompts: "Drop the always-solved and never-solved prompts (Drop "
    "always/never-solved prompts on the dry-run step, --drop-flat FILE on the command line; "
    "written as a new dataset file, the original is kept).",
}


class Thresholds(BaseModel):
    """The numbers of the verdict table (shares are fractions 0-1)."""

    harsh_nogo: float = 0.10
    harsh_warn: float = 0.20
    lenient_warn: float = 0.30
    lenient_nogo: float = 0.50
    mean_low: float = 0.25
    mean_high: float = 0.65
    std_nogo: float = 0.05
    std_warn: float = 0.10
    std_high: float = 0.25
    binary_low_nogo: float = 0.10
    binary_low_warn: float = 0.20
    binary_high_warn: float = 0.70
    binary_high_nogo: float = 0.90
    errors_warn: float = 0.05
    errors_nogo: float = 0.20
    generation_nogo: float = 0.50
    noise_warn: float = 0.10
    noise_nogo: float = 0.25
    noise_floor: float = 0.05
    min_samples: int = 30
    truncated_warn: float = 0.20
    # Share of prompts whose K scores are all equal (the estimate of frac_reward_zero_std).
    zero_variance_warn: float = 0.50
    zero_variance_nogo: float = 0.80


class VerdictInputs(BaseModel):
    """What the rules look at."""

    method: Literal["sft", "dpo", "rft"] = "rft"
    stats: ScoreStats
    sampled: int
    generation_failures: int = 0
    grader_errors: int = 0
    parse_failures: int = 0
    truncated: int = 0
    grader_noise: float | None = None
    groups: GroupStats | None = None


class Reason(BaseModel):
    """One rule that fired: its id in the table, how serious, and what it saw."""

    rule: str
    level: Level
    message: str
    diagnosis: Diagnosis | None = None


class Verdict(BaseModel):
    """GO / WARNING / NO-GO with the reasons, the diagnosis and the suggested next moves."""

    verdict: VerdictName
    reasons: list[Reason] = Field(default_factory=list)
    diagnosis: list[Diagnosis] = Field(default_factory=list)
    next_moves: list[NextMove] = Field(default_factory=list)
    is_gate: bool = True

    def reason_texts(self) -> list[str]:
        """The reasons as plain sentences (warnings and blockers first, then notes)."""
        ordered = sorted(self.reasons, key=lambda r: -RANK[r.level])
        return [r.message for r in ordered]
