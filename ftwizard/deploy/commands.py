"""``ftwizard deploy`` and ``ftwizard export``: the deploy step headless.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast. ``deploy``
deploys the session's tuned model (for the local backend: exports, merges and starts the
OpenAI-compatible server, which keeps running after the command) and calls it once with a
test prompt, printing the exact request it sent; with ``--server URL`` it registers a server
that already runs (vLLM, SGLang, llama-server, Ollama) instead. ``deploy ID --stop`` stops the
session's local server. ``export`` writes the tuned model as GGUF, an Ollama folder, a merged
model, vLLM/SGLang scripts, or pushes it to the Hub. Exit codes: 0 done, 1 a check failed
(a GGUF that does not reproduce the merged model) or a server or call failed, 2 unusable
input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXPORT_TARGETS = ("gguf", "ollama", "merged", "vllm", "hub")
QUANTS = ("f32", "f16", "bf16", "q8_0", "q4_k_m")


def register(sub: Any) -> None:
    """Add the ``deploy`` and ``export`` subcommands."""
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
    deploy.add_argument(
        "--server",
        metavar="URL",
        help="use a server that already runs (vLLM, SGLang, llama-server, Ollama, any "
        "OpenAI-compatible one), e.g. http://127.0.0.1:8000/v1",
    )
    deploy.add_argument("--model", metavar="NAME", help="with --server: the served model to call")
    deploy.add_argument("--json", action="store_true", help="print one JSON object")
    deploy.set_defaults(handler=run_deploy)

    export = sub.add_parser(
        "export",
        help="write the tuned local model as GGUF, for Ollama, merged, for vLLM/SGLang, or "
        "push it to the Hugging Face Hub",
    )
    export.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    export.add_argument("--to", required=True, choices=EXPORT_TARGETS, help="what to write")
    export.add_argument("-o", "--output", metavar="DIR", help="folder (default: the session's)")
    export.add_argument(
        "--quant",
        choices=QUANTS,
        help="GGUF type (default f16); q4_k_m needs llama.cpp's quantizer (llama-cpp-python)",
    )
    export.add_argument("--repo", metavar="OWNER/NAME", help="hub: the repo to push to")
    export.add_argument("--merged", action="store_true", help="hub: push the merged model")
    export.add_argument("--public", action="store_true", help="hub: create the repo public")
    export.add_argument(
        "--start",
        action="store_true",
        help="vllm: start the server here (needs vllm and a GPU) and make it the deployment",
    )
    export.add_argument("--port", type=int, default=8000, help="vllm: the server's port")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=run_export)


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
    from ftwizard.deploy.external import register_server
    from ftwizard.deploy.request import dataset_system_prompt, try_request
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    if args.stop:
        return run_stop(args.session_id, as_json=args.json)
    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            if args.server:
                register_server(session, args.server, args.model)
            else:
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


def run_export(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard export``."""
    from ftwizard.credentials import redact
    from ftwizard.deploy.export import export_model
    from ftwizard.errors import FtwizardError
    from ftwizard.store import SessionStore

    store = SessionStore()
    try:
        session_id = store.resolve(args.session_id)
        with store.open(session_id) as session:
            result = export_model(
                session,
                store,
                args.to,
                out=args.output,
                quant=args.quant,
                repo=args.repo,
                merged=args.merged,
                private=not args.public,
                start=args.start,
                port=args.port,
            )
            if result.deployed:
                import asyncio

                from ftwizard.deploy import engine as deploy

                store.save(session)
                from ftwizard.deploy.request import dataset_system_prompt

                reply = asyncio.run(
                    deploy.try_model(
                        session,
                        deploy.sample_prompt(session),
                        system=dataset_system_prompt(session),
                    )
                )
                result.notes.append(f"test call answered: {reply}")
                store.save(session)
    except FtwizardError as exc:
        print(f"ftwizard export: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(result.model_dump_json())
        return EXIT_OK
    print(f"{'exported':10} {result.target} -> {result.folder}")
    for path in result.files:
        print(f"{'file':10} {path}")
    if result.check:
        print(
            f"{'checked':10} read back by transformers: {result.check['agreement']:.0%} of greedy "
            f"tokens equal the merged model's on {len(result.check['prompts'])} prompts; "
            f"every tensor within {result.check['weight_error']:.1%} of the merged weights"
        )
    if result.url:
        print(f"{'pushed':10} {result.url}")
    for line in result.commands:
        print(f"{'run':10} {line}")
    for note in result.notes:
        print(f"{'note':10} {note}")
    return EXIT_OK


__all__ = ["register", "run_deploy", "run_export", "run_stop"]
