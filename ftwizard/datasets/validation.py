"""Validate a dataset file: every problem by line, token counts, epochs and cost.

One streaming pass: records are checked as they are read and token counts are computed in
batches, so memory stays flat whatever the file size (only per-example token counts and a hash
per example for duplicate detection are kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.datasets.first_seen import FirstSeen
from ftwizard.datasets.formats import FORMAT_METHOD, DatasetFormat, detect_format
from ftwizard.datasets.loading import SourceKind, detect_source_kind, iter_records
from ftwizard.datasets.problems import Problem
from ftwizard.datasets.scan import Scan
from ftwizard.datasets.stats import (
    TokenStats,
)
from ftwizard.datasets.targets import (
    Backend,
    Method,
    TargetModel,
    resolve_target,
)
from ftwizard.datasets.tokens import TokenCounter, counter_for
from ftwizard.pricing import CostEstimate, InferenceCost

_CHUNK = 1024
_DETECT_SAMPLE = 200

Progress = Callable[[int, float | None], None]
"""Called with the number of examples read so far and the fraction of the file read (or None)."""


class ValidationReport(BaseModel):
    """Everything validation found about one file. ``to_json`` gives the CLI's JSON shape."""

    path: str
    format: DatasetFormat
    format_detected: bool = True
    source_kind: SourceKind
    method: Method
    model: str
    backend: Backend
    examples: int = 0
    valid_examples: int = 0
    errors: list[Problem] = Field(default_factory=list)
    warnings: list[Problem] = Field(default_factory=list)
    tokens: TokenStats = Field(default_factory=TokenStats)
    histogram: list[tuple[int, int, int]] = Field(default_factory=list)
    epochs: int = 1
    epochs_auto: bool = True
    billed_tokens_per_epoch: int = 0
    cost: list[CostEstimate] = Field(default_factory=list)
    prompt_tokens_mean: float | None = None
    """Mean tokens per example before its final answer (what a call sends)."""
    answer_tokens_mean: float | None = None
    """Mean tokens of the final answer (what a call returns)."""
    inference: InferenceCost | None = None
    """Cost of one call like an average example, base vs fine-tuned model."""
    invalid_lines: list[int] = Field(default_factory=list)
    images: int = 0
    """Images in the file (zero for text-only data)."""
    image_examples: int = 0
    image_tokens: int = 0
    """Tokens of those images on the target (already inside ``tokens``)."""
    image_tokens_exact: bool = True
    image_tokens_note: str | None = None
    validation: ValidationReport | None = None

    @property
    def ok(self) -> bool:
        """True when no errors were found (in this file and its validation file)."""
        return not self.errors and (self.validation is None or self.validation.ok)

    def image_summary(self) -> str | None:
        """One line on the file's images and their tokens; ``None`` for text-only data."""
        if not self.images:
            return None
        how = "" if self.image_tokens_exact else "about "
        return (
            f"images: {self.images:,} in {self.image_examples:,} examples, {how}"
            f"{self.image_tokens:,} image tokens ({self.image_tokens_note}; included in the "
            "token counts)"
        )

    def to_json(self) -> dict[str, Any]:
        """The object ``ftwizard validate --json`` prints."""
        out: dict[str, Any] = {
            "path": self.path,
            "format": self.format.value,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
            "tokens": self.tokens.to_json(),
            "cost": [c.to_json() for c in self.cost],
        }
        if self.images:
            out["images"] = {
                "count": self.images,
                "examples": self.image_examples,
                "tokens": self.image_tokens,
                "exact": self.image_tokens_exact,
                "rule": self.image_tokens_note,
            }
        if self.validation is not None:
            out["validation"] = self.validation.to_json()
        return out


def detect_file_format(
    path: str | Path,
    *,
    kind: SourceKind | None = None,
    mapping: Mapping[str, str] | None = None,
) -> DatasetFormat | None:
    """Detect the format of a file from its first examples; ``None`` when nothing matches."""
    sample = []
    for rec in iter_records(path, kind=kind, mapping=mapping, on_error="skip"):
        sample.append(rec.data)
        if len(sample) >= _DETECT_SAMPLE:
            break
    return detect_format(sample)


