"""``ftwizard train`` and ``ftwizard status``: the training step headless.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast. ``train`` starts
the session's job (after the same guards as the screen: a dry run or a recorded override, and
``--allow-spend`` for a paid backend) or re-attaches to the one it already has, prints a line
per poll and waits until the job ends. Exit codes: 0 the job succeeded (or ``status``
worked), 1 the job failed or was cancelled, 2 unusable input or a missing permission.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_JOB_FAILED = 1


def register(sub: Any) -> None:
    """Add the ``train`` and ``status`` subcommands."""
    train = sub.add_parser(
        "train",
        help="start (or re-attach to) a session's training job and follow it to the end",
        description="Train a configured session headless: start its job, or re-attach to the "
        "job it already has (never a second one), print progress and wait until it ends. "
        "Exit 0 when it succeeded, 1 when it failed or was cancelled, 2 on unusable input.",
    )
    train.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    train.add_argument(
        "--allow-spend",
        action="store_true",
        help="allow creating a paid job on OpenAI or Vertex (never implied)",
    )
    train.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between polls"
    )
    train.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    train.set_defaults(handler=run_train)

    status = sub.add_parser("status", help="print a session's training job state and metrics")
    status.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=run_status)


def _fail(command: str, exc: Exception) -> int:
    from ftwizard.credentials import redact

    print(f"ftwizard {command}: {redact(str(exc))}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))


def _line(update: Any) -> str:
    status = update.status
    parts = [f"{status.state.value:9}"]
    if update.metrics:
        point = update.metrics[-1]
        total = f"/{point.total_steps}" if point.total_steps else ""
        parts.append(f"step {point.step}{total}")
        for name in ("train_loss", "valid_loss", "train_reward", "valid_reward"):
            value = getattr(point, name)
            if value is not None:
                parts.append(f"{name} {value:.4f}")
    for event in update.events[-3:]:
        if event.metrics is None:
            parts.append(event.message)
    return "  ".join(parts)


def run_train(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard train``."""
    import asyncio

    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            return asyncio.run(_train(session, store, args))
    except FtwizardError as exc:
        return _fail("train", exc)


async def _train(session: Any, store: Any, args: argparse.Namespace) -> int:
    from ftwizard.flow import ORDER
    from ftwizard.session import Backend, StepId
    from ftwizard.training import follow as training_follow
    from ftwizard.training import jobs as training_jobs
    from ftwizard.training import plan as training_plan
    from ftwizard.training import results as training_results

    def notice(text: str) -> None:
        print(f"note: {text}", file=sys.stderr)

    training_jobs.preflight_job(session, field="backend")
    provider = training_jobs.training_provider(session, store, on_notice=notice)
    try:
        if session.training.confirmed_at is None and session.training.intent is None:
            # The command line is the confirmation for a local job; a paid one also needs
            # --allow-spend, which prepare_attempt checks.
            if session.task.backend is not Backend.local and not args.allow_spend:
                raise training_plan.SpendNotAllowed(
                    f"training on {session.task.backend} costs money: pass --allow-spend"
                )
            quote = await training_jobs.quote_training(session, store, provider)
            if quote is not None:
                notice(quote.summary)
                if not quote.allowed:
                    raise training_plan.TrainingBlocked(quote.summary, field="estimate")
            training_plan.confirm_training(session, store)
        job_id, reattached = await training_jobs.start_or_attach(
            session, store, allow_spend=args.allow_spend, provider=provider
        )
        if ORDER.index(session.step) < ORDER.index(StepId.training):
            session.step = StepId.training
            store.save(session)
        if args.json:
            print(json.dumps({"event": "job", "job_id": job_id, "reattached": reattached}))
        else:
            print(f"{'re-attached to' if reattached else 'started'} job {job_id}")

        def on_update(update: Any) -> None:
            if args.json:
                print(
                    json.dumps(
                        {
                            "event": "poll",
                            "state": update.status.state.value,
                            "metrics": [m.model_dump(mode="json") for m in update.metrics],
                            "events": [e.message for e in update.events],
                        }
                    ),
                    flush=True,
                )
            else:
                print(_line(update), flush=True)

        def on_error(exc: Exception) -> None:
            print(f"poll failed, retrying: {exc}", file=sys.stderr)

        status = await training_follow.follow(
            session,
            store,
            provider,
            interval_s=args.interval,
            on_update=on_update,
            on_error=on_error,
        )
    finally:
        await training_jobs.close_training_provider(provider)
    summary = training_results.training_summary(session)
    if args.json:
        print(json.dumps({"event": "end", **summary}, default=str))
    else:
        print(f"job {status.state.value}: model {summary['fine_tuned_model'] or '-'}")
        if status.error:
            print(status.error)
        print(training_plan.LESSON)
    return EXIT_OK if status.state.value == "succeeded" else EXIT_JOB_FAILED


def run_status(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard status``: refresh from the provider when a job runs."""
    import asyncio

    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            summary = asyncio.run(_status(session, store))
    except FtwizardError as exc:
        return _fail("status", exc)
    if args.json:
        print(json.dumps(summary, default=str))
        return EXIT_OK
    for key, value in summary.items():
        if key == "latest":
            value = ", ".join(f"{k} {v:.4f}" for k, v in value.items()) or None
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value) or None
        print(f"{key:18} {value if value is not None else '-'}")
    return EXIT_OK


async def _status(session: Any, store: Any) -> dict[str, Any]:
    from ftwizard.providers.base import ProviderError
    from ftwizard.training import follow as training_follow
    from ftwizard.training import jobs as training_jobs
    from ftwizard.training import results as training_results

    summary_note = None
    if session.training.intent is not None and session.training.status not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        provider = training_jobs.training_provider(session, store)
        try:
            job_id = await training_jobs.find_existing_job(provider, session)
            if job_id is not None:
                if session.training.intent.job_id is None:
                    training_jobs.record_job(session, job_id)
                await training_follow.poll(session, store, provider)
        except ProviderError as exc:
            summary_note = f"could not refresh: {exc}"
        finally:
            await training_jobs.close_training_provider(provider)
    summary = training_results.training_summary(session)
    if summary_note:
        summary["note"] = summary_note
    return summary


__all__ = ["register", "run_status", "run_train"]
