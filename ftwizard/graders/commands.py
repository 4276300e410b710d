"""``ftwizard grade``: grade a dataset's answers (or given outputs) with a grader file.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast; the grading
machinery is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``grade`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "grade",
        help="grade dataset rows (or model outputs) with a grader file",
        description="Grade every data row with a grader (YAML or JSON). The sample graded is the "
        "row's last assistant message, or line i of --outputs. Exit 0 when grading ran (row "
        "errors are counted), 2 when the grader or the data is unusable.",
    )
    parser.add_argument("--grader", required=True, metavar="FILE", help="grader spec (.yaml/.json)")
    parser.add_argument(
        "--data", required=True, metavar="FILE", help="dataset (JSONL, JSON, CSV...)"
    )
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        help='JSONL with one {"output_text": ..., "output_json"?: ...} per data row, in order',
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        metavar="N",
        help="judge calls in flight at once (default 8)",
    )
    parser.add_argument(
        "--judge",
        choices=("openai", "anthropic", "openai_compatible"),
        help="judge provider for score_model/label_model graders (default: anthropic for "
        "claude-* models, otherwise openai; openai_compatible when --judge-base-url is given)",
    )
    parser.add_argument(
        "--judge-base-url",
        metavar="URL",
        help="base URL of the judge's API (vLLM, Ollama, a proxy...)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"n","mean","std","pct_gt0","pct_eq1","errors","scores"}',
    )
    parser.set_defaults(handler=run_grade)


def run_grade(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard grade``; returns the exit code."""
    from ftwizard.errors import FtwizardError

    try:
        summary = _grade(args)
    except FtwizardError as exc:
        from ftwizard.credentials import redact

        print(f"ftwizard grade: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(summary.model_dump(mode="json")))
    else:
        print(_human(summary, args.grader))
    return 0


def _grade(args: argparse.Namespace) -> Any:
    from ftwizard.errors import InputError
    from ftwizard.graders.judges import judge_for
    from ftwizard.graders.loading import dataset_fields, load_grader
    from ftwizard.graders.results import GradeSummary
    from ftwizard.graders.runner import GraderRunner
    from ftwizard.graders.samples import read_outputs, samples_from_answers

    if args.concurrency < 1:
        raise InputError("--concurrency must be at least 1", field="--concurrency")
    items, lines = _read_items(args.data)
    spec = load_grader(args.grader, fields=dataset_fields(items))
    if args.outputs:
        samples = read_outputs(args.outputs, expected=len(items))
    else:
        samples = samples_from_answers(items, lines, path=args.data)
    judge = judge_for(spec, kind=args.judge, base_url=args.judge_base_url)
    with GraderRunner(spec, judge=judge, concurrency=args.concurrency) as runner:
        results = runner.grade_sync(items, samples)
    return GradeSummary.from_results(results, rows=lines)


def _read_items(path: str) -> tuple[list[dict[str, Any]], list[int]]:
    from ftwizard.datasets.loading import iter_records
    from ftwizard.errors import InputError
    from ftwizard.graders.samples import grading_item

    items: list[dict[str, Any]] = []
    lines: list[int] = []
    for rec in iter_records(path):
        if not isinstance(rec.data, dict):
            raise InputError("each data row must be a JSON object", path=path, line=rec.line)
        items.append(grading_item(rec.data))
        lines.append(rec.line)
    if not items:
        raise InputError("the data file has no rows to grade", path=path)
    return items, lines


def _human(summary: Any, grader: str) -> str:
    lines = [
        f"graded {summary.n} rows with {grader}",
        f"  mean {summary.mean:.4f}  std {summary.std:.4f}  "
        f">0: {summary.pct_gt0:.1f}%  =1: {summary.pct_eq1:.1f}%",
    ]
    if summary.errors:
        lines.append(f"  {len(summary.errors)} row(s) failed to grade (scored 0):")
        lines += [f"    row {e.row}: {e.message}" for e in summary.errors[:10]]
        if len(summary.errors) > 10:
            lines.append(f"    ... and {len(summary.errors) - 10} more (see --json)")
    return "\n".join(lines)