def validate_file(
    path: str | Path,
    *,
    fmt: DatasetFormat | str | None = None,
    model: str | None = None,
    epochs: int | None = None,
    validation_file: str | Path | None = None,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | str | None = None,
    progress: Progress | None = None,
    is_validation: bool = False,
    compare: bool | None = None,
    threads: int | None = None,
    counter: TokenCounter | None = None,
    backend: Backend | None = None,
    max_pixels: int | None = None,
) -> ValidationReport:
    """Validate ``path`` for training ``model`` (default: a model that fits the format).

    ``threads`` counts tokens on that many worker threads while the file is read (default: two
    when a CPU core is idle, else none); the result is the same either way.

    ``counter`` replaces the model's token counter (for instance one that asks the provider's
    API, whose counts are exact where ours are estimates).

    ``backend`` is the backend that will train on the file, when the model name alone does not
    say (a Fireworks or Together model id reads like a local one): its rules apply, such as
    which roles RFT prompts may use.

    ``max_pixels`` caps the pixels per image where the target's processor resizes images
    (Qwen-VL), which is what their image tokens are counted from.

    ``compare`` (default: when no model is named) adds the cost of the other models of the same
    backend that train this method, counted with the same tokens.

    Reports every problem with its 1-based line; counts tokens the cookbook's way with the
    model's tokenizer (labelled estimates when it cannot be loaded); computes the distribution,
    epochs (the cookbook's auto rule when ``epochs`` is None) and the cost. Raises
    :class:`~ftwizard.errors.InputError` only for unusable input (missing file, directory,
    unreadable).
    """
    p = Path(path)
    source = SourceKind(kind) if kind is not None else detect_source_kind(p)
    detected = True
    if fmt is None:
        found = detect_file_format(p, kind=source, mapping=mapping)
        detected = found is not None
        dataset_format = found or DatasetFormat.CHAT
    else:
        dataset_format = DatasetFormat(fmt)
    method = FORMAT_METHOD[dataset_format]
    target = resolve_target(model, method)
    if dataset_format in (DatasetFormat.GEMINI, DatasetFormat.GEMINI_PREFERENCE) and model is None:
        target = resolve_target("gemini-2.5-flash", method)
    if backend is not None and backend is not target.backend:
        target = target.model_copy(update={"backend": backend})
    if counter is None:
        counter = counter_for(target)

    report = ValidationReport(
        path=str(p),
        format=dataset_format,
        format_detected=detected,
        source_kind=source,
        method=method,
        model=target.name,
        backend=target.backend,
    )
    scan = _scan_file(
        p,
        report,
        target,
        counter,
        source=source,
        mapping=mapping,
        progress=progress,
        threads=threads,
        compare=model is None if compare is None else compare,
        max_pixels=max_pixels,
    )
    scan.finish(epochs, is_validation=is_validation, has_validation=validation_file is not None)
    if progress is not None:
        progress(report.examples, 1.0)

    if validation_file is not None:
        v = Path(validation_file)
        v_source = detect_source_kind(v)
        report.validation = ValidationReport(
            path=str(v),
            format=dataset_format,
            source_kind=v_source,
            method=method,
            model=target.name,
            backend=target.backend,
        )
        v_scan = _scan_file(
            v,
            report.validation,
            target,
            counter,
            source=v_source,
            mapping=mapping,
            threads=threads,
            train_seen=scan.seen,
            max_pixels=max_pixels,
        )
        v_scan.finish(1, is_validation=True, has_validation=False)
    return report


def _scan_file(
    p: Path,
    report: ValidationReport,
    target: TargetModel,
    counter: TokenCounter,
    *,
    source: SourceKind,
    mapping: Mapping[str, str] | None,
    progress: Progress | None = None,
    threads: int | None = None,
    compare: bool = False,
    train_seen: FirstSeen | None = None,
    max_pixels: int | None = None,
) -> Scan:
    """Read and check every record of ``p``; the caller finishes the scan."""
    scan = Scan(report, report.format, target, counter, threads=threads)
    scan.max_pixels = max_pixels
    if compare:
        scan.compare_with(scan.compare_targets())
    scan.train_seen = train_seen
    total_bytes = p.stat().st_size if p.is_file() else None
    read_bytes = 0
    try:
        for rec in iter_records(p, kind=source, mapping=mapping, on_error="keep"):
            scan.add(rec)
            if rec.raw is not None:
                read_bytes += len(rec.raw) + 1
            if len(scan.pending) >= _CHUNK:
                scan.flush()
                if progress is not None:
                    fraction = min(1.0, read_bytes / total_bytes) if total_bytes else None
                    progress(scan.examples, fraction)
        scan.flush()
        scan.drain()
    finally:
        scan.close()
    return scan
