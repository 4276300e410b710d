"""The ``ftwizard`` command line.

Only the standard library is imported at module level: ``ftwizard --help`` must stay fast, so
pydantic, Textual and every SDK are imported inside the command that needs them.

Exit codes: 0 success, 1 a check failed, 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ftwizard import __version__

Handler = Callable[[argparse.Namespace], int]

METHODS = ("sft", "dpo", "rft")
BACKENDS = ("local", "openai", "vertex", "together", "fireworks")


def _print_json(data: object) -> None:
    from ftwizard.credentials import redact

    print(redact(json.dumps(data, indent=2, default=str)))


def _run_app(session_id: str | None) -> int:
    from ftwizard.app import make_app
    from ftwizard.widgets.terminal_image import prepare

    prepare()  # the terminal answers graphics queries only before Textual starts
    # Interactive: paid actions still show their cost and ask first; only replays are kept
    # from spending unless --allow-spend.
    app = make_app(session_id=session_id, allow_spend=True)
    app.run()
    return app.return_code or 0


def cmd_welcome(args: argparse.Namespace) -> int:
    """Open the wizard on the welcome screen, or run a replay when ``--replay`` is given."""
    if args.replay is not None:
        return cmd_replay(args)
    return _run_app(None)


def cmd_replay(args: argparse.Namespace) -> int:
    """Run a replay file headless and print its transcript."""
    from ftwizard.autopilot import run_replay
    from ftwizard.replay import parse_replay

    replay = parse_replay(Path(args.replay))
    screenshots = Path(args.screenshots) if args.screenshots else None
    return run_replay(replay, allow_spend=args.allow_spend, screenshots=screenshots).exit_code


def cmd_resume(args: argparse.Namespace) -> int:
    """Open the wizard at a saved session's current step."""
    from ftwizard.store import SessionStore

    store = SessionStore()
    session_id = store.resolve(args.session_id)
    store.load(session_id)  # fails with a clear message before the screen opens
    probe = store.lock(session_id)
    probe.acquire()  # likewise when another process has the session open
    probe.release()
    return _run_app(session_id)


