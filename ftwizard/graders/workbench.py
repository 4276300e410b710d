"""The grader step's work: starting points, checking the spec text, testing it on samples.

The spec the user edits is YAML text kept in the session; each check writes it to the
session's artifacts (``grader.yaml``) so that later steps, the CLI and exports read the same
file. A test grades a few records and is tied to the spec's digest, so an edit after a test
asks for a new test before the wizard moves on.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any, Literal

import yaml

from ftwizard.datasets.loading import iter_records
from ftwizard.errors import InputError
from ftwizard.files import atomic_write_text
from ftwizard.graders.fitting import expected_answer
from ftwizard.graders.loading import GraderProblem, check_grader_file, dataset_fields
from ftwizard.graders.preview import test_on_samples
from ftwizard.graders.samples import grading_item, samples_from_answers, samples_from_model
from ftwizard.graders.spec import AnyGrader
from ftwizard.providers.base import ChatProvider
from ftwizard.session import GraderTest, GraderTestRow

Style = Literal["judge", "script", "builtin"]

SPEC_FILE = "grader.yaml"
SAMPLES_PER_TEST = 5

# What each style starts from when the user has written nothing yet. The wizard never invents
# the criteria: the rubric's lines in parentheses ask the user to write theirs, the script is
# the exact-answer check to adapt, and the test on samples shows what they do.
STARTERS: dict[str, str] = {
    "judge": """\
# LLM-as-judge: a model scores each answer against YOUR rubric (edit it below).
type: score_model
name: rubric judge
model: gpt-4.1-mini-2025-04-14
range: [0, 1]
sampling_params:
  temperature: 0
input:
  - role: system
    content: |
      Score the answer from 0 to 1 against this rubric:
      - 1.0: (what a fully correct answer does)
      - 0.5: (what a partly correct answer does)
      - 0.0: (what a wrong answer does)
      Reply with the score only.
  - role: user
    content: |
      Reference answer: {{item.reference_answer}}
      Answer to grade: {{sample.output_text}}
""",
    "script": """\
# Script: grade(sample, item) returns a score from 0 to 1 (edit it below).
type: python
name: my script
source: |
  def grade(sample: dict, item: dict) -> float:
      answer = sample["output_text"].strip().lower()
      reference = str(item.get("reference_answer", "")).strip().lower()
      return 1.0 if answer == reference else 0.0
""",
    "builtin": """\
# Built-in check: 1.0 when the answer equals the reference answer exactly.
type: string_check
name: exact answer
input: "{{sample.output_text}}"
reference: "{{item.reference_answer}}"
operation: eq
""",
}


def gallery_dir() -> Path:
    """Where the example graders are: packaged with ftwizard, or the repository's examples."""
    packaged = Path(__file__).with_name("gallery")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "examples" / "graders"


def gallery() -> dict[str, Path]:
    """The example graders by name (file stem), sorted."""
    folder = gallery_dir()
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.yaml")) if path.is_file()}


def spec_digest(text: str) -> str:
    """A short fingerprint of the spec text (surrounding whitespace ignored)."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def read_items(
    path: str, *, skip: int = 0, limit: int = SAMPLES_PER_TEST
) -> tuple[list[dict[str, Any]], list[int]]:
    """``limit`` grading items from ``path`` after the first ``skip``, with their line numbers."""
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    records = (r for r in iter_records(path, on_error="skip") if isinstance(r.data, dict))
    for record in itertools.islice(records, skip, skip + limit):
        items.append(grading_item(record.data))
        lines.append(record.line)
    return items, lines


def data_fields(path: str | None) -> set[str] | None:
    """The fields a grader may read from this data's rows (``reference_answer`` included when
    rows carry their own answer), or ``None`` when there is no data to read."""
    if not path:
        return None
    items, _ = read_items(path, limit=50)
    return dataset_fields(items) if items else None


def read_spec_file(path: str | Path) -> str:
    """A grader file's text, ready for the spec editor: a python grader's ``source_file`` is
    read into ``source`` (the session keeps the spec, not a path beside it).

    Raises :class:`InputError` naming the file (and line) when it cannot be read or is not a
    grader mapping; problems inside the spec are left to the check, which lists them all.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError("is a folder; choose a grader file (YAML or JSON)", path=p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("grader file not found; check the path", path=p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read grader file: {exc}", path=p) from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(
            f"invalid YAML: {problem}", path=p, line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(spec, dict):
        raise InputError("a grader file holds one mapping with a 'type' field", path=p, line=1)
    source_file = spec.get("source_file")
    if spec.get("type") == "python" and isinstance(source_file, str):
        try:
            source = (p.parent / source_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read source_file: {exc.strerror or exc}", path=p, field="source_file"
            ) from None
        spec.pop("source_file")
        spec["source"] = source
        return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    return text


def check_spec(
    text: str, *, out_dir: Path, data_path: str | None
) -> tuple[AnyGrader | None, list[GraderProblem], Path]:
    """Write the spec to ``out_dir/grader.yaml`` and validate it against the dataset's fields."""
    path = out_dir / SPEC_FILE
    atomic_write_text(path, text if text.endswith("\n") else text + "\n")
    spec, problems = check_grader_file(path, fields=data_fields(data_path))
    return spec, problems, path


def base_model_generator(
    backend: str | None, base_model: str | None
) -> tuple[ChatProvider | None, str | None, str]:
    """The provider that samples the base model, or None with the reason it cannot.

    Returns ``(provider, model name, why not)``; the grader step falls back to the dataset's
    own answers when there is no provider, and says so.
    """
    from ftwizard.errors import InputError
    from ftwizard.providers.models import (
        build_generation_provider,
        credential_problem,
        parse_model,
    )

    if not backend or not base_model:
        return None, None, "no base model chosen"
    try:
        ref = parse_model(f"{backend}:{base_model}", field="base model")
    except InputError as exc:
        return None, None, str(exc)
    problem = credential_problem(ref)
    if problem:
        return None, None, problem
    return build_generation_provider(ref), ref.name, ""


async def run_sample_test(
    spec: AnyGrader,
    text: str,
    items: list[dict[str, Any]],
    lines: list[int],
    *,
    generator: ChatProvider | None = None,
    model: str | None = None,
    judge: ChatProvider | None = None,
    fallback_reason: str = "",
) -> GraderTest:
    """Grade a few records: the base model's answers when a generator is given, otherwise
    the records' own answers; the result is tied to the spec text's digest."""
    errors: list[str | None] = [None] * len(items)
    if generator is not None and model is not None:
        generated = await samples_from_model(generator, model, items)
        samples = [g.sample for g in generated]
        errors = [g.error for g in generated]
        source = "model"
    else:
        samples = samples_from_answers(items, lines)
        source = "dataset"
    result = await test_on_samples(
        spec, items, samples, records=lines, source=source, model=model, judge=judge
    )
    label = result.source_label
    if source == "dataset" and fallback_reason:
        label = f"{label}: {fallback_reason}"
    rows = [
        GraderTestRow(
            record=row.record,
            expected=expected_answer(spec, item),
            output=row.output,
            score=row.score,
            notes=row.notes,
            error=error or row.error,
        )
        for row, error, item in zip(result.rows, errors, items, strict=True)
    ]
    return GraderTest(
        spec_digest=spec_digest(text),
        source=source,
        source_label=label,
        rows=rows,
        mean=result.mean,
        n_errors=sum(1 for row in rows if row.error),
    )
