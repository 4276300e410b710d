"""``ftwizard dryrun``: sample the base model, grade it, print the verdict.

Only the stdlib is imported at module level so ``ftwizard --help`` stays fast; the dry-run
machinery is imported when the command runs. Exit codes: 0 when the dry run ran (whatever the
verdict), 2 on unusable input (data, grader, model string, missing credentials), 1 when
generation failed beyond retries (the report is still printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_GENERATION_FAILED = 1


def register(sub: Any) -> None:
    """Add the ``dryrun`` subcommand to the CLI's subparsers."""
    parser = sub.add_parser(
        "dryrun",
        help="sample the base model on the data, grade it, and give a GO / WARNING / NO-GO",
        description="Ask the base model to answer a seeded sample of the data (stratified by "
        "topic), grade the answers with the grader, and judge whether the reward gives a "
        "learning signal. Exit 0 when the dry run ran (whatever the verdict), 2 on unusable "
        "input, 1 when generation failed beyond retries.",
    )
    parser.add_argument("--data", required=True, metavar="FILE", help="dataset (JSONL, CSV...)")
    parser.add_argument("--grader", required=True, metavar="FILE", help="grader spec (.yaml/.json)")
    parser.add_argument(
        "--model",
        required=True,
        metavar="MODEL",
        help="openai:NAME | anthropic:NAME | vertex:NAME | local:NAME (local:builtin-tiny works "
        "offline)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL (an OpenAI-compatible server such as vLLM, llama.cpp or Ollama; "
        "default: OPENAI_BASE_URL / ANTHROPIC_BASE_URL / GOOGLE_VERTEX_BASE_URL)",
    )
    parser.add_argument(
        "--samples", type=int, default=200, metavar="N", help="rows to sample (default 200)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, metavar="C", help="requests in flight (default 16)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed")
    parser.add_argument(
        "--samples-per-prompt",
        type=int,
        default=None,
        metavar="K",
        help="answers per prompt at the training temperature (GRPO's group size; default 4 for "
        "rft, 1 for sft); K times the calls and the cost",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="output token limit of each answer (default: the provider's own); raise it when "
        "the dry run says answers are cut off",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        metavar="T",
        help="sampling temperature (default: the provider's own, or 1.0, the training "
        "temperature, with K > 1)",
    )
    parser.add_argument(
        "--drop-flat",
        metavar="FILE",
        help="with K > 1: write the data without the always-solved and never-solved prompts to "
        "the new file FILE (the original is untouched)",
    )
    parser.add_argument(
        "--method",
        choices=("sft", "rft"),
        default="rft",
        help="rft: the verdict is a gate; sft: the dry run is a baseline (default rft)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="anthropic: and openai: models: send the generations as one batch (Message "
        "Batches / Batch API: half the price; can take hours)",
    )
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="with --batch: journal the batch id and its answers here; run again with the same "
        "FILE after a crash or Ctrl-C to re-attach to the batch instead of paying for another",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"n","mean","std","pct_gt0","pct_eq1","errors","verdict","reasons",'
        '"per_topic","groups",...}',
    )
    parser.set_defaults(handler=run_dryrun_command)


def run_dryrun_command(args: argparse.Namespace) -> int:
    """Handler for ``ftwizard dryrun``; returns the exit code."""
    from ftwizard.credentials import redact
    from ftwizard.errors import FtwizardError

    try:
        _preflight_model(args)
    except FtwizardError as exc:
        print(f"ftwizard dryrun: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    import asyncio

    try:
        report = asyncio.run(_dryrun(args))
    except FtwizardError as exc:
        print(f"ftwizard dryrun: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ftwizard dryrun: interrupted", file=sys.stderr)
        return 130
    nothing = report.nothing_measured()
    if nothing is not None:
        # No figures, no verdict: an error that names its cause.
        print(f"ftwizard dryrun: {redact(nothing)}", file=sys.stderr)
        if args.json:
            errors = [e.model_dump() for e in report.errors]
            print(
                json.dumps(
                    {
                        "error": redact(nothing),
                        "n": 0,
                        "sampled": report.sampled,
                        "aborted": report.aborted,
                        "errors": errors,
                    }
                )
            )
        return EXIT_GENERATION_FAILED
    if args.json:
        print(json.dumps(report.to_cli_json()))
    else:
        print(_human(report))
    failed = report.aborted is not None or report.generation_failures > 0
    return EXIT_GENERATION_FAILED if failed else EXIT_OK


def _preflight_model(args: argparse.Namespace) -> None:
    """The base model's preflight, first of all and on the fewest imports: a missing key is
    named before the dry-run machinery (a second of imports) is even loaded."""
    if args.batch:
        return  # the batch rules come first (which providers have one); _dryrun preflights
    from ftwizard.providers.models import parse_model
    from ftwizard.providers.preflight import preflight_model

    ref = parse_model(args.model, base_url=args.base_url, field="--model")
    preflight_model(ref, role="the base model", field="--model")


async def _dryrun(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from ftwizard.dryrun.cost import estimate_dryrun_cost, preflight_dryrun
    from ftwizard.dryrun.engine import DryRun
    from ftwizard.dryrun.report import DryRunConfig, draws_text
    from ftwizard.dryrun.sampling import sample_rows
    from ftwizard.errors import InputError
    from ftwizard.graders.judges import judge_for
    from ftwizard.graders.loading import dataset_fields, load_grader

    for name in ("samples", "concurrency", "samples_per_prompt", "max_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise InputError(f"{flag} must be at least 1", field=flag)
    try:
        config = DryRunConfig(
            data=args.data,
            model=args.model,
            base_url=args.base_url,
            samples=args.samples,
            concurrency=args.concurrency,
            seed=args.seed,
            method=args.method,
            batch=args.batch,
            samples_per_prompt=args.samples_per_prompt,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        # A model-level check (batch mode on a provider without one) has no field of its own.
        loc = str(error["loc"][0]) if error["loc"] else ""
        field = {"": "--batch", "temperature": "--temperature"}.get(loc, "--model")
        raise InputError(str(error["msg"]).removeprefix("Value error, "), field=field) from None
    if args.journal and not args.batch:
        raise InputError("--journal is for --batch runs", field="--journal")
    if args.drop_flat and config.k < 2:
        raise InputError("--drop-flat needs --samples-per-prompt 2 or more", field="--drop-flat")
    ref = config.model_ref()
    # The preflight runs before the data is sampled or anything priced: a missing key fails
    # at once, naming the variable, whatever the size of the data.
    spec = load_grader(args.grader)
    preflight_dryrun(config, spec, model_field="--model", judge_field="--grader")
    sample_set = sample_rows(args.data, args.samples, seed=args.seed)
    spec = load_grader(args.grader, fields=dataset_fields([r.item for r in sample_set.rows]))
    judge = judge_for(spec)
    estimate = estimate_dryrun_cost(config, spec, sample_set=sample_set)
    if estimate.paid:
        usd = estimate.cost.total_usd
        price = "unknown cost" if usd is None else f"about ${usd:.4f}"
        how = " as one batch (half price)" if config.batch else ""
        print(
            f"dry run: {draws_text(estimate.samples, config.k)} on {ref.spec}{how}, {price} "
            f"(~{estimate.input_tokens:,} input / ~{estimate.output_tokens:,} output tokens)",
            file=sys.stderr,
        )
    if config.batch and not args.journal:
        print(
            "dry run: no --journal: if this process stops, a rerun submits a new batch",
            file=sys.stderr,
        )
    dry = DryRun(config, spec, judge=judge, sample_set=sample_set, journal=args.journal)
    report = await dry.run(on_progress=_BatchStatusPrinter() if config.batch else None)
    if args.drop_flat and report.groups is not None:
        from ftwizard.dryrun.groups import drop_prompts

        flat = report.groups.always_solved + report.groups.never_solved
        kept = drop_prompts(args.data, flat, args.drop_flat)
        print(
            f"dry run: wrote {args.drop_flat}: {kept} rows, without {len(flat)} prompts that "
            "were always or never solved",
            file=sys.stderr,
        )
    return report


class _BatchStatusPrinter:
    """Prints a batch's status to stderr when it changes: a batch can run for hours."""

    def __init__(self) -> None:
        self.last: tuple[str | None, str | None, int] | None = None

    def __call__(self, progress: Any) -> None:
        if progress.batch_id is None:
            return
        seen = (progress.batch_id, progress.batch_status, progress.batch_finished)
        if seen != self.last:
            self.last = seen
            print(
                f"dry run: batch {progress.batch_id} {progress.batch_status}, "
                f"{progress.batch_finished}/{progress.total} finished",
                file=sys.stderr,
            )


def _human(report: Any) -> str:
    from ftwizard.dryrun.report import graded_text

    s = report.stats
    lines = [
        f"dry run of {report.model} on {report.data}: {report.draws} "
        f"({report.method}, grader {report.grader})",
        f"  mean {s.mean:.3f}  std {s.std:.3f}  >0: {s.pct_gt0:.1f}%  =1: {s.pct_eq1:.1f}%"
        f"  {graded_text(s.n, report.sampled)}" + ("  (pass/fail grader)" if s.binary else ""),
    ]
    if report.grader_noise is not None:
        lines.append(
            f"  judge noise: mean |diff| {report.grader_noise.mean_abs_diff:.3f} over "
            f"{report.grader_noise.samples} re-graded samples"
        )
    for topic, t in report.per_topic.items():
        lines.append(f"  topic {topic}: n {t.n}  mean {t.mean:.3f}  >0 {t.pct_gt0:.0f}%")
    g = report.groups
    if g is not None:
        lines.append(
            f"  groups of {g.k}: {g.zero_variance_pct:.0f}% all equal ({g.all_fail_pct:.0f}% "
            f"all fail, {g.all_pass_pct:.0f}% all pass), within-prompt std "
            f"{g.mean_within_std:.3f}"
            + (
                f", pass@1 {g.pass_at_1_pct:.0f}%, pass@{g.k} {g.pass_at_k_pct:.0f}%"
                if g.pass_at_k_pct is not None
                else ""
            )
        )
    if report.batch_ids:
        reused = f", {report.reused} answers reused from the journal" if report.reused else ""
        lines.append(f"  batch {', '.join(report.batch_ids)}{reused}")
    usd = report.cost.total_usd
    lines.append(
        f"  tokens {report.usage.input_tokens:,} in / {report.usage.output_tokens:,} out; "
        + ("cost unknown" if usd is None else f"cost ${usd:.4f}")
    )
    baseline = "" if report.verdict.is_gate else " (SFT: a baseline to beat, not a gate)"
    lines.append(f"verdict: {report.verdict.verdict}{baseline}")
    lines += [f"  - {text}" for text in report.verdict.reason_texts()]
    from ftwizard.dryrun.verdict_types import MOVE_TEXT

    lines += [f"  next: {MOVE_TEXT[m]}" for m in report.verdict.next_moves]
    if report.errors:
        lines.append(f"  {len(report.errors)} row(s) with errors:")
        lines += [f"    row {e.row} ({e.stage}): {e.message}" for e in report.errors[:5]]
    return "\n".join(lines)
