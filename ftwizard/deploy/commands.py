"""``ftwizard deploy``: the deploy step headless.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast. ``deploy``
deploys the session's tuned model (for the local backend: exports, merges and starts the
OpenAI-compatible server, which keeps running after the command) and calls it once with a
test prompt, printing the exact request it sent. ``deploy ID --stop`` stops the session's local
server. Exit codes: 0 it deployed and answered (or the server is stopped), 2 unusable input or a
failed call.
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
    deploy.add_argument(
        "--system",
        metavar="TEXT",
        help="the system prompt sent before the test prompt (default: the training data's; "
        "'' sends none)",
    )
    deploy.add_argument(
        "--stop", action="store_true", help="stop the session's local server instead, and exit"
    )
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    deploy.set_defaults(handler=run_deploy)


def run_stop(session_id: str, *, as_json: bool) -> int:
    """``ftwizard deploy ID --stop``: stop the session's local server (nothing to do is fine)."""
    from ftwizard.credentials import redact
    from ftwizard.deploy import engine as deploy
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        resolved = store.resolve(session_id)
        session = store.load(resolved)
    except FtwizardError as exc:
        print(f"ftwizard deploy: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    running = deploy.local_server_alive(session)
    if running:
        deploy.stop_local_server(session)
    url = session.deployment.base_url
    if as_json:
        print(json.dumps({"session": resolved, "stopped": running, "base_url": url}))
    elif running:
        print(f"stopped the local server of session {resolved} ({url})")
    else:
        print(f"no local server is running for session {resolved}")
    return EXIT_OK


def run_deploy(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard deploy``."""
    import asyncio

    from ftwizard.credentials import redact
    from ftwizard.deploy import engine as deploy
    from ftwizard.deploy.request import dataset_system_prompt, try_request
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    if args.stop:
        return run_stop(args.session_id, as_json=args.json)
    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            deploy.deploy(session, store)
            store.save(session)
            prompt = args.prompt or deploy.sample_prompt(session)
            system = dataset_system_prompt(session) if args.system is None else args.system
            request = try_request(session, prompt, system=system)
            reply = asyncio.run(deploy.try_model(session, prompt, system=system))
            store.save(session)
    except FtwizardError as exc:
        print(f"ftwizard deploy: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    result = session.deployment.model_dump(mode="json")
    if args.json:
        print(json.dumps({**result, "request": request.body}))
    else:
        for key in ("model", "base_url", "endpoint"):
            print(f"{key:12} {result.get(key) or '-'}")
        print(f"request      {request.text()}")
        print(f"{'test_reply':12} {reply}")
        if session.deployment.server_dir:
            print(
                f"the local server keeps running; stop it with: ftwizard deploy {session_id} --stop"
            )
        if session.deployment.identity is not None:
            print(f"{'weights':12} {session.deployment.identity.label()}")
        from ftwizard.training.choice import choice_note

        note = choice_note(session)
        if note:
            print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


__all__ = ["register", "run_deploy", "run_stop"]
