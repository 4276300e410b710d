"""Fitting a grader to the loaded data: which row fields it reads, which are missing, and mapping.

A gallery example is written for its own data (``exact_answer`` reads ``{{item.answer}}``);
the grader step says which fields an example needs that the user's data lacks, and rewrites
the spec's templates to read one of the data's own fields instead. The spec is YAML text the
user edits, so the rewrite works on the text and keeps its comments.
"""

from __future__ import annotations

import re
from typing import Any

from ftwizard.graders.portable import TemplateError, render
from ftwizard.graders.spec import AnyGrader, iter_graders

# A template variable that starts with a row field: {{item.answer}}, {{ item.files[0] }}.
_ITEM_FIELD = re.compile(r"\{\{\s*item\.([A-Za-z_][A-Za-z0-9_\-]*)")
# Where a grader's row fields come from in the grading item, as the grader step builds it.
DERIVED_FIELD = "reference_answer"


def item_fields(text: str) -> list[str]:
    """The row fields the spec text's templates read, in order of first use."""
    seen: dict[str, None] = {}
    for match in _ITEM_FIELD.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def missing_fields(text: str, fields: set[str]) -> list[str]:
    """The row fields the spec reads that the data does not have."""
    return [name for name in item_fields(text) if name not in fields]


def map_field(text: str, old: str, new: str) -> str:
    """The spec text with every template that reads ``item.<old>`` reading ``item.<new>``."""
    pattern = re.compile(r"(\{\{\s*item\.)" + re.escape(old) + r"(?![A-Za-z0-9_\-])")
    return pattern.sub(lambda m: m.group(1) + new, text)


def field_choices(fields: set[str]) -> list[str]:
    """The data's fields to offer for a mapping: the row's own answer first, then the rest."""
    rest = sorted(name for name in fields if name != DERIVED_FIELD)
    return ([DERIVED_FIELD] if DERIVED_FIELD in fields else []) + rest


def expected_answer(spec: AnyGrader, item: dict[str, Any]) -> str | None:
    """What the grader compares an answer with for this row: its ``reference`` template
    (the first one, for a multi grader) filled in, else the row's own answer."""
    for _, grader in iter_graders(spec):
        reference = getattr(grader, "reference", None)
        if isinstance(reference, str) and "sample." not in reference:
            try:
                return render(reference, {"item": item, "sample": {}})
            except TemplateError:
                return None
    answer = item.get(DERIVED_FIELD)
    return None if answer is None else str(answer)


__all__ = [
    "DERIVED_FIELD",
    "expected_answer",
    "field_choices",
    "item_fields",
    "map_field",
    "missing_fields",
]
