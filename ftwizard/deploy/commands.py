"""``ftwizard deploy``: the deploy step headless.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast. ``deploy``
deploys the session's tuned model (for the local backend: exports, merges and starts the
OpenAI-compatible server, which keeps running after the command) and calls it once with a
test prompt. Exit codes: 0 it deployed and answered, 2 unusable input or a failed call.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0


def register(sub: Any) -> None:
    """Add the ``deploy`` subcommand."""
    deploy = sub.add_parser(
        "deploy", help="deploy a session's tuned model and call it once to prove it answers"
    )
    deploy.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    deploy.add_argument("--prompt", metavar="TEXT", help="the test prompt (default: a sample)")
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    deploy.set_defaults(handler=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard deploy``."""
    import asyncio

    from ftwizard.credentials import redact
    from ftwizard.deploy import engine as deploy
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            deploy.deploy(session, store)
            store.save(session)
            prompt = args.prompt or deploy.sample_prompt(session)
            reply = asyncio.run(deploy.try_model(session, prompt))
            store.save(session)
    except FtwizardError as exc:
        print(f"ftwizard deploy: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    result = session.deployment.model_dump(mode="json")
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("model", "base_url", "endpoint", "test_prompt"):
            print(f"{key:12} {result.get(key) or '-'}")
        print(f"{'test_reply':12} {reply}")
        if session.deployment.identity is not None:
            print(f"{'weights':12} {session.deployment.identity.label()}")
        from ftwizard.training.choice import choice_note

        note = choice_note(session)
        if note:
            print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


__all__ = ["register", "run_deploy"]
