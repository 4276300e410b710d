"""``ftwizard distill``: relabel a dataset or trace log with a teacher, keep the correct answers.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast.
Exit codes: 0 written, 1 the teacher failed on some rows beyond its retries (the file holds the
rest; rerun to retry just those), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``distill`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "distill",
        help="relabel prompts with a teacher model and keep only the correct answers",
        description="Ask a teacher (anthropic:NAME, openai:NAME, vertex:NAME or local:NAME; "
        "openai:NAME --base-url URL for an OpenAI-compatible server) to answer every row's "
        "prompt, grade each answer against the row with the grader, keep rows scoring at "
        "least --threshold, and write OUT (JSONL or Parquet) with "
        "OUT.meta.json. Anthropic and OpenAI teachers use their batch APIs (half price) from "
        "--batch-min-rows rows on. Resumable: answers are journaled in OUT.journal.jsonl and "
        "never requested twice. Exit 0 written, 1 teacher calls failed beyond retries, "
        "2 unusable input.",
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset or trace log")
    parser.add_argument("--teacher", required=True, metavar="MODEL", help="teacher model")
    parser.add_argument("--grader", required=True, metavar="FILE", help="grader spec")
    parser.add_argument(
        "--threshold", type=float, default=1.0, metavar="T", help="keep score >= T (default 1)"
    )
    parser.add_argument("--base-url", metavar="URL", help="the teacher's API base URL")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help=".jsonl/.parquet")
    parser.add_argument(
        "--mode", choices=("auto", "batch", "direct"), default="auto", help="how to call"
    )
    parser.add_argument("--batch-min-rows", type=int, default=100, metavar="N")
    parser.add_argument(
        "--poll-interval", type=float, default=30.0, metavar="S", help="batch polling period"
    )
    parser.add_argument("--system", metavar="TEXT", help="system prompt for the teacher")
    parser.add_argument(
        "--context-field",
        default="context",
        metavar="FIELD",
        help="row field with extra context shown to the teacher only (default: context)",
    )
    parser.add_argument("--max-tokens", type=int, metavar="N", help="teacher answer limit")
    parser.add_argument("--concurrency", type=int, default=8, metavar="N")
    parser.add_argument(
        "--keep-field", action="append", default=[], metavar="FIELD", help="copy to the output"
    )
    parser.add_argument(
        "--merge-into", metavar="FILE", help="write this dataset with teacher answers merged in"
    )
    parser.add_argument(
        "--key", action="append", default=[], metavar="COLUMN", help="merge key (repeatable)"
    )
    parser.add_argument("--journal", metavar="FILE", help="journal (default OUT.journal.jsonl)")
    parser.add_argument(
        "--estimate", action="store_true", help="print the cost estimate and stop (no calls)"
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before spending")
    parser.add_argument(
        "--json", action="store_true", help='print {"n","kept","teacher_accuracy","cost_usd"}'
    )
    parser.set_defaults(handler=run_distill_command)
    register_import(sub)


def register_import(sub: Any) -> None:
    """Add ``distill-import``: a teacher's existing CSV answers, matched and checked, no spend."""
    parser = sub.add_parser(
        "distill-import",
        help="import a teacher's existing answers from CSV files, keep only the correct ones",
        description="Match the answers in one or more CSV files to DATA's rows by key columns "
        "(a float key, such as a coordinate, within ~TOLERANCE), check each against the row's "
        "ground truth (--grader, else an exact match ignoring case), keep only the correct "
        "ones, and write OUT (Parquet, JSONL or CSV; images embedded) with OUT.meta.json "
        "holding the match rate and the teacher's accuracy. Nothing is paid for. "
        "Exit 0 written, 2 unusable input.",
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="the dataset")
    parser.add_argument(
        "--answers", action="append", required=True, metavar="CSV", help="answers (repeatable)"
    )
    parser.add_argument(
        "--key",
        action="append",
        required=True,
        metavar="COLUMN[=CSV_COLUMN][~TOL]",
        help="key column (repeatable); ~TOL matches a float key within TOL",
    )
    parser.add_argument("--answer-column", default="answer", metavar="NAME")
    parser.add_argument("--grader", metavar="FILE", help="grader spec deciding what is correct")
    parser.add_argument("--threshold", type=float, default=1.0, metavar="T")
    parser.add_argument(
        "--keep-field", action="append", default=[], metavar="FIELD", help="copy to the output"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON")
    parser.set_defaults(handler=run_import_command)


def run_import_command(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard distill-import``; returns the exit code."""
    import asyncio

    from ftwizard.distill.imported import KeyColumn, import_answers
    from ftwizard.errors import FtwizardError
    from ftwizard.graders.loading import load_grader

    try:
        keys = [KeyColumn.parse(spec) for spec in args.key]
        grader = load_grader(args.grader) if args.grader else None
        result = asyncio.run(
            import_answers(
                args.data,
                args.answers,
                args.output,
                keys=keys,
                answer_column=args.answer_column,
                grader=grader,
                grader_name=args.grader,
                threshold=args.threshold,
                keep_fields=args.keep_field,
            )
        )
    except FtwizardError as exc:
        print(f"ftwizard distill-import: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(result.model_dump_json())
    else:
        print(f"{result.match_text}; teacher: {result.accuracy_text}")
        print(
            f"kept {result.kept} rows -> {result.output} (statistics in {result.output}.meta.json)"
        )
    return 0


def run_distill_command(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard distill``; returns the exit code."""
    from ftwizard.credentials import redact
    from ftwizard.errors import FtwizardError

    try:
        outcome = _distill(args)
    except FtwizardError as exc:
        print(f"ftwizard distill: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ftwizard distill: stopped; run the same command again to resume", file=sys.stderr)
        return 130
    if outcome is None:
        return 0
    if isinstance(outcome, str):
        print(outcome)
        return 0
    if args.json:
        print(json.dumps(outcome.to_cli_json()))
    else:
        print(_human(outcome))
    return 1 if outcome.failed else 0


def _distill(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from pydantic import ValidationError

    from ftwizard.distill.engine import run_distill_sync
    from ftwizard.distill.estimate import estimate_distill_cost
    from ftwizard.distill.models import model_ref, require_credentials
    from ftwizard.distill.options import DistillOptions
    from ftwizard.errors import InputError
    from ftwizard.files import check_output_path
    from ftwizard.graders.loading import load_grader

    # before anything is read or estimated, so a bad -o never costs a teacher call
    check_output_path(Path(args.output), field="-o")
    for name, value in (
        ("--concurrency", args.concurrency),
        ("--batch-min-rows", args.batch_min_rows),
    ):
        if value < 1:
            raise InputError(f"{name} must be at least 1", field=name)
    teacher = model_ref(args.teacher, base_url=args.base_url, field="--teacher")
    try:
        options = DistillOptions(
            teacher=teacher,
            threshold=args.threshold,
            mode=args.mode,
            batch_min_rows=args.batch_min_rows,
            poll_interval_s=max(0.0, args.poll_interval),
            system_prompt=args.system,
            context_field=args.context_field or None,
            max_tokens=args.max_tokens,
            concurrency=args.concurrency,
            keep_fields=args.keep_field,
            merge_into=Path(args.merge_into) if args.merge_into else None,
            key_columns=args.key,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise InputError(str(error["msg"]), field=field) from None
    grader = load_grader(args.grader)
    journal = Path(args.journal) if args.journal else None
    estimate = estimate_distill_cost(
        args.data, options, journal=journal or _default_journal(args.output)
    )
    if args.estimate:
        return json.dumps(estimate.model_dump()) if args.json else _estimate_text(estimate)
    require_credentials(teacher, field="--teacher")
    judge = _judge_for(grader)
    if estimate.to_request and not args.yes and not args.json and sys.stdin.isatty():
        print(_estimate_text(estimate))
        if input("Spend this? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing was spent", file=sys.stderr)
            return None
    return run_distill_sync(
        args.data,
        args.output,
        options,
        grader=grader,
        grader_name=args.grader,
        judge=judge,
        journal=journal,
    )


def _default_journal(output: str) -> Any:
    from ftwizard.distill.options import journal_path_for

    return journal_path_for(output)


def _judge_for(grader: Any) -> Any:
    """The judge for the grader's model graders (by the grader's model name), if any."""
    from ftwizard.distill.models import grader_judge_ref, require_credentials
    from ftwizard.providers.models import build_generation_provider

    ref = grader_judge_ref(grader)
    if ref is None:
        return None
    require_credentials(ref, field="--grader")
    return build_generation_provider(ref)


def _money(usd: float | None) -> str:
    return "unknown" if usd is None else f"${usd:,.2f}"


def _estimate_text(estimate: Any) -> str:
    return (
        f"teacher {estimate.teacher}: {estimate.to_request} requests to send "
        f"({estimate.already_paid} already paid for, {estimate.rows} rows); "
        f"expected {_money(estimate.usd_expected)}, at most {_money(estimate.usd_max)} "
        f"({estimate.basis})"
    )


def _human(result: Any) -> str:
    lines = [
        f"teacher {result.teacher}: {result.accuracy_text}",
        f"kept {result.kept} of {result.n} rows -> {result.output} ({result.output_rows} rows)",
        f"cost {_money(result.cost_usd)} in all, {_money(result.cost_usd_this_run)} this run; "
        f"{result.reused} answers reused from the journal",
    ]
    if result.failed:
        lines.append(
            f"{result.failed} rows got no answer (first: line {result.failures[0].line}: "
            f"{result.failures[0].message}); run again to retry them"
        )
    return "\n".join(lines)
