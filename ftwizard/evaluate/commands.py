"""``ftwizard eval-ab``: a blind A/B comparison of two models by one or more judges.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast.
Exit codes: 0 evaluated, 1 a model or judge call failed beyond its retries (the figures that
could be computed are still printed), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``eval-ab`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "eval-ab",
        help="blind A/B comparison of two models by LLM judges",
        description="Answer every held-out row with model A and model B, show each pair to the "
        "judges as 'Response A' / 'Response B' in a seeded random order recorded per item, and "
        "report B's win rate with a Wilson interval, position bias and judge agreement. Model "
        "strings: openai:NAME, anthropic:NAME, vertex:NAME, local:NAME; --base-url applies to "
        "the openai: ones (an OpenAI-compatible server). Exit 0 evaluated, 1 calls failed "
        "beyond retries, 2 unusable input.",
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="held-out rows")
    parser.add_argument("--model-a", required=True, metavar="M", help="model A (e.g. the base)")
    parser.add_argument("--model-b", required=True, metavar="M", help="model B (e.g. the tuned)")
    parser.add_argument(
        "--judge", required=True, action="append", metavar="M", help="judge model (repeatable)"
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible server for the openai: models (vLLM, Ollama...)",
    )
    parser.add_argument(
        "--both-orders", action="store_true", help="judge every pair in both orders"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="order seed (default 0)")
    parser.add_argument(
        "--runs", type=int, default=1, metavar="N", help="repeat the judging N times (variance)"
    )
    parser.add_argument(
        "--tag-field",
        default="domain",
        metavar="FIELD",
        help="row field with the in-domain / out-of-domain tag (default: domain)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="calls in flight per model"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=None, metavar="N", help="answer length limit"
    )
    parser.add_argument(
        "--report", metavar="FILE", help="also write the full report (every judgment) as JSON"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"n","a_wins","b_wins","ties","b_win_rate","ci95","position_bias",'
        '"judges","kappa",...}',
    )
    parser.set_defaults(handler=run_eval_ab)
    from ftwizard.evaluate import checkpoint_commands

    checkpoint_commands.register(sub)


def run_eval_ab(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard eval-ab``; returns the exit code."""
    import asyncio

    from ftwizard.credentials import redact
    from ftwizard.errors import FtwizardError

    try:
        report = asyncio.run(_evaluate(args))
    except FtwizardError as exc:
        print(f"ftwizard eval-ab: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    if args.report:
        from pathlib import Path

        from ftwizard.files import atomic_write_text

        atomic_write_text(Path(args.report), report.model_dump_json(indent=2))
    if args.json:
        print(json.dumps(report.to_cli_json()))
    else:
        print(_human(report))
    # Nothing judged is an error too: there is no result to act on.
    nothing = report.counts.n == 0
    return 1 if report.failed_judgments or report.failed_answers or nothing else 0


async def _evaluate(args: argparse.Namespace) -> Any:
    from ftwizard.distill.models import model_ref, require_credentials
    from ftwizard.errors import InputError
    from ftwizard.evaluate.ab import Judge, JudgeOptions, evaluate_ab, read_eval_rows
    from ftwizard.providers.models import build_generation_provider

    for name, value in (("--concurrency", args.concurrency), ("--runs", args.runs)):
        if value < 1:
            raise InputError(f"{name} must be at least 1", field=name)
    if args.runs > 50:
        raise InputError("--runs is at most 50", field="--runs")
    if len(set(args.judge)) != len(args.judge):
        raise InputError("the same judge is given twice", field="--judge")

    def ref(spec: str, field: str) -> Any:
        return model_ref(spec, base_url=args.base_url, field=field, openai_only=True)

    a, b = ref(args.model_a, "--model-a"), ref(args.model_b, "--model-b")
    judge_refs = [ref(j, "--judge") for j in args.judge]
    for field, r in [("--model-a", a), ("--model-b", b), *(("--judge", j) for j in judge_refs)]:
        require_credentials(r, field=field)
    rows = read_eval_rows(args.data, tag_field=args.tag_field)
    options = JudgeOptions(seed=args.seed, both_orders=args.both_orders, runs=args.runs)
    from ftwizard.providers.models import close_provider

    judges = [
        Judge(name=spec, provider=build_generation_provider(r), model=r.name)
        for spec, r in zip(args.judge, judge_refs, strict=True)
    ]
    provider_a, provider_b = build_generation_provider(a), build_generation_provider(b)
    identity = _identity_of(b)
    try:
        report = await evaluate_ab(
            rows,
            model_a=(provider_a, a.name),
            model_b=(provider_b, b.name),
            judges=judges,
            options=options,
            answer_concurrency=args.concurrency,
            answer_max_tokens=args.max_tokens,
        )
        report.tuned_identity = identity
        return report
    finally:
        for provider in (provider_a, provider_b, *(j.provider for j in judges)):
            await close_provider(provider)


def _identity_of(ref: Any) -> Any:
    """Model B's weights: a local folder's digest (resolved first), else the model string."""
    from pathlib import Path

    from ftwizard.identity import hosted_identity, local_identity

    if ref.provider == "local" and Path(ref.name).expanduser().exists():
        return local_identity(ref.name, model=ref.spec)
    return hosted_identity(ref.spec)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _human(report: Any) -> str:
    from ftwizard.report.evaluation import nothing_judged

    nothing = nothing_judged(report)
    if nothing is not None:
        return "\n".join([nothing, *(f"warning: {w}" for w in report.warnings)])
    c = report.counts
    lo, hi = c.ci95
    lines = [
        f"{report.model_b} vs {report.model_a}: {c.b_wins} wins, {c.ties} ties, "
        f"{c.a_wins} losses over {c.n} items",
        f"B win rate {_pct(c.b_win_rate)} (95% CI {lo:.1%} - {hi:.1%}); verdict: "
        + {"a": f"{report.model_a} is better", "b": f"{report.model_b} is better"}.get(
            report.verdict, "undecided"
        ),
        f"position bias: first shown chosen in "
        f"{_pct(report.position_bias.first_position_rate)} of "
        f"{report.position_bias.decisive} decisive judgments",
    ]
    for name, s in report.per_judge.items():
        lines.append(
            f"  judge {name}: {s.b_wins}/{s.ties}/{s.a_wins} (B/tie/A), "
            f"first-position {_pct(s.position_bias.first_position_rate)}, invalid {s.invalid}"
        )
    if report.kappa is not None:
        lines.append(f"Cohen's kappa between judges: {report.kappa:.2f}")
    for tag, t in report.by_tag.items():
        lines.append(f"  {tag}: B win rate {_pct(t.b_win_rate)} over {t.n} items")
    if report.repeats is not None and report.repeats.std is not None:
        lines.append(
            f"over {report.runs} runs: mean {_pct(report.repeats.mean)}, "
            f"std {report.repeats.std:.3f}"
        )
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)