def cmd_sessions(args: argparse.Namespace) -> int:
    """List saved sessions, newest first."""
    from ftwizard.store import SessionStore

    summaries, problems = SessionStore().list()
    if args.json:
        _print_json([s.model_dump(mode="json") for s in summaries])
    elif not summaries:
        print("No saved sessions. Start one with `ftwizard` or `ftwizard new`.")
    else:
        rows = [
            (
                s.id,
                s.name,
                s.step,
                s.backend or "-",
                s.updated.astimezone().strftime("%Y-%m-%d %H:%M"),
            )
            for s in summaries
        ]
        header = ("ID", "NAME", "STEP", "BACKEND", "UPDATED")
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            print("  ".join(cells).rstrip())
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one session (the whole of it with ``--json``)."""
    from ftwizard.session import summarize
    from ftwizard.store import SessionStore

    store = SessionStore()
    session = store.load(store.resolve(args.session_id))
    if args.json:
        _print_json(session.model_dump(mode="json"))
        return 0
    summary = summarize(session)
    for key, value in summary.model_dump(mode="json").items():
        print(f"{key:11} {value if value is not None else '-'}")
    print(f"{'journal':11} {len(session.journal)} decisions")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    """Create a session and print its id."""
    from ftwizard.flow import start_session
    from ftwizard.session import Backend, Method
    from ftwizard.store import SessionStore

    session = start_session(
        SessionStore(),
        args.name,
        method=Method(args.method) if args.method else None,
        backend=Backend(args.backend) if args.backend else None,
        base_model=args.base_model,
    )
    print(session.id)
    return 0


def cmd_export_replay(args: argparse.Namespace) -> int:
    """Write a replay that reproduces a session's decisions in a new session."""
    from ftwizard.replay import export_replay
    from ftwizard.store import SessionStore

    store = SessionStore()
    text = export_replay(store.load(store.resolve(args.session_id)))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        from ftwizard.files import atomic_write_text

        atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ftwizard",
        description="A terminal wizard for fine-tuning language models: dataset, grader, dry "
        "run, training (SFT, DPO, RFT), deploy, and blind A/B evaluation.",
        epilog="Run without a command to open the wizard. Exit codes: 0 success, 1 a check "
        "failed, 2 unusable input.",
    )
    parser.add_argument("--version", action="version", version=f"ftwizard {__version__}")
    parser.add_argument(
        "--replay", metavar="FILE", help="run a replay file headless and print a transcript"
    )
    parser.add_argument(
        "--allow-spend",
        action="store_true",
        help="let the replay start actions that cost money (off by default)",
    )
    parser.add_argument(
        "--screenshots", metavar="DIR", help="where a replay's screenshot actions write SVGs"
    )
    parser.set_defaults(handler=cmd_welcome)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    resume = sub.add_parser("resume", help="open a saved session at its current step")
    resume.add_argument("session_id", metavar="ID", help="a session id, or 'latest'")
    resume.set_defaults(handler=cmd_resume)

    sessions = sub.add_parser("sessions", help="list saved sessions, newest first")
    sessions.add_argument("--json", action="store_true", help="print a JSON list")
    sessions.set_defaults(handler=cmd_sessions)

    show = sub.add_parser("show", help="print a session")
    show.add_argument("session_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print the whole session as JSON")
    show.set_defaults(handler=cmd_show)

    new = sub.add_parser("new", help="create a session and print its id")
    new.add_argument("--name", help="a name for the session")
    new.add_argument("--method", choices=METHODS)
    new.add_argument("--backend", choices=BACKENDS)
    new.add_argument("--base-model", metavar="MODEL")
    new.set_defaults(handler=cmd_new)

    export = sub.add_parser(
        "export-replay", help="write a replay that reproduces a session's decisions"
    )
    export.add_argument("session_id", metavar="ID")
    export.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    export.set_defaults(handler=cmd_export_replay)

    # Each step's commands live beside its core; their modules import only the stdlib at the
    # top so that building this parser stays fast.
    from ftwizard.datasets import commands as dataset_commands
    from ftwizard.deploy import commands as deploy_commands
    from ftwizard.distill import commands as distill_commands
    from ftwizard.dryrun import commands as dryrun_commands
    from ftwizard.evaluate import commands as evaluate_commands
    from ftwizard.graders import commands as grader_commands
    from ftwizard.ledger import commands as ledger_commands
    from ftwizard.migrate import commands as migrate_commands
    from ftwizard.training import commands as training_commands

    dataset_commands.register(sub)
    grader_commands.register(sub)
    dryrun_commands.register(sub)
    distill_commands.register(sub)
    evaluate_commands.register(sub)
    ledger_commands.register(sub)
    training_commands.register(sub)
    deploy_commands.register(sub)
    migrate_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ftwizard`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    # `train` has its own --allow-spend (the same dest): only the bare wizard rejects it.
    wizard = handler is cmd_welcome
    if wizard and args.replay is None and (args.allow_spend or args.screenshots):
        parser.error("--allow-spend and --screenshots only apply with --replay")
    if args.replay is not None and handler is not cmd_welcome:
        parser.error("--replay runs on its own; drop the command")
    from ftwizard.errors import FtwizardError

    try:
        return handler(args)
    except FtwizardError as exc:
        from ftwizard.credentials import redact

        print(f"ftwizard: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def run() -> None:
    """The ``ftwizard`` console script and ``python -m ftwizard``: :func:`main`, then exit."""
    code = main()
    import gc

    # The process ends here. Freezing what is still alive spares the interpreter's final
    # garbage collection a walk over every object (about 0.2 s after a dry run on two cores);
    # that walk would free nothing the operating system does not reclaim at exit anyway.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
