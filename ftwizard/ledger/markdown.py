"""The run ledger as the Markdown changelog practitioners keep by hand, newest run first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftwizard.ledger.store import EvaluationInfo, RunEntry


def _money(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"


def _file(path: str | None) -> str:
    return f"`{Path(path).name}`" if path else "-"


def _number(value: float | int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:g}"
    return f"{int(value):,}"


def _hyper(hyperparameters: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(hyperparameters.items())) or "defaults"


def _evaluation_lines(ev: EvaluationInfo) -> list[str]:
    lines: list[str] = []
    if ev.tuned_mean is not None and ev.base_mean is not None:
        flips = ""
        if ev.fail_to_pass is not None and ev.pass_to_fail is not None:
            flips = f"; {ev.fail_to_pass} fail→pass, {ev.pass_to_fail} pass→fail"
        lines.append(
            f"  - Grader: base {ev.base_mean:.3f} → tuned {ev.tuned_mean:.3f} over "
            f"{_number(ev.grader_n)} held-out rows{flips}"
        )
    if ev.tuned_win_rate is not None:
        ci = ""
        if ev.tuned_win_ci95 is not None:
            lo, hi = ev.tuned_win_ci95
            ci = f" (95% CI {lo:.1%} - {hi:.1%})"
        extras = []
        if ev.kappa is not None:
            extras.append(f"kappa {ev.kappa:.2f}")
        if ev.first_position_rate is not None:
            extras.append(f"first-position rate {ev.first_position_rate:.0%}")
        extra = f"; {', '.join(extras)}" if extras else ""
        judges = ", ".join(f"`{j}`" for j in ev.judges) or "-"
        lines.append(
            f"  - Blind A/B: tuned win rate {ev.tuned_win_rate:.1%}{ci} over {_number(ev.n)} "
            f"items, verdict **{ev.ab_verdict or 'undecided'}**; judges {judges}{extra}"
        )
        if ev.n is not None and ev.n < 30:
            lines.append("  - Fewer than 30 items: the interval is wide.")
    return lines


def trained_tokens_text(run: RunEntry) -> str:
    """The trained-token figure with what it counts, so it can be checked against the data.

    It is the trainer's or the provider's own count: every token of every training example
    (prompt and answer, with the chat template's tokens) in every epoch, counted with the
    model's tokenizer. The dataset step's figure is one pass over the data with the cookbook's
    per-message overhead, so the two differ by the tokenizer and template, not only by epochs.
    """
    if run.trained_tokens is None:
        return "trained tokens not reported"
    text = f"{_number(run.trained_tokens)} trained tokens"
    if run.epochs:
        per_epoch = round(run.trained_tokens / run.epochs)
        text += f" ({_number(per_epoch)} per epoch x {_number(run.epochs)} epochs"
        if run.dataset_tokens is not None:
            text += f"; the dataset step counted {_number(run.dataset_tokens)} per pass"
        text += ")"
    return text


def run_markdown(run: RunEntry) -> str:
    """One run's section of the changelog."""
    title = f"## {run.date:%Y-%m-%d} — {run.session_name} (`{run.session_id}`)"
    model = run.model_id or run.deployed_model or "not produced yet"
    out = [
        title,
        "",
        f"- **Model**: `{model}` — {run.method or '?'} on {run.backend or '?'} from "
        f"`{run.base_model or '?'}`"
        + (f"; status {run.status}" if run.status else "")
        + (f"; job `{run.job_id}`" if run.job_id else ""),
    ]
    if run.deployed_model or run.endpoint:
        serving = f"`{run.deployed_model}`" if run.deployed_model else ""
        where = f" at {run.endpoint}" if run.endpoint else ""
        weights = run.deployed_identity
        digest = f"; weights sha256 `{weights.sha256[:12]}`" if weights and weights.sha256 else ""
        chosen = f"; checkpoint chosen by {run.chosen_by}" if run.chosen_by else ""
        out.append(f"- **Serving**: {serving}{where}{digest}{chosen}")
    data = f"- **Data**: {_file(run.training_file)}"
    if run.examples is not None:
        data += f", {_number(run.examples)} examples"
        if run.valid_examples is not None and run.valid_examples != run.examples:
            data += f" ({_number(run.valid_examples)} valid)"
    if run.dataset_format:
        data += f", {run.dataset_format}"
    if run.validation_file:
        data += f"; validation {_file(run.validation_file)}"
    if run.dataset_tokens is not None:
        data += f"; {_number(run.dataset_tokens)} tokens"
    out.append(data)
    if run.teacher is not None:
        t = run.teacher
        accuracy = f" ({t.accuracy_text})" if t.accuracy_text else ""
        kept = f", {t.kept} kept" if t.kept is not None else ""
        out.append(f"- **Teacher**: `{t.model}`{accuracy}{kept}")
    epochs = (
        f"{_number(run.epochs)} epochs"
        if run.epochs is not None
        else "epochs chosen by the provider"
    )
    out.append(
        f"- **Training**: {epochs}; {_hyper(run.hyperparameters)}; {trained_tokens_text(run)}"
    )
    costs = [
        f"training {_money(run.training_cost_usd)}"
        + (" (estimate)" if run.training_cost_estimated else "")
    ]
    if run.dryrun_cost_usd is not None:
        costs.append(f"dry run {_money(run.dryrun_cost_usd)}")
    if run.teacher is not None and run.teacher.cost_usd is not None:
        costs.append(f"teacher {_money(run.teacher.cost_usd)}")
    out.append(f"- **Cost**: {', '.join(costs)}")
    if run.dryrun_verdict:
        mean = f", mean {run.dryrun_mean:.3f}" if run.dryrun_mean is not None else ""
        n = f" on {run.dryrun_n} graded answers" if run.dryrun_n is not None else ""
        out.append(f"- **Dry run**: {run.dryrun_verdict}{mean}{n}")
    else:
        out.append("- **Dry run**: none recorded")
    if run.evaluation is not None:
        out.append("- **Evaluation**:")
        out.extend(_evaluation_lines(run.evaluation))
    else:
        out.append("- **Evaluation**: not yet")
    if run.notes:
        out.append("- **Notes**:")
        out.extend(f"  - {note}" for note in run.notes)
    return "\n".join(out)


def ledger_markdown(runs: Sequence[RunEntry]) -> str:
    """The whole changelog."""
    header = "# Fine-tuning runs\n"
    if not runs:
        return header + "\nNo training runs recorded yet.\n"
    return header + "\n" + "\n\n".join(run_markdown(r) for r in runs) + "\n"
