"""The dataset subcommands: ``validate``, ``convert``, ``split``, ``transform``, ``topics``.

Only the standard library is imported at module level so that ``ftwizard --help`` stays fast;
each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_UNUSABLE = 2


def register(sub: Any) -> None:
    """Add ``validate``, ``convert``, ``split``, ``transform`` and ``topics`` to ``sub``, the
    argparse subparsers object."""
    p = sub.add_parser(
        "validate",
        help="check a training file: problems by line, tokens, epochs and cost",
        description="Validate a dataset. Exit 0: valid; 1: problems found; 2: unusable input.",
    )
    p.add_argument("path", help="JSONL, JSON array, CSV, Parquet, or a save_to_disk folder")
    p.add_argument("--format", dest="format", default=None, help=_formats_help())
    p.add_argument("--model", default=None, help="target model (name, or a local model folder)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default: auto)")
    p.add_argument("--validation", default=None, help="validation file, checked too")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="column mapping for CSV/Parquet, e.g. --map prompt=question "
        "(--map image=photo_path for an image-path column)",
    )
    p.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        metavar="N",
        help="pixel budget per image for models whose processor resizes images (Qwen-VL); "
        "image tokens are counted after that resize",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=validate_command)

    c = sub.add_parser(
        "convert",
        help="convert a dataset to another format",
        description="Convert IN to FORMAT and write OUT (JSONL). The input file is not changed.",
    )
    c.add_argument("input", metavar="IN")
    c.add_argument("output", metavar="OUT")
    c.add_argument("--to", required=True, dest="to", help=_formats_help())
    c.add_argument(
        "--from", dest="from_format", default=None, help="input format (default: detected)"
    )
    c.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="column mapping for CSV/Parquet",
    )
    c.add_argument(
        "--preferred-only",
        action="store_true",
        help="convert preference data (dpo, trl_dpo, gemini_preference) to a one-answer format "
        "on purpose: keep the preferred answers, drop the rejected ones (refused without it)",
    )
    c.add_argument("--json", action="store_true", help="print a JSON summary")
    c.set_defaults(handler=convert_command)

    s = sub.add_parser(
        "split",
        help="split a dataset into train and validation files",
        description="Deterministic seeded split into DIR/train.jsonl and DIR/validation.jsonl.",
    )
    s.add_argument("input", metavar="IN")
    s.add_argument("--val", required=True, help="validation share (0 < F < 1) or a count (N)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--stratify",
        default=None,
        metavar="FIELD",
        help="keep the share of each value of FIELD (or 'topic') on both sides",
    )
    s.add_argument("-o", "--output", required=True, metavar="DIR")
    s.add_argument("--json", action="store_true", help="print a JSON summary")
    s.set_defaults(handler=split_command)

    t = sub.add_parser(
        "transform",
        help="copy a dataset applying transforms (drop invalid lines, duplicates...)",
        description="Write OUT from IN with the transforms given, in this order: drop invalid "
        "lines, per-example transforms, drop duplicates. IN is not changed.",
    )
    t.add_argument("input", metavar="IN")
    t.add_argument("output", metavar="OUT")
    t.add_argument("--format", dest="format", default=None, help=_formats_help())
    t.add_argument(
        "--drop-invalid",
        action="store_true",
        help="leave out lines with errors (recorded in OUT stem.dropped.jsonl)",
    )
    t.add_argument("--model", default=None, help="model whose rules --drop-invalid applies")
    t.add_argument(
        "--top-k",
        type=_positive_int,
        default=None,
        metavar="K",
        help="keep the first K items of list answers",
    )
    t.add_argument(
        "--top-k-field",
        default=None,
        metavar="FIELD",
        help="apply --top-k to this list-valued item field instead",
    )
    t.add_argument(
        "--fold-assistant",
        action="store_true",
        help="fold earlier assistant turns into <previous_assistant_message> tags",
    )
    t.add_argument("--stop-marker", default=None, metavar="TEXT", help="append TEXT to each input")
    t.add_argument("--drop-system", action="store_true", help="remove the system prompt")
    t.add_argument("--system", default=None, metavar="TEXT", help="replace the system prompt")
    t.add_argument("--drop-duplicates", action="store_true")
    t.add_argument("--json", action="store_true", help="print a JSON summary")
    t.set_defaults(handler=transform_command)

    g = sub.add_parser(
        "topics",
        help="show the topics of a dataset (from a field, or computed offline from the text)",
    )
    g.add_argument("input", metavar="IN")
    g.add_argument("--field", default=None, help="read topics from this (dotted) field")
    g.add_argument("--max-topics", type=_positive_int, default=8)
    g.add_argument("--json", action="store_true", help="print the topic tree as JSON")
    g.set_defaults(handler=topics_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _formats_help() -> str:
    return "chat, dpo, rft, gemini, prompt_completion, trl, trl_dpo"


def _mapping(pairs: list[str]) -> dict[str, str] | None:
    from ftwizard.errors import InputError

    out: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise InputError(f"--map {pair!r} must look like FIELD=COLUMN")
        out[field.strip()] = column.strip()
    return out or None


def _fail(exc: Exception, as_json: bool, path: str | None) -> int:
    code = getattr(exc, "exit_code", EXIT_UNUSABLE)
    if as_json:
        print(json.dumps({"path": path, "error": str(exc)}))
    else:
        print(f"error: {exc}", file=sys.stderr)
    return code


def _format_arg(value: str | None) -> Any:
    from ftwizard.datasets.formats import DatasetFormat
    from ftwizard.errors import InputError

    if value is None:
        return None
    try:
        return DatasetFormat(value)
    except ValueError:
        raise InputError(
            f"unknown format {value!r}; use one of {_formats_help()}", field="format"
        ) from None


def validate_command(args: argparse.Namespace) -> int:
    """``ftwizard validate``: exit 0 valid, 1 problems found, 2 unusable input."""
    from ftwizard.errors import FtwizardError

    try:
        from ftwizard.datasets.validation import validate_file

        report = validate_file(
            args.path,
            fmt=_format_arg(args.format),
            model=args.model,
            epochs=args.epochs,
            validation_file=getattr(args, "validation", None),
            mapping=_mapping(getattr(args, "map", []) or []),
            max_pixels=getattr(args, "max_pixels", None),
        )
    except FtwizardError as exc:
        return _fail(exc, args.json, args.path)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(_validate_text(report))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _validate_text(report: Any) -> str:
    lines = [
        f"{report.path}: {report.format.value} format, {report.examples} examples, "
        f"{report.valid_examples} valid",
    ]
    for problem in report.errors:
        where = f"line {problem.line}" if problem.line is not None else "file"
        lines.append(f"  error   {where}: [{problem.code.value}] {problem.message}")
    for problem in report.warnings:
        where = f"line {problem.line}" if problem.line is not None else "file"
        lines.append(f"  warning {where}: [{problem.code.value}] {problem.message}")
    if report.images:
        lines.append(report.image_summary())
    t = report.tokens
    label = "tokens" if t.exact else f"tokens ({t.note})"
    lines.append(
        f"{label}: total {t.total:,}, min {t.min}, p5 {t.p5}, p50 {t.p50}, p95 {t.p95}, "
        f"max {t.max}, over limit {t.over_limit}"
    )
    epochs = f"{report.epochs} (auto)" if report.epochs_auto else str(report.epochs)
    lines.append(
        f"epochs: {epochs}; billed tokens: {report.billed_tokens_per_epoch * report.epochs:,}"
    )
    for cost in report.cost:
        if cost.usd is None:
            usd = "unknown"
        else:
            usd = f"${cost.usd:,.2f}" if cost.usd >= 1 else f"${cost.usd:.4f}"
        lines.append(f"cost: {cost.backend} {cost.model}: {usd} ({cost.basis})")
    if report.validation is not None:
        lines.append("validation file:")
        lines.extend("  " + line for line in _validate_text(report.validation).splitlines())
    lines.append("valid" if report.ok else "problems found")
    return "\n".join(lines)


def convert_command(args: argparse.Namespace) -> int:
    """``ftwizard convert IN OUT --to FORMAT``: exit 0 on success, 1 when examples could not be
    converted, 2 for unusable input."""
    from ftwizard.errors import FtwizardError

    try:
        from ftwizard.datasets.conversion import convert_file

        result = convert_file(
            args.input,
            args.output,
            to=_format_arg(args.to),
            from_format=_format_arg(args.from_format),
            mapping=_mapping(getattr(args, "map", []) or []),
            preferred_only=args.preferred_only,
        )
    except FtwizardError as exc:
        return _fail(exc, args.json, args.input)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    else:
        print(
            f"wrote {result.written} {result.to_format} examples to {result.output}"
            + (f"; {len(result.skipped)} skipped" if result.skipped else "")
        )
        if result.rejected_dropped:
            print(
                f"dropped {result.rejected_dropped} rejected answers (--preferred-only): "
                "the output keeps only the preferred answers"
            )
        for skip in result.skipped[:20]:
            print(f"  skipped line {skip.line}: {skip.message}")
    return EXIT_OK if not result.skipped else EXIT_PROBLEMS


def split_command(args: argparse.Namespace) -> int:
    """``ftwizard split IN --val F|N -o DIR``: exit 0 on success, 2 for unusable input."""
    from ftwizard.errors import FtwizardError

    try:
        from ftwizard.datasets.splitting import parse_val, split_file

        result = split_file(
            args.input,
            args.output,
            val=parse_val(args.val),
            seed=args.seed,
            stratify=args.stratify,
        )
    except FtwizardError as exc:
        return _fail(exc, args.json, args.input)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    else:
        print(
            f"train: {result.train_examples} examples -> {result.train_path}\n"
            f"validation: {result.validation_examples} examples -> {result.validation_path}"
            + (
                f"\nduplicates dropped: {result.duplicates_dropped}"
                if result.duplicates_dropped
                else ""
            )
        )
    return EXIT_OK


def transform_command(args: argparse.Namespace) -> int:
    """``ftwizard transform IN OUT [...]``: exit 0 when done, 2 for unusable input."""
    from ftwizard.errors import FtwizardError, InputError

    try:
        from pydantic import ValidationError

        from ftwizard.datasets.transforms import Transform, transform_file

        specs: list[dict[str, Any]] = []
        if args.drop_invalid:
            specs.append({"kind": "drop_invalid", "model": args.model})
        if args.top_k is not None:
            specs.append({"kind": "top_k", "k": args.top_k, "field": args.top_k_field})
        if args.fold_assistant:
            specs.append({"kind": "fold_assistant_turns"})
        if args.stop_marker:
            specs.append({"kind": "append_stop_marker", "marker": args.stop_marker})
        if args.drop_system:
            specs.append({"kind": "drop_system_prompt"})
        if args.system is not None:
            specs.append({"kind": "replace_system_prompt", "text": args.system})
        if args.drop_duplicates:
            specs.append({"kind": "drop_duplicates"})
        if not specs:
            raise InputError("no transform given; see ftwizard transform --help")
        try:
            transforms = [Transform.model_validate(spec) for spec in specs]
        except ValidationError as exc:
            raise InputError(str(exc)) from exc
        result = transform_file(args.input, args.output, transforms, fmt=_format_arg(args.format))
    except FtwizardError as exc:
        return _fail(exc, args.json, args.input)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False))
    else:
        print(
            f"wrote {result.written} examples to {result.output} ({result.changed} changed, "
            f"{len(result.dropped)} dropped)"
        )
        if result.dropped_record:
            print(f"dropped lines are listed in {result.dropped_record}")
    return EXIT_OK


def topics_command(args: argparse.Namespace) -> int:
    """``ftwizard topics IN [--field F]``: exit 0, or 2 for unusable input."""
    from ftwizard.errors import FtwizardError

    try:
        from ftwizard.datasets.topics import compute_topics

        tree = compute_topics(args.input, field=args.field, max_topics=args.max_topics)
    except FtwizardError as exc:
        return _fail(exc, args.json, args.input)
    if args.json:
        print(json.dumps(tree.model_dump(mode="json", exclude={"idf"}), ensure_ascii=False))
        return EXIT_OK
    print(f"{tree.total} examples, topics from {tree.source}")
    for topic in tree.topics:
        print(f"{topic.count:>8}  {topic.label}")
        for child in topic.children:
            print(f"{child.count:>8}    {child.label}")
    return EXIT_OK
