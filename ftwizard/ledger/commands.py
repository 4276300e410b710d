"""``ftwizard ledger`` (the run changelog) and ``ftwizard report ID`` (a session's report).

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast.
Exit codes: 0 done, 2 unusable input (unknown session, unreadable ledger line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``ledger`` and ``report`` subcommands to the CLI's subparsers."""
    ledger = sub.add_parser(
        "ledger",
        help="print the run ledger as a Markdown changelog",
        description="Every training run, newest first: date, backend, base model, teacher, "
        "data, tokens, epochs, hyperparameters, model id, costs, dry-run verdict, evaluation "
        "and notes. The ledger (ledger.jsonl in the ftwizard home) is first brought up to date "
        "from the saved sessions.",
    )
    ledger.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    ledger.add_argument(
        "--rebuild",
        action="store_true",
        help="rewrite the ledger from the sessions that exist now (drops runs of deleted "
        "sessions; keeps notes)",
    )
    ledger.add_argument(
        "--no-sync", action="store_true", help="print the ledger as recorded, without syncing"
    )
    ledger.add_argument("--session", metavar="ID", help="only this session's runs")
    ledger.add_argument(
        "--note", metavar="TEXT", help="add a note to the run of --session, then print"
    )
    ledger.add_argument("-o", "--output", metavar="FILE", help="write the Markdown to FILE")
    ledger.set_defaults(handler=run_ledger)

    report = sub.add_parser(
        "report",
        help="write a session's Markdown and HTML report with PNG plots",
        description="Writes report.md, report.html and PNG plots (dry-run histogram, loss and "
        "reward curves, grader means, A/B win rates) into the session's report/ folder. Plots "
        "whose data the session lacks are listed as not drawn, with the reason.",
    )
    report.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    report.add_argument(
        "--json", action="store_true", help='print {"markdown","html","plots","absent"}'
    )
    report.set_defaults(handler=run_report)


def run_ledger(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard ledger``."""
    from pathlib import Path

    from ftwizard.errors import InputError
    from ftwizard.files import atomic_write_text
    from ftwizard.ledger import store as ledger
    from ftwizard.ledger.markdown import ledger_markdown
    from ftwizard.store import SessionStore

    store = SessionStore()
    if args.note is not None and not args.session:
        raise InputError("--note needs --session ID (the run to note)", field="--note")
    session_id = store.resolve(args.session) if args.session else None
    if session_id is not None:
        store.load(session_id)  # an unknown id fails here, before anything is written
    if args.rebuild:
        runs = ledger.rebuild(store)
    elif args.no_sync:
        runs = ledger.current_runs(ledger.read_lines(store))
    else:
        runs = ledger.sync(store)
    if args.note is not None and session_id is not None:
        ledger.add_note(store, session_id, args.note)
        runs = ledger.current_runs(ledger.read_lines(store))
    if session_id is not None:
        runs = [r for r in runs if r.session_id == session_id]
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
        return 0
    text = ledger_markdown(runs)
    if args.output:
        atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output} ({len(runs)} runs)", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard report ID``."""
    from ftwizard.report.build import write_report
    from ftwizard.store import SessionStore

    files = write_report(SessionStore(), args.session_id)
    if args.json:
        print(json.dumps(files.to_cli_json(), indent=2))
        return 0
    print(f"wrote {files.markdown}")
    print(f"wrote {files.html}")
    for plot in files.plots:
        if plot.file:
            print(f"plot  {plot.file}")
        else:
            print(f"not drawn: {plot.title} ({plot.absent_reason})")
    return 0
