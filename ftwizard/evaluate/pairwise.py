"""Blind A/B counting: raw judgments become the report of ``evaluate.pairwise_report``.

Counting rules (docs/evaluate.md):

- per judge, item and run, the orders it was judged in are combined: the same winner in every
  order is that winner, anything else (the orders disagree, or a tie) is a tie;
- several judges are combined per item by majority (no majority: a tie);
- ``b_win_rate`` counts a tie as half a win, with a Wilson interval over the items;
- the headline counts are run 0's; further runs (new seeds) report their spread.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ftwizard.evaluate.judging import (
    Judge,
    JudgeOptions,
    Judgment,
    PairItem,
    ProgressHook,
    StopHook,
    run_judgments,
)
from ftwizard.evaluate.mapping import Verdict
from ftwizard.evaluate.pairwise_report import (
    Disagreement,
    ItemVerdict,
    JudgeSummary,
    KappaPair,
    PairwiseReport,
    PositionBias,
    RepeatSummary,
    WinCounts,
)
from ftwizard.evaluate.stats import cohen_kappa, mean, sample_variance

SMALL_N = 30


def _combine_orders(judgments: Sequence[Judgment]) -> Verdict | None:
    winners = [j.winner for j in judgments if j.winner is not None]
    if not winners:
        return None
    return winners[0] if len(set(winners)) == 1 else "tie"


def _majority(verdicts: Sequence[Verdict | None]) -> Verdict | None:
    votes = [v for v in verdicts if v is not None]
    if not votes:
        return None
    a, b = votes.count("a"), votes.count("b")
    return "a" if a > b else "b" if b > a else "tie"


def _judge_verdicts(
    judgments: Sequence[Judgment], item_ids: Sequence[str], judge: str, run: int
) -> dict[str, Verdict | None]:
    grouped: dict[str, list[Judgment]] = {i: [] for i in item_ids}
    for j in judgments:
        if j.judge == judge and j.run == run and j.item_id in grouped:
            grouped[j.item_id].append(j)
    return {i: _combine_orders(g) for i, g in grouped.items()}


def summarize_pairwise(
    items: Sequence[PairItem],
    judgments: Sequence[Judgment],
    *,
    judges: Sequence[str],
    options: JudgeOptions,
    model_a: str,
    model_b: str,
    failed_answers: int = 0,
) -> PairwiseReport:
    """Turn raw judgments into the report (see the module's counting rules)."""
    ids = [item.id for item in items]
    tags = {item.id: item.tag for item in items}
    per_run: list[dict[str, dict[str, Verdict | None]]] = [
        {judge: _judge_verdicts(judgments, ids, judge, run) for judge in judges}
        for run in range(options.runs)
    ]
    consensus_by_run = [
        {i: _majority([verdicts[j][i] for j in judges]) for i in ids} for verdicts in per_run
    ]
    run0 = consensus_by_run[0]
    decided0 = [v for v in run0.values() if v is not None]
    counts = WinCounts.from_verdicts(decided0)

    per_judge = {}
    for judge in judges:
        mine = [j for j in judgments if j.judge == judge]
        own = [v for v in per_run[0][judge].values() if v is not None]
        base = WinCounts.from_verdicts(own)
        per_judge[judge] = JudgeSummary(
            **base.model_dump(),
            judge=judge,
            invalid=sum(1 for j in mine if j.letter is None),
            position_bias=PositionBias.from_judgments(mine),
        )
    bias = PositionBias.from_judgments(judgments)

    kappa_pairs = []
    for first, second in itertools.combinations(judges, 2):
        both = [
            i for i in ids if per_run[0][first][i] is not None and per_run[0][second][i] is not None
        ]
        kappa_pairs.append(
            KappaPair(
                judges=(first, second),
                kappa=cohen_kappa(
                    [per_run[0][first][i] for i in both], [per_run[0][second][i] for i in both]
                ),
                n=len(both),
            )
        )
    defined = [p.kappa for p in kappa_pairs if p.kappa is not None]
    kappa = mean(defined) if defined else None

    by_tag: dict[str, WinCounts] = {}
    if any(tag is not None for tag in tags.values()):
        for tag in sorted({t or "untagged" for t in tags.values()}):
            by_tag[tag] = WinCounts.from_verdicts(
                [v for i, v in run0.items() if (tags[i] or "untagged") == tag and v is not None]
            )

    repeats = None
    if options.runs > 1:
        rates = [
            WinCounts.from_verdicts([v for v in c.values() if v is not None]).b_win_rate
            for c in consensus_by_run
        ]
        known = [r for r in rates if r is not None]
        variance = sample_variance(known) if len(known) > 1 else None
        repeats = RepeatSummary(
            b_win_rates=rates,
            mean=mean(known) if known else None,
            variance=variance,
            std=variance**0.5 if variance is not None else None,
        )

    items_out = [
        ItemVerdict(
            item_id=i,
            tag=tags[i],
            verdict=run0[i],
            by_judge={judge: per_run[0][judge][i] for judge in judges},
        )
        for i in ids
    ]
    disagreements = _disagreements(judgments, items_out, judges)
    failed = sum(1 for j in judgments if j.call_failed)
    unreadable = sum(1 for j in judgments if j.error is not None and not j.call_failed)

    warnings = []
    if counts.n < SMALL_N:
        warnings.append(
            f"only {counts.n} items were judged: the interval is wide; use {SMALL_N} or more "
            "before trusting a winner"
        )
    for name, summary in per_judge.items():
        pb = summary.position_bias
        if pb.biased and pb.first_position_rate is not None:
            warnings.append(
                f"judge {name} chose the answer shown first in "
                f"{pb.first_position_rate:.0%} of {pb.decisive} decisive judgments: "
                "it is position-biased"
                + ("" if options.both_orders else "; judge in both orders (--both-orders)")
            )
    if failed:
        warnings.append(f"{failed} judge calls failed after retries; they are not counted")
    if unreadable:
        warnings.append(f"{unreadable} judge replies had no readable verdict; they are not counted")
    if failed_answers:
        warnings.append(f"{failed_answers} items had no answer from a model and were skipped")

    decided = counts.decided
    if bias.biased:
        decided = None
        warnings.append(
            "the judgments favour the first position, so they are not evidence either way"
        )
    return PairwiseReport(
        model_a=model_a,
        model_b=model_b,
        judges=list(judges),
        seed=options.seed,
        both_orders=options.both_orders,
        runs=options.runs,
        counts=counts,
        verdict=decided or "undecided",
        position_bias=bias,
        per_judge=per_judge,
        kappa=kappa,
        kappa_pairs=kappa_pairs,
        by_tag=by_tag,
        repeats=repeats,
        items=items_out,
        disagreements=disagreements,
        failed_judgments=failed,
        failed_answers=failed_answers,
        warnings=warnings,
        judgments=list(judgments),
    )


def _disagreements(
    judgments: Sequence[Judgment], items: Sequence[ItemVerdict], judges: Sequence[str]
) -> list[Disagreement]:
    run0: dict[tuple[str, str], list[Judgment]] = {}
    for j in judgments:
        if j.run == 0:
            run0.setdefault((j.item_id, j.judge), []).append(j)
    out = []
    for item in items:
        known = {v for v in item.by_judge.values() if v is not None}
        if len(judges) > 1 and len(known) > 1:
            out.append(
                Disagreement(
                    item_id=item.item_id,
                    tag=item.tag,
                    kind="judges",
                    verdicts={j: [v] for j, v in item.by_judge.items()},
                )
            )
            continue
        for judge in judges:
            orders = sorted(run0.get((item.item_id, judge), []), key=lambda j: j.order)
            if len(orders) > 1 and len({j.winner for j in orders}) > 1:
                out.append(
                    Disagreement(
                        item_id=item.item_id,
                        tag=item.tag,
                        kind="orders",
                        verdicts={judge: [j.winner for j in orders]},
                    )
                )
    return out


async def run_pairwise(
    items: Sequence[PairItem],
    judges: Sequence[Judge],
    options: JudgeOptions | None = None,
    *,
    model_a: str = "a",
    model_b: str = "b",
    failed_answers: int = 0,
    on_progress: ProgressHook | None = None,
    should_stop: StopHook | None = None,
) -> PairwiseReport:
    """Judge ``items`` blind with every judge and summarise (see :func:`summarize_pairwise`)."""
    opts = options or JudgeOptions()
    if not judges:
        raise ValueError("at least one judge is needed")
    names = [j.name for j in judges]
    if len(set(names)) != len(names):
        raise ValueError(f"judge names must differ: {names}")
    judgments = await run_judgments(
        items, judges, opts, on_progress=on_progress, should_stop=should_stop
    )
    return summarize_pairwise(
        items,
        judgments,
        judges=names,
        options=opts,
        model_a=model_a,
        model_b=model_b,
        failed_answers=failed_answers,
    )
