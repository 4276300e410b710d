"""What a distillation run would request and cost, before anything is spent; and the
choice between batch and direct calls."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ftwizard.datasets.image_tokens import ImageTokenRule, rule_for
from ftwizard.distill.journal import Journal
from ftwizard.distill.options import DistillEstimate, DistillOptions
from ftwizard.distill.prompts import SourceRow, read_source_rows, request_id, teacher_request
from ftwizard.errors import InputError
from ftwizard.providers.base import GenerationRequest

# Characters per token, for estimates made before any tokenizer or call.
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4


def _approx_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def _image_tokens(ref: str, rule: ImageTokenRule) -> int:
    """Tokens of the image ``ref`` names under ``rule``; an unreadable or remote image counts
    as the rule's estimate for a 1024x1024 picture (the teacher call will say what is wrong)."""
    from ftwizard.errors import FtwizardError
    from ftwizard.providers.media import resolve_image, sniff_image

    try:
        info = sniff_image(resolve_image(ref))
    except FtwizardError:
        return rule.count(1024, 1024)
    return rule.count(info.width, info.height)


def uses_batch(options: DistillOptions, to_request: int) -> bool:
    if options.mode == "batch":
        return True
    if options.mode == "direct":
        return False
    # Automatically only where a batch API surely exists: not on third-party servers.
    teacher = options.teacher
    hosted = teacher.provider == "anthropic" or (
        teacher.provider == "openai" and teacher.compatible_base_url() is None
    )
    return hosted and to_request >= options.batch_min_rows


def has_batch_api(options: DistillOptions) -> bool:
    """Whether the teacher speaks a batch API: Anthropic Message Batches or OpenAI's."""
    return options.teacher.provider in ("anthropic", "openai")


def check_mode(options: DistillOptions) -> None:
    if options.mode == "batch" and not has_batch_api(options):
        raise InputError(
            "batch mode uses Anthropic Message Batches or the OpenAI Batch API; "
            f"a {options.teacher.provider}: teacher runs in direct mode",
            field="mode",
        )


def requests_for(
    rows: Sequence[SourceRow], options: DistillOptions
) -> tuple[list[str], dict[str, GenerationRequest]]:
    ids: list[str] = []
    unique: dict[str, GenerationRequest] = {}
    for row in rows:
        request = teacher_request(
            row,
            options.teacher.name,
            system_prompt=options.system_prompt,
            max_tokens=options.max_tokens,
            temperature=options.temperature,
        )
        rid = request_id(request)
        ids.append(rid)
        unique.setdefault(rid, request)
    return ids, unique


def estimate_distill_cost(
    data: str | Path, options: DistillOptions, *, journal: str | Path | None = None
) -> DistillEstimate:
    """What relabeling ``data`` would cost, before anything is spent.

    Input tokens are estimated from characters (about 4 per token); the expected output is
    the length of each row's existing answer when it has one, else
    ``options.expected_output_tokens``; the maximum is ``max_tokens`` per request. Answers
    already in the journal are not counted again.
    """
    from ftwizard.graders.samples import answer_of
    from ftwizard.pricing import teacher_cost
    from ftwizard.providers.anthropic.chat import DEFAULT_MAX_TOKENS

    rows = list(read_source_rows(data, context_field=options.context_field))
    ids, unique = requests_for(rows, options)
    done = set(Journal(journal).load().generations) if journal is not None else set()
    todo = [rid for rid in unique if rid not in done]
    first_row = {}
    for row, rid in zip(rows, ids, strict=True):
        first_row.setdefault(rid, row)
    input_tokens = expected = images = image_tokens = 0
    rule = rule_for(options.teacher.provider, options.teacher.name)
    for rid in todo:
        request = unique[rid]
        input_tokens += sum(
            _approx_tokens(m.content) + _TOKENS_PER_MESSAGE for m in request.messages
        )
        for ref in (ref for m in request.messages for ref in m.images):
            images += 1
            image_tokens += _image_tokens(ref, rule)
        answer = answer_of(first_row[rid].data)
        expected += _approx_tokens(answer) if answer else options.expected_output_tokens
    input_tokens += image_tokens
    max_out = len(todo) * (options.max_tokens or DEFAULT_MAX_TOKENS)
    batch = uses_batch(options, len(todo))
    model = options.teacher.name
    usd_expected = teacher_cost(model, input_tokens, expected, batch=batch)
    usd_max = teacher_cost(model, input_tokens, max_out, batch=batch)
    pictures = (
        f", {image_tokens:,} of them for {images:,} images ({rule.note}"
        + ("" if rule.exact else ", an estimate")
        + ")"
        if images
        else ""
    )
    basis = (
        f"~{input_tokens:,} input tokens (4 characters per token{pictures}), "
        f"~{expected:,} output tokens expected, at most {max_out:,}"
        + ("; Message Batches at half price" if batch else "")
        + ("" if usd_expected is not None else f"; no price known for {model}")
    )
    return DistillEstimate(
        teacher=model,
        rows=len(rows),
        requests=len(unique),
        already_paid=len(unique) - len(todo),
        to_request=len(todo),
        batch=batch,
        input_tokens=input_tokens,
        output_tokens_expected=expected,
        output_tokens_max=max_out,
        usd_expected=usd_expected,
        usd_max=usd_max,
        basis=basis,
    )
