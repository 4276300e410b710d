"""Choosing the rows a dry run asks the base model about: seeded, stratified by topic.

Two streaming passes over the dataset: the first notes each answerable row's line and topic,
the second keeps the chosen rows. The same file, size and seed always pick the same rows.
Topics come from a ``TopicTree`` the dataset step computed, else from a ``topic`` field when the
rows have one; each topic gets its share of the sample (largest remainder), so a small topic is
not left out by chance.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ftwizard.datasets.fields import field_value
from ftwizard.datasets.loading import iter_records
from ftwizard.datasets.splitting import allocate
from ftwizard.errors import InputError
from ftwizard.graders.samples import grading_item, prompt_messages
from ftwizard.providers.media import anchor_images

if TYPE_CHECKING:
    # Annotations only: the topics module is not needed to run a dry run.
    from ftwizard.datasets.topics import TopicTree

DEFAULT_SAMPLES = 200
TOPIC_FIELD = "topic"
# Rows looked at to decide whether the dataset has a topic field.
_TOPIC_PROBE_ROWS = 50


class SampledRow(BaseModel):
    """One row chosen for the dry run: its 1-based line, the row itself, its topic label."""

    line: int
    item: dict[str, Any]
    topic: str | None = None


class SampleSet(BaseModel):
    """The chosen rows (in file order) and what the choice was made from."""

    rows: list[SampledRow]
    seed: int
    requested: int
    eligible: int
    skipped_no_prompt: list[int] = Field(default_factory=list)
    topic_source: str | None = None
    topic_counts: dict[str, int] = Field(default_factory=dict)


def _topic_of_tree(tree: TopicTree) -> Any:
    labels = {t.id: t.label for t in tree.topics}

    def of(data: Any) -> str:
        topic_id, _sub = tree.assign(data)
        return labels.get(topic_id, topic_id)

    return of


def _topic_of_field(field: str) -> Any:
    def of(data: Any) -> str | None:
        value = field_value(data, field)
        if value is None:
            return None
        text = value if isinstance(value, str) else str(value)
        # "birds / owls" is a two-level topic; the sample is stratified on the first level.
        return text.split("/")[0].split(">")[0].strip() or None

    return of


def _has_field(path: Path, field: str) -> bool:
    for _, rec in zip(range(_TOPIC_PROBE_ROWS), iter_records(path, on_error="skip"), strict=False):
        if isinstance(rec.data, dict) and field_value(rec.data, field) is not None:
            return True
    return False


def choose(strata: list[str | None], n: int, seed: int) -> list[int]:
    """Indices of ``n`` of the ``strata`` (or all of them), proportionally per stratum, seeded."""
    total = len(strata)
    if n >= total:
        return list(range(total))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, stratum in enumerate(strata):
        groups[stratum or ""].append(i)
    quota = allocate({k: len(v) for k, v in groups.items()}, n)
    rng = random.Random(seed)
    chosen: list[int] = []
    for key in sorted(groups):
        chosen.extend(rng.sample(groups[key], quota[key]))
    return sorted(chosen)


def sample_rows(
    path: str | Path,
    n: int = DEFAULT_SAMPLES,
    *,
    seed: int = 0,
    topics: TopicTree | None = None,
    topic_field: str | None = None,
) -> SampleSet:
    """Pick ``n`` answerable rows of ``path`` (all of them when there are fewer).

    A row is answerable when it has a prompt (messages before the last assistant turn, or a
    ``prompt``); the others are skipped and listed. ``topics`` (from the dataset step) or
    ``topic_field`` (default: ``topic`` when the rows have it) stratify the choice.
    Raises :class:`InputError` for an unreadable file, a malformed line or no answerable row.
    """
    if n < 1:
        raise InputError("the number of samples must be at least 1", field="samples")
    src = Path(path)
    topic_of: Any = None
    source: str | None = None
    if topics is not None and topics.topics:
        topic_of, source = _topic_of_tree(topics), topics.source
    else:
        field = topic_field or TOPIC_FIELD
        if _has_field(src, field):
            topic_of, source = _topic_of_field(field), f"field:{field}"
        elif topic_field is not None:
            raise InputError(
                f"no row has the topic field '{topic_field}'", path=src, field=topic_field
            )
    lines: list[int] = []
    strata: list[str | None] = []
    skipped: list[int] = []
    for rec in iter_records(src):
        if not isinstance(rec.data, dict):
            raise InputError("each row must be a JSON object", path=src, line=rec.line)
        if not prompt_messages(rec.data):
            skipped.append(rec.line)
            continue
        lines.append(rec.line)
        strata.append(topic_of(rec.data) if topic_of is not None else None)
    if not lines:
        raise InputError(
            "no row has a prompt to answer (messages before the assistant's turn, or 'prompt')",
            path=src,
        )
    picked = choose(strata, n, seed)
    wanted = {lines[i]: strata[i] for i in picked}
    rows = [
        SampledRow(
            line=rec.line,
            item=grading_item(anchor_images(rec.data, src.parent)),
            topic=wanted[rec.line],
        )
        for rec in iter_records(src)
        if rec.line in wanted
    ]
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.topic is not None:
            counts[row.topic] += 1
    return SampleSet(
        rows=rows,
        seed=seed,
        requested=n,
        eligible=len(lines),
        skipped_no_prompt=skipped,
        topic_source=source,
        topic_counts=dict(sorted(counts.items())),
    )
