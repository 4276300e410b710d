"""``ftwizard import openai-job`` and ``ftwizard import openai-jobs --list``: the way off OpenAI.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast. Errors are
:class:`~ftwizard.errors.FtwizardError`, printed by ``cli.main`` with exit code 2 (1 for a
provider failure that is not the input's fault).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

TARGETS = ("fireworks", "together", "vertex", "local")


def register(sub: Any) -> None:
    """Add ``import`` with its ``openai-job`` and ``openai-jobs`` subcommands."""
    parent = sub.add_parser(
        "import",
        help="bring a fine-tune from another service into a new session",
        description="Rebuild an OpenAI fine-tune as an ftwizard session that trains elsewhere "
        "(OpenAI accepts no new fine-tuning jobs from 2027-01-06; its tunable bases and their "
        "fine-tunes shut down on 2027-01-14).",
    )
    kinds = parent.add_subparsers(title="what to import", metavar="KIND", required=True)
    job = kinds.add_parser(
        "openai-job",
        help="one OpenAI fine-tuning job: its files, grader and the old model to compare with",
    )
    job.add_argument("job_id", metavar="JOB_ID", help="the OpenAI job id (ftjob-...)")
    job.add_argument("--base-url", metavar="URL", help="OpenAI API base URL (default: OpenAI's)")
    job.add_argument(
        "--backend",
        choices=TARGETS,
        default="fireworks",
        help="where the new session trains (default: fireworks, the one with hosted RFT)",
    )
    job.add_argument(
        "--base-model",
        metavar="NAME",
        help="the new base model (default: the backend's first tunable model for the job's method)",
    )
    job.add_argument("--name", metavar="NAME", help="the new session's name")
    job.add_argument("--json", action="store_true", help="print one JSON object")
    job.set_defaults(handler=run_import_job)
    jobs = kinds.add_parser(
        "openai-jobs", help="list the organisation's OpenAI fine-tuning jobs and shutdown dates"
    )
    jobs.add_argument("--list", action="store_true", required=True, help="list the jobs")
    jobs.add_argument("--base-url", metavar="URL", help="OpenAI API base URL (default: OpenAI's)")
    jobs.add_argument("--json", action="store_true", help="print a JSON list")
    jobs.set_defaults(handler=run_list_jobs)


def _print_json(data: object) -> None:
    from ftwizard.credentials import redact

    print(redact(json.dumps(data, indent=2, default=str)))


def run_import_job(args: argparse.Namespace) -> int:
    """Import one OpenAI job into a new session and say what was made."""
    import asyncio

    from ftwizard.migrate.openai_import import import_openai_job
    from ftwizard.session import Backend
    from ftwizard.store import SessionStore

    result = asyncio.run(
        import_openai_job(
            SessionStore(),
            args.job_id,
            backend=Backend(args.backend),
            base_model=args.base_model,
            base_url=args.base_url,
            name=args.name,
        )
    )
    if args.json:
        _print_json(result.model_dump(mode="json"))
        return 0
    print(f"Imported {result.job} ({result.method}) as session {result.session}")
    print(f"  backend      {result.backend}, base model {result.base_model or '(choose one)'}")
    print(f"  training     {result.training_file}")
    if result.validation_file:
        print(f"  validation   {result.validation_file}")
    if result.grader_file:
        print(f"  grader       {result.grader_file}")
    if result.compare_model:
        until = f" (served until {result.old_base_shutdown})" if result.old_base_shutdown else ""
        print(f"  compare with {result.compare_model}{until}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"Next: ftwizard resume {result.session}")
    return 0


def run_list_jobs(args: argparse.Namespace) -> int:
    """List the organisation's jobs with their base model's shutdown date."""
    import asyncio

    from ftwizard.migrate.listing import list_jobs

    rows = asyncio.run(list_jobs(base_url=args.base_url))
    if args.json:
        _print_json([r.model_dump(mode="json") for r in rows])
        return 0
    if not rows:
        print("No fine-tuning jobs in this organisation.")
        return 0
    print(f"{'JOB':28} {'METHOD':6} {'STATUS':10} {'BASE':28} {'SHUTDOWN':10} FINE-TUNED MODEL")
    for r in rows:
        print(
            f"{r.job:28} {r.method:6} {r.status:10} {r.base_model:28} "
            f"{r.shutdown or 'unknown':10} {r.fine_tuned_model or '-'}"
        )
    print(
        "OpenAI accepts no new fine-tuning jobs from 2027-01-06. Move one with "
        "`ftwizard import openai-job JOB_ID --backend fireworks`."
    )
    return 0


__all__ = ["register", "run_import_job", "run_list_jobs"]
