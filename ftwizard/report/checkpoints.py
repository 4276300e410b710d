"""The report's checkpoint scores (a table and a score-by-step plot) and the weights each step
used, with a flag for every file that changed since it was evaluated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ftwizard.session import ModelIdentity, Session


class Plotter(Protocol):
    """What the report's plotter offers (``ftwizard.report.build._Plotter``)."""

    def draw(
        self, name: str, title: str, plot: Callable[[Path], Path] | None, missing: str
    ) -> Any: ...

    @staticmethod
    def markdown(info: Any) -> str: ...


def _weights(identity: ModelIdentity | None) -> str:
    if identity is None:
        return "-"
    if identity.sha256:
        return f"`{identity.sha256[:12]}`"
    return f"`{identity.model}`" if identity.model else "-"


def checkpoint_section(session: Session, plotter: Plotter) -> list[str]:
    """Markdown lines: every checkpoint's grader score, the evidence the choice was made by,
    the advice on the length of training, and the score-by-checkpoint plot."""
    from ftwizard.report.plots import curves_png
    from ftwizard.training.choice import best_choice, choice_note, scored, training_advice

    section = session.training.checkpoint_eval
    out = ["### Checkpoints scored with the grader", ""]
    if section is None or not section.scores:
        out.append("No checkpoint was scored (`ftwizard checkpoints ID --eval`).")
    else:
        out += [
            f"Grader `{section.grader_digest}` on the first {section.rows} rows of "
            f"`{section.held_out_file}`.",
            "",
            "| checkpoint | step | score | 95 % CI | n | weights |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s in section.scores:
            score = "-" if s.score is None else f"{s.score:.3f}"
            ci = f"{s.ci95[0]:.2f}-{s.ci95[1]:.2f}" if s.ci95 else "-"
            out.append(
                f"| {s.id} | {s.step if s.step is not None else '-'} | {score} | {ci} | {s.n} | "
                f"{_weights(s.identity)} |"
            )
    best = best_choice(session)
    if best is not None:
        out += ["", f"Best checkpoint: **{best.checkpoint.id}** by {best.by} ({best.value:.4g})."]
    if session.training.chosen_checkpoint:
        how = session.training.chosen_by or "hand"
        out.append(f"Chosen: `{session.training.chosen_checkpoint}` (by {how}).")
    note = choice_note(session)
    if note:
        out.append(f"\n**{note}**")
    out += [f"\n{line}" for line in training_advice(session)]
    points = [(s.step or 0, float(s.score or 0.0)) for s in scored(session)]
    info = plotter.draw(
        "checkpoint-scores",
        "Grader score by checkpoint",
        (
            lambda path: curves_png(
                {"grader score": points}, path, title="Grader score by checkpoint", ylabel="score"
            )
        )
        if points
        else None,
        "no checkpoint has been scored with the grader",
    )
    out += ["", plotter.markdown(info)]
    return out


def identity_lines(session: Session) -> list[str]:
    """Markdown lines: the weights deployed and evaluated, and every change since."""
    from ftwizard.identity import identity_flags

    ev = session.evaluation
    rows = [
        ("deployed", session.deployment.identity),
        ("grader comparison", ev.grader_identity),
        ("blind A/B", ev.ab_identity),
    ]
    shown = [(label, identity) for label, identity in rows if identity is not None]
    if not shown:
        return []
    out = ["### Weights", "", "| what | weights | file |", "| --- | --- | --- |"]
    for label, identity in shown:
        assert identity is not None
        where = identity.path or identity.model or "-"
        if identity.merged_sha256:
            where += f" (merged `{identity.merged_sha256[:12]}`)"
        out.append(f"| {label} | {_weights(identity)} | {where} |")
    flags = identity_flags(session)
    out += [""] + [f"- **CHANGED**: {flag}" for flag in flags]
    matched = _evaluated_checkpoint(session)
    if matched:
        out.append(matched)
    return out


def _evaluated_checkpoint(session: Session) -> str | None:
    """Which scored checkpoint the grader comparison evaluated, with both figures."""
    from ftwizard.identity import same_weights

    ev = session.evaluation
    section = session.training.checkpoint_eval
    if ev.grader_identity is None or section is None:
        return None
    for score in section.scores:
        if score.score is not None and same_weights(score.identity, ev.grader_identity):
            return (
                f"The grader comparison evaluated {score.id} (grader score {score.score:.3f} "
                f"on {score.n} rows; tuned mean {ev.tuned_mean:.3f} on {ev.grader_n} rows)."
                if ev.tuned_mean is not None
                else f"The grader comparison evaluated {score.id}."
            )
    return None


__all__ = ["checkpoint_section", "identity_lines"]
