"""The evaluation's saved reports, read back and put into words for the screen and the report.

Textual-free, so ``ftwizard report`` and the evaluate screen say the same thing the same way.
"""

from __future__ import annotations

from pathlib import Path

from ftwizard.evaluate.ab import GraderComparison, PairwiseReport
from ftwizard.session import Session


def load_grader_report(session: Session) -> GraderComparison | None:
    """The saved grader comparison, when there is one and it still reads."""
    path = session.evaluation.grader_report_file
    if not path or not Path(path).is_file():
        return None
    try:
        return GraderComparison.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except ValueError:
        return None


def load_pairwise_report(session: Session) -> PairwiseReport | None:
    """The saved A/B report, when there is one and it still reads."""
    path = session.evaluation.ab_report_file
    if not path or not Path(path).is_file():
        return None
    try:
        return PairwiseReport.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except ValueError:
        return None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def grader_summary(comparison: GraderComparison) -> str:
    """The grader comparison in a few lines."""
    lo_b, hi_b = comparison.base_ci95
    lo_t, hi_t = comparison.tuned_ci95
    lo_d, hi_d = comparison.diff_ci95
    better = (
        "the tuned model scores higher"
        if comparison.tuned_better
        else "the tuned model scores lower"
        if comparison.n > 1 and hi_d < 0
        else "no clear difference"
    )
    lines = [
        f"Grader over {comparison.n} held-out rows (pass = score >= {comparison.threshold:g}):",
        f"  base  {comparison.base_mean:.3f} (95% CI {lo_b:.3f} - {hi_b:.3f}), "
        f"{comparison.base_pass} pass",
        f"  tuned {comparison.tuned_mean:.3f} (95% CI {lo_t:.3f} - {hi_t:.3f}), "
        f"{comparison.tuned_pass} pass",
        f"  difference {comparison.diff_mean:+.3f} (95% CI {lo_d:+.3f} - {hi_d:+.3f}): {better}",
        f"  flips: {comparison.fail_to_pass} fail -> pass, {comparison.pass_to_fail} pass -> fail",
    ]
    lines.extend(f"warning: {w}" for w in comparison.warnings)
    return "\n".join(lines)


def nothing_judged(report: PairwiseReport) -> str | None:
    """Why the A/B judged no item, or ``None`` when at least one item was judged.

    With nothing judged there is no win rate, no verdict and no agreement to report: the
    reason is all there is to say (the same words on the screen, in the CLI and the report).
    """
    if report.counts.n > 0:
        return None
    items = len(report.items)
    errors = [j.error for j in report.judgments if j.error]
    if report.failed_answers and report.failed_answers >= items:
        why = f"no item has answers from both models ({report.failed_answers} answer(s) failed)"
    elif errors:
        why = f"all {len(errors)} judgment(s) failed; the first: {errors[0]}"
    elif not items:
        why = "the held-out file has no items"
    else:
        why = "no judge gave a valid verdict on any item"
    return f"No item was judged: {why}. Nothing is claimed about which model is better."


def disagreement_label(report: PairwiseReport | None) -> str:
    """The heading of the judge-disagreements table: never claims agreement not measured."""
    if report is None or report.disagreements:
        return "Judge disagreements"
    if report.counts.n == 0:
        return "Judge disagreements: not measured (no item was judged)"
    if len(report.judges) < 2 and not report.both_orders and report.runs < 2:
        return "Judge disagreements: not measured (one judge, one order)"
    orders = ", in both orders," if report.both_orders else ""
    return f"Judge disagreements: none (every judge agreed{orders} on the {report.counts.n} items)"


def pairwise_summary(report: PairwiseReport) -> str:
    """The A/B result in a few lines: counts, win rate, verdict, bias, agreement, warnings."""
    nothing = nothing_judged(report)
    if nothing is not None:
        return "\n".join([nothing, *(f"warning: {w}" for w in report.warnings)])
    c = report.counts
    lo, hi = c.ci95
    verdict = {
        "b": "the tuned model is better",
        "a": "the base model is better",
    }.get(report.verdict, "undecided")
    bias = report.position_bias
    orders = "both orders" if report.both_orders else "one random order per item"
    lines = [
        f"Blind A/B over {c.n} items, {len(report.judges)} judge(s), {orders}:",
        f"  tuned wins {c.b_wins}, ties {c.ties}, base wins {c.a_wins}",
        f"  tuned win rate {_pct(c.b_win_rate)} (95% Wilson CI {lo:.1%} - {hi:.1%}): {verdict}",
        f"  position bias: the answer shown first won {_pct(bias.first_position_rate)} of "
        f"{bias.decisive} decisive judgments" + (" - BIASED" if bias.biased else ""),
        "  Cohen's kappa between judges: "
        + ("n/a (one judge)" if len(report.judges) < 2 else _kappa(report.kappa)),
    ]
    for name, judge in report.per_judge.items():
        flag = " BIASED" if judge.position_bias.biased else ""
        lines.append(
            f"  {name}: {judge.b_wins}/{judge.ties}/{judge.a_wins} (tuned/tie/base), "
            f"win rate {_pct(judge.b_win_rate)}, first shown "
            f"{_pct(judge.position_bias.first_position_rate)}{flag}, invalid {judge.invalid}"
        )
    for tag, counts in report.by_tag.items():
        lines.append(f"  {tag}: tuned win rate {_pct(counts.b_win_rate)} over {counts.n} items")
    repeats = report.repeats
    if repeats is not None and repeats.std is not None:
        lines.append(
            f"  over {report.runs} runs (seeds {report.seed} - {report.seed + report.runs - 1}): "
            f"mean win rate {_pct(repeats.mean)}, std {repeats.std:.3f}"
        )
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)


def _kappa(value: float | None) -> str:
    return (
        "undefined (the judges used one label for everything)" if value is None else f"{value:.2f}"
    )


def side_name(verdict: str | None) -> str:
    """The model a verdict names: ``base`` (model A), ``tuned`` (model B) or ``tie``."""
    return {"a": "base", "b": "tuned", "tie": "tie"}.get(verdict or "", "no verdict")


def disagreement_detail(report: PairwiseReport, item_id: str) -> str:
    """Every run-0 judgment of one item: who won in the judge's eyes, and why."""
    lines = [f"Item {item_id}:"]
    for j in report.judgments:
        if j.item_id != item_id or j.run != 0:
            continue
        position = ""
        if j.chose_first is not None:
            position = " (the answer shown first)" if j.chose_first else " (shown second)"
        outcome = j.error or f"{side_name(j.winner)}{position}: {j.reason}"
        lines.append(f"  {j.judge}, order {j.order + 1}: {outcome}")
    return "\n".join(lines)
