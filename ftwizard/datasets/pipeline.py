"""The dataset step's pipeline: from the user's files and choices to the files training uses.

source → (convert to the backend's format) → (drop invalid lines, transforms) → (split) →
validate. Every intermediate file is written under the session's artifacts folder; the user's
files are only read. The pipeline is re-run from the source whenever a choice changes, so the
result always follows from the choices recorded in the session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ftwizard.datasets.formats import FORMAT_METHOD, DatasetFormat
from ftwizard.datasets.validation import ValidationReport, detect_file_format, validate_file
from ftwizard.errors import InputError
from ftwizard.session import Backend, DatasetChoice, DatasetResult, Method

Progress = Callable[[str, float | None], None]
"""Called with what the pipeline is doing and the fraction done (None when unknown)."""

# The format each backend trains on, per method.
TRAINING_FORMAT: dict[tuple[Backend, Method], DatasetFormat] = {
    (Backend.openai, Method.sft): DatasetFormat.CHAT,
    (Backend.openai, Method.dpo): DatasetFormat.DPO,
    (Backend.openai, Method.rft): DatasetFormat.RFT,
    (Backend.vertex, Method.sft): DatasetFormat.GEMINI,
    (Backend.vertex, Method.dpo): DatasetFormat.GEMINI_PREFERENCE,
    (Backend.vertex, Method.rft): DatasetFormat.RFT,
    (Backend.local, Method.sft): DatasetFormat.CHAT,
    (Backend.local, Method.dpo): DatasetFormat.DPO,
    (Backend.local, Method.rft): DatasetFormat.RFT,
    (Backend.together, Method.sft): DatasetFormat.CHAT,
    (Backend.together, Method.dpo): DatasetFormat.DPO,
    (Backend.together, Method.rft): DatasetFormat.RFT,
    (Backend.fireworks, Method.sft): DatasetFormat.CHAT,
    (Backend.fireworks, Method.dpo): DatasetFormat.DPO,
    (Backend.fireworks, Method.rft): DatasetFormat.RFT,
}


def fingerprint(*paths: str | None) -> str:
    """Size and modification time of each file, to notice that the user edited one later."""
    parts = []
    for raw in paths:
        if raw is None:
            continue
        path = Path(raw)
        try:
            stat = path.stat()
        except OSError:
            parts.append(f"{raw}:missing")
            continue
        parts.append(f"{raw}:{stat.st_size}:{int(stat.st_mtime_ns)}")
    return "|".join(parts)


def is_stale(choice: DatasetChoice, result: DatasetResult | None) -> bool:
    """Whether the user's files changed since the result was prepared."""
    if result is None:
        return True
    return fingerprint(choice.train_path, choice.valid_path) != result.fingerprint


