"""The blind A/B report and its parts: win counts, position bias, agreement, disagreements.

How raw judgments become these figures is ``evaluate.pairwise``'s counting rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from ftwizard.evaluate.judging import Judgment
from ftwizard.evaluate.mapping import Verdict
from ftwizard.evaluate.stats import wilson_interval
from ftwizard.session import ModelIdentity

# Fewer decisive judgments than this cannot show a position bias either way.
MIN_DECISIVE_FOR_BIAS = 10


class WinCounts(BaseModel):
    """Model B against model A over a set of items."""

    n: int
    a_wins: int
    b_wins: int
    ties: int
    b_win_rate: float | None
    ci95: tuple[float, float]

    @classmethod
    def from_verdicts(cls, verdicts: Sequence[Verdict]) -> WinCounts:
        """Counts, B's win rate (a tie is half a win) and its Wilson interval."""
        n = len(verdicts)
        a, b = verdicts.count("a"), verdicts.count("b")
        ties = n - a - b
        score = b + ties / 2
        return cls(
            n=n,
            a_wins=a,
            b_wins=b,
            ties=ties,
            b_win_rate=score / n if n else None,
            ci95=wilson_interval(score, n),
        )

    @property
    def decided(self) -> Verdict | None:
        """``"b"`` or ``"a"`` when the interval excludes 0.5, else ``None``."""
        lo, hi = self.ci95
        if self.n and lo > 0.5:
            return "b"
        if self.n and hi < 0.5:
            return "a"
        return None


class PositionBias(BaseModel):
    """How often decisive judgments chose whichever answer was shown first."""

    decisive: int
    first_position_rate: float | None
    ci95: tuple[float, float]
    biased: bool
    order_consistency: float | None = None

    @classmethod
    def from_judgments(cls, judgments: Sequence[Judgment]) -> PositionBias:
        """The figure over ``judgments``; ``biased`` when its interval excludes one half."""
        firsts = [j.chose_first for j in judgments if j.chose_first is not None]
        k = sum(firsts)
        lo, hi = wilson_interval(k, len(firsts))
        return cls(
            decisive=len(firsts),
            first_position_rate=k / len(firsts) if firsts else None,
            ci95=(lo, hi),
            biased=len(firsts) >= MIN_DECISIVE_FOR_BIAS and (lo > 0.5 or hi < 0.5),
            order_consistency=_order_consistency(judgments),
        )


def _order_consistency(judgments: Sequence[Judgment]) -> float | None:
    """Share of (judge, item, run) judged in two orders whose winners agree."""
    groups: dict[tuple[str, str, int], list[Judgment]] = {}
    for j in judgments:
        groups.setdefault((j.judge, j.item_id, j.run), []).append(j)
    pairs = [g for g in groups.values() if len(g) > 1 and all(j.winner for j in g)]
    if not pairs:
        return None
    return sum(1 for g in pairs if len({j.winner for j in g}) == 1) / len(pairs)


class JudgeSummary(WinCounts):
    """One judge's counts (its own verdicts, orders combined) and position bias."""

    judge: str
    invalid: int
    position_bias: PositionBias


class KappaPair(BaseModel):
    """Cohen's kappa between two judges' item verdicts (``None`` when undefined)."""

    judges: tuple[str, str]
    kappa: float | None
    n: int


class ItemVerdict(BaseModel):
    """One item's outcome in run 0: the combined verdict and each judge's."""

    item_id: str
    tag: str | None
    verdict: Verdict | None
    by_judge: dict[str, Verdict | None]


class Disagreement(BaseModel):
    """An item to look at: the judges disagree, or one judge changed its mind with the order."""

    item_id: str
    tag: str | None
    kind: Literal["judges", "orders"]
    verdicts: dict[str, list[Verdict | None]]


class RepeatSummary(BaseModel):
    """The spread of B's win rate over repeated runs (different seeds)."""

    b_win_rates: list[float | None]
    mean: float | None
    variance: float | None
    std: float | None


class PairwiseReport(BaseModel):
    """Everything a blind A/B evaluation found; stored in the session as it is."""

    model_a: str
    model_b: str
    judges: list[str]
    seed: int
    both_orders: bool
    runs: int
    counts: WinCounts
    verdict: Literal["a", "b", "undecided"]
    position_bias: PositionBias
    per_judge: dict[str, JudgeSummary]
    kappa: float | None
    kappa_pairs: list[KappaPair]
    by_tag: dict[str, WinCounts]
    repeats: RepeatSummary | None
    items: list[ItemVerdict]
    disagreements: list[Disagreement]
    failed_judgments: int
    failed_answers: int = 0
    warnings: list[str]
    judgments: list[Judgment]
    # The weights model B (the tuned one) ran on, when the evaluate step recorded it.
    tuned_identity: ModelIdentity | None = None

    def to_cli_json(self) -> dict[str, object]:
        """The object ``ftwizard eval-ab --json`` prints."""
        return {
            "n": self.counts.n,
            "a_wins": self.counts.a_wins,
            "b_wins": self.counts.b_wins,
            "ties": self.counts.ties,
            "b_win_rate": self.counts.b_win_rate,
            "ci95": list(self.counts.ci95),
            "verdict": self.verdict,
            "position_bias": {
                "first_position_rate": self.position_bias.first_position_rate,
                "decisive": self.position_bias.decisive,
                "biased": self.position_bias.biased,
                "order_consistency": self.position_bias.order_consistency,
            },
            "judges": {
                name: {
                    "n": s.n,
                    "a_wins": s.a_wins,
                    "b_wins": s.b_wins,
                    "ties": s.ties,
                    "b_win_rate": s.b_win_rate,
                    "ci95": list(s.ci95),
                    "invalid": s.invalid,
                    "first_position_rate": s.position_bias.first_position_rate,
                    "biased": s.position_bias.biased,
                }
                for name, s in self.per_judge.items()
            },
            "kappa": self.kappa,
            "by_tag": {
                tag: {"n": c.n, "b_win_rate": c.b_win_rate, "ci95": list(c.ci95)}
                for tag, c in self.by_tag.items()
            },
            "repeats": self.repeats.model_dump() if self.repeats else None,
            "failed": self.failed_judgments + self.failed_answers,
            "warnings": self.warnings,
        }
