"""``ftwizard checkpoints ID``: every checkpoint of a run, scored with the session's grader.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast.
Exit codes: 0 listed (and scored), 1 a checkpoint could not be scored, 2 unusable input or a
paid run without ``--allow-spend``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``checkpoints`` subcommand."""
    parser = sub.add_parser(
        "checkpoints",
        help="list a run's checkpoints; --eval scores each with the session's grader",
        description="List the checkpoints of a session's training run with their grader "
        "scores. --eval answers the evaluate step's held-out rows with every checkpoint and "
        "grades them with the session's grader (the same rows and grader as the evaluate "
        "step); a checkpoint already scored with the same grader, rows and weights is not "
        "scored again, so an interrupted run resumes. --choose-best then makes the best "
        "checkpoint (grader score; ties to the earlier step) the model to deploy. Exit 0 "
        "done, 1 a checkpoint could not be scored, 2 unusable input.",
    )
    parser.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    parser.add_argument("--eval", action="store_true", help="score the checkpoints not scored")
    parser.add_argument(
        "--rows", type=int, default=None, metavar="N", help="score on the first N held-out rows"
    )
    parser.add_argument(
        "--allow-spend", action="store_true", help="allow paid calls (hosted checkpoints)"
    )
    parser.add_argument(
        "--choose-best", action="store_true", help="make the best checkpoint the one to deploy"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"checkpoints": [{"id","step","epoch","path"|"model","sha256","score",'
        '"ci95","n"}], "best": {...}, "chosen": {...}}',
    )
    parser.set_defaults(handler=run_checkpoints)


def run_checkpoints(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard checkpoints``; returns the exit code."""
    import asyncio

    from ftwizard.credentials import redact
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            failed = asyncio.run(_run(session, store, args)) if args.eval else 0
            if args.choose_best:
                from ftwizard.training.choice import choose_best

                best = choose_best(session)
                store.save(session)
                print(f"chose {best.checkpoint.id} by {best.by}", file=sys.stderr)
            from ftwizard.evaluate.checkpoints import checkpoints_json

            data = checkpoints_json(session)
            advice = _advice(session)
    except FtwizardError as exc:
        print(f"ftwizard checkpoints: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(redact(json.dumps(data)))
    else:
        print(redact(_human(data, advice)))
    return 1 if failed else 0


def _advice(session: Any) -> list[str]:
    from ftwizard.training.choice import choice_note, training_advice

    note = choice_note(session)
    return [*([note] if note else []), *training_advice(session)]


async def _run(session: Any, store: Any, args: argparse.Namespace) -> int:
    from ftwizard.errors import InputError
    from ftwizard.evaluate.checkpoints import plan_scoring, score_checkpoints

    plan = plan_scoring(session, rows=args.rows)
    estimate = plan.estimate
    if estimate.paid:
        text = (
            f"scoring the checkpoints makes about {estimate.calls} calls to "
            f"{', '.join(estimate.paid)} and costs {estimate.describe()}"
        )
        if not args.allow_spend:
            raise InputError(f"{text}: pass --allow-spend", field="--allow-spend")
        print(f"note: {text}", file=sys.stderr)

    def progress(score: Any, index: int, total: int) -> None:
        figure = "-" if score.score is None else f"{score.score:.3f}"
        print(f"[{index}/{total}] {score.id}: {figure}", file=sys.stderr)

    section = await score_checkpoints(session, store, plan, on_progress=progress)
    callable_ids = {c.info.id for c in plan.todo}
    return sum(1 for s in section.scores if s.id in callable_ids and s.score is None)


def _human(data: dict[str, Any], advice: list[str]) -> str:
    rows = data["checkpoints"]
    if not rows:
        return "No checkpoints yet."
    best = (data.get("best") or {}).get("id")
    chosen = (data.get("chosen") or {}).get("id")
    header = ("ID", "STEP", "EPOCH", "SCORE", "95% CI", "N", "WEIGHTS", "")
    table = [header]
    for row in rows:
        ci = row.get("ci95")
        marks = [
            m for m, on in (("best", row["id"] == best), ("chosen", row["id"] == chosen)) if on
        ]
        weights = row.get("sha256")
        table.append(
            (
                row["id"],
                "-" if row["step"] is None else str(row["step"]),
                "-" if row["epoch"] is None else f"{row['epoch']:.2f}",
                "-" if row["score"] is None else f"{row['score']:.3f}",
                f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-",
                str(row["n"]),
                weights[:12] if weights else (row.get("model") or "-"),
                ", ".join(marks),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    if data.get("best"):
        lines.append(f"best: {best} by {data['best']['by']}")
    if data.get("chosen"):
        lines.append(f"in use: {chosen} ({data['chosen']['by']})")
    lines.extend(f"error: {r['id']}: {r['error']}" for r in rows if r.get("error"))
    lines.extend(advice)
    return "\n".join(lines)


__all__ = ["register", "run_checkpoints"]