def _existing(path: str, what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise InputError(f"no such {what} file", path=resolved)
    if resolved.is_dir() and not (resolved / "dataset_info.json").is_file():
        raise InputError(f"is a directory, not a {what} file", path=resolved)
    return resolved


def prepare(
    choice: DatasetChoice,
    *,
    backend: Backend,
    method: Method,
    model: str | None,
    out_dir: Path,
    progress: Progress | None = None,
) -> tuple[DatasetResult, ValidationReport]:
    """Run the pipeline for ``choice`` and return the result to store and the full report."""
    from ftwizard.datasets.conversion import convert_file
    from ftwizard.datasets.splitting import parse_val, split_file
    from ftwizard.datasets.transforms import Transform, transform_file

    def say(step: str, fraction: float | None = None) -> None:
        if progress is not None:
            progress(step, fraction)

    if not choice.train_path:
        raise InputError("choose a training file first", field="train_path")
    source = _existing(choice.train_path, "training")
    valid_source = _existing(choice.valid_path, "validation") if choice.valid_path else None
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []

    say("detecting the format")
    detected = detect_file_format(source)
    if detected is None:
        raise InputError(
            "could not recognise the format (OpenAI chat, DPO or RFT, Gemini contents, "
            "prompt/completion); see docs/datasets.md",
            path=source,
        )
    current, current_format = source, detected
    current_valid = valid_source
    current, current_valid = _absolute_images(current, current_valid, out_dir, notes)
    wanted = TRAINING_FORMAT[(backend, method)]
    # Vertex reads only its own formats, so other data is converted before any upload
    must_convert = backend is Backend.vertex and current_format is not wanted
    if (
        must_convert
        or FORMAT_METHOD[current_format].value != FORMAT_METHOD[wanted].value
        or (choice.convert and current_format is not wanted)
    ):
        if not (choice.convert or must_convert):
            trains = FORMAT_METHOD[current_format]
            if trains is Method.dpo:
                # Converting would drop every rejected answer, which conversion only does when
                # asked by name (`--preferred-only`), never from the screen's switch.
                move = (
                    "change the method to DPO on the task step, or make "
                    f"{wanted.value} data from the preferred answers with `ftwizard convert "
                    f"{source} --to {wanted.value} --preferred-only` and check that file"
                )
            else:
                move = (
                    f"switch on conversion to {wanted.value} or change the method on the task step"
                )
            notes.append(
                f"The file is in {current_format.value} format, which trains "
                f"{trains.value.upper()}, but the session's method is {method.value.upper()}: "
                f"{move}."
            )
        else:
            say(f"converting to {wanted.value}")
            converted = out_dir / "converted.jsonl"
            result = convert_file(current, converted, to=wanted, from_format=current_format)
            notes.append(
                f"Converted {current_format.value} to {wanted.value}: "
                f"{result.written} written, {len(result.skipped)} skipped."
            )
            current, current_format = converted, wanted
            if current_valid is not None:
                converted_valid = out_dir / "converted-validation.jsonl"
                convert_file(current_valid, converted_valid, to=wanted)
                current_valid = converted_valid

    transforms = [Transform.model_validate(spec) for spec in choice.transforms]
    if choice.drop_invalid:
        transforms.insert(0, Transform(kind="drop_invalid", model=model))
    if transforms:
        say("applying transforms")
        prepared = out_dir / "prepared.jsonl"
        done = transform_file(current, prepared, transforms, fmt=current_format)
        kinds = ", ".join(t.kind.replace("_", " ") for t in transforms)
        notes.append(
            f"Applied {kinds}: {done.written} examples written, {done.changed} changed, "
            f"{len(done.dropped)} dropped"
            + (
                f" (listed in {Path(done.dropped_record).name} beside it)"
                if done.dropped_record
                else ""
            )
            + "."
        )
        current = prepared

    if choice.split_val:
        say("splitting")
        split = split_file(
            current,
            out_dir / "split",
            val=parse_val(choice.split_val),
            seed=choice.split_seed,
            stratify=choice.split_stratify or None,
        )
        notes.append(
            f"Split (seed {split.seed}): {split.train_examples} for training, "
            f"{split.validation_examples} for validation"
            + (f", stratified by {split.stratify}" if split.stratify else "")
            + "."
        )
        if current_valid is not None:
            notes.append("The split replaces the validation file you gave.")
        current, current_valid = Path(split.train_path), Path(split.validation_path)

    def on_progress(examples: int, fraction: float | None) -> None:
        say(f"validating ({examples:,} examples read)", fraction)

    report = validate_file(
        current,
        fmt=current_format,
        model=model,
        validation_file=current_valid,
        progress=on_progress,
        backend=backend,
        max_pixels=choice.max_pixels,
    )
    report_file = out_dir / "validation-report.json"
    from ftwizard.files import atomic_write_text

    atomic_write_text(report_file, report.model_dump_json(indent=2))
    validation_errors = len(report.validation.errors) if report.validation else 0
    result = DatasetResult(
        format=report.format.value,
        examples=report.examples,
        valid_examples=report.valid_examples,
        errors=len(report.errors) + validation_errors,
        warnings=len(report.warnings),
        tokens_total=report.tokens.total,
        training_file=str(current),
        validation_file=str(current_valid) if current_valid else None,
        report_file=str(report_file),
        fingerprint=fingerprint(choice.train_path, choice.valid_path),
        notes=notes,
        images=report.images,
        image_tokens=report.image_tokens,
        image_tokens_note=report.image_tokens_note,
        validation_examples=report.validation.examples if report.validation else None,
    )
    say("done", 1.0)
    return result, report


def _absolute_images(
    train: Path, valid: Path | None, out_dir: Path, notes: list[str]
) -> tuple[Path, Path | None]:
    """Copies of JSONL files whose image paths are relative, with those paths made absolute:
    every later file of the pipeline lives in the artifacts folder, not beside the images."""
    from ftwizard.datasets.loading import SourceKind, detect_source_kind
    from ftwizard.providers.media_files import place_file

    out = []
    for path, name in ((train, "images.jsonl"), (valid, "images-validation.jsonl")):
        if path is None:
            out.append(path)
            continue
        kind = detect_source_kind(path)
        try:
            if kind is SourceKind.JSONL:
                placed = place_file(path, "local", out=out_dir / name)
            else:
                placed = absolute_image_rows(path, kind, out_dir / name)
        except InputError:
            placed = path  # validation reports the image that cannot be read, by line
        if placed != path:
            notes.append(f"Image paths in {path.name} were made absolute in {placed.name}.")
        out.append(placed)
    return out[0], out[1]


def format_problem(result: DatasetResult | None, method: Method) -> str | None:
    """Why the prepared dataset cannot be trained on yet, or None when it can."""
    if result is None:
        return "Choose a training file and press Check."
    if result.errors:
        return (
            f"{result.errors} error(s) remain: fix the file, or switch on 'drop invalid lines' "
            "to train on a cleaned copy."
        )
    if FORMAT_METHOD[DatasetFormat(result.format)].value != method.value:
        return (
            f"The data is {result.format} format but the method is {method.value.upper()}; "
            "switch on conversion or change the method."
        )
    if result.valid_examples == 0:
        return "No valid examples."
    return None


def absolute_image_rows(path: Path, kind: Any, out: Path) -> Path:
    """A Parquet/CSV/Hugging Face file whose first rows hold images, as JSONL with absolute
    image paths (inline bytes kept, written as base64); ``path`` itself when it holds none."""
    from itertools import islice

    from ftwizard.datasets.image_conversion import absolute_paths, find_images
    from ftwizard.datasets.images import may_hold_images
    from ftwizard.datasets.loading import iter_records
    from ftwizard.datasets.writing import write_jsonl
    from ftwizard.providers.media_files import placer

    sample = islice(iter_records(path, kind=kind, on_error="skip"), 200)
    if not any(may_hold_images(None, r.data) and find_images(r.data) for r in sample):
        return path
    place = placer("local", base_dir=path.parent)

    def rows() -> Iterator[Any]:
        for rec in iter_records(path, kind=kind, on_error="keep"):
            yield absolute_paths(rec.data, place) if rec.error is None else rec.data

    write_jsonl(out, rows())
    return out
