"""Template lookup and the scoring rules of ftwizard's own grader kinds, using the stdlib only.

This module is the single implementation of those rules: the local runner imports it, and the
exporters paste its source verbatim into the Python graders they generate for OpenAI RFT,
Vertex and TRL. That is why it imports nothing from ftwizard and nothing outside the stdlib
at module level (``jsonschema`` is imported only by the JSON-schema kind, and is present in
OpenAI's grader image).

Template syntax: ``{{ item.field }}``, ``{{ sample.output_text }}``,
``{{ sample.output_json.a.b }}``, ``{{ item.files[0] }}``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

TEMPLATE_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_SEGMENT_RE = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[\s*(-?\d+)\s*\]")
NAMESPACES = ("item", "sample")


class TemplateError(ValueError):
    """A template that names a variable the row does not have, or is malformed."""


def parse_variable(expr: str) -> tuple[str, list[str | int]]:
    """Split ``sample.output_json.a[0]`` into ``("sample", ["output_json", "a", 0])``."""
    pos = 0
    parts: list[str | int] = []
    while pos < len(expr):
        m = _SEGMENT_RE.match(expr, pos)
        if m is None or (pos == 0 and expr.startswith(".")):
            raise TemplateError(f"malformed template variable '{{{{{expr}}}}}' at column {pos + 1}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or parts[0] not in NAMESPACES:
        raise TemplateError(
            f"template variable '{{{{{expr}}}}}' must start with 'item.' or 'sample.'"
        )
    return str(parts[0]), parts[1:]


def lookup(context: dict[str, Any], expr: str) -> Any:
    """Return the value that ``expr`` (``item.x[0].y``) names in ``context``."""
    namespace, path = parse_variable(expr)
    value: Any = context.get(namespace)
    walked = namespace
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                raise TemplateError(f"'{walked}' has no index [{part}] (in '{{{{{expr}}}}}')")
            value = value[part]
            walked += f"[{part}]"
        else:
            if not isinstance(value, dict) or part not in value:
                raise TemplateError(f"'{walked}' has no field '{part}' (in '{{{{{expr}}}}}')")
            value = value[part]
            walked += f".{part}"
    return value


def to_text(value: Any) -> str:
    """Text for a value pasted into a template: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def resolve(template: str, context: dict[str, Any]) -> Any:
    """Resolve ``template``; a template that is one variable alone keeps the value's type."""
    whole = TEMPLATE_RE.fullmatch(template.strip())
    if whole is not None and template.strip().count("{{") == 1:
        return lookup(context, whole.group(1))
    return render(template, context)


def render(template: str, context: dict[str, Any]) -> str:
    """Substitute every ``{{ ... }}`` in ``template`` with its value as text."""
    return TEMPLATE_RE.sub(lambda m: to_text(lookup(context, m.group(1))), template)


# --- ranking over list answers -------------------------------------------------------------


def to_list(value: Any) -> list[str]:
    """A list answer from a list, a JSON list in text, or text with one entry per line."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                value = None
        if isinstance(value, str) or value is None:
            return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(value, list | tuple):
        return [to_text(v).strip() for v in value]
    if value is None:
        return []
    return [to_text(value).strip()]


def _dedupe(values: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def ranking_score(
    metric: str, predicted: list[str], reference: list[str], k: int | None = None
) -> float:
    """Score a ranked prediction against the set of right answers.

    jaccard = |P and R| / |P or R| (1.0 when both are empty); mrr = 1 / rank of the first right
    answer (0.0 when none); precision_at_k = right answers in the top k / k; recall_at_k =
    right answers in the top k / |R| (1.0 when R is empty). Repeated predictions count once.
    """
    pred = _dedupe(predicted)
    ref = set(reference)
    if metric == "jaccard":
        union = set(pred) | ref
        return 1.0 if not union else len(set(pred) & ref) / len(union)
    if metric == "mrr":
        for rank, p in enumerate(pred, start=1):
            if p in ref:
                return 1.0 / rank
        return 0.0
    if k is None or k < 1:
        raise ValueError(f"{metric} needs k >= 1")
    hits = sum(1 for p in pred[:k] if p in ref)
    if metric == "precision_at_k":
        return hits / k
    if metric == "recall_at_k":
        return 1.0 if not ref else hits / len(ref)
    raise ValueError(f"unknown ranking metric '{metric}'")


# --- numeric answers ---------------------------------------------------------------------------

_NUMBER_RE = re.compile(
    r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+(?:[eE][-+]?\d+)?"
)


def extract_number(value: Any, pick: str = "last") -> float | None:
    """The number in an answer: the value itself, or the first/last number written in text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    text = to_text(value)
    if pick == "whole":
        try:
            return float(text.strip().replace(",", ""))
        except ValueError:
            return None
    found = _NUMBER_RE.findall(text)
    if not found:
        return None
    return float((found[-1] if pick == "last" else found[0]).replace(",", ""))


def numeric_score(
    predicted: float | None, reference: float, abs_tol: float, rel_tol: float
) -> float:
    """1.0 when |predicted - reference| <= max(abs_tol, rel_tol * |reference|), else 0.0."""
    if predicted is None or not math.isfinite(predicted):
        return 0.0
    return 1.0 if abs(predicted - reference) <= max(abs_tol, rel_tol * abs(reference)) else 0.0


# --- regex ------------------------------------------------------------------------------------

_FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}
# How long one match may run: ``^(a+)+$`` on "aaa...a!" backtracks for longer than the universe.
REGEX_TIMEOUT_S = 1.0

try:  # the ``regex`` package can stop a match on time; exported copies may lack it
    import regex as _timed_re
except ImportError:  # pragma: no cover - ftwizard itself always has it (tiktoken needs it)
    _timed_re = None


def regex_score(text: str, pattern: str, flags: list[str], mode: str = "search") -> float:
    """1.0 when ``pattern`` matches ``text`` (``search`` anywhere, ``fullmatch`` all of it).

    A match that runs past :data:`REGEX_TIMEOUT_S` (catastrophic backtracking) raises
    ``TimeoutError``, which the runner reports as that row's error.
    """
    bits = 0
    for f in flags:
        bits |= _FLAGS[f]
    if _timed_re is None:
        compiled = re.compile(pattern, bits)
        found = compiled.fullmatch(text) if mode == "fullmatch" else compiled.search(text)
        return 1.0 if found else 0.0
    timed = _timed_re.compile(pattern, bits)
    try:
        if mode == "fullmatch":
            found = timed.fullmatch(text, timeout=REGEX_TIMEOUT_S)
        else:
            found = timed.search(text, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise TimeoutError(
            f"the pattern did not finish matching within {REGEX_TIMEOUT_S:g} s on this row's "
            f"text ({len(text):,} characters); it backtracks without end, so rewrite it "
            "without nested repeats such as (a+)+"
        ) from None
    return 1.0 if found else 0.0


# --- JSON -------------------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """A JSON value: dicts and lists as they are, text parsed (``ValueError`` when it is not)."""
    if isinstance(value, str):
        text = value.strip()
        fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
        return json.loads(fence.group(1) if fence else text)
    return value


def field_value(obj: Any, dotted: str) -> Any:
    """The value at ``a.b[0]`` inside ``obj``; ``KeyError`` when it is missing."""
    value = obj
    for m in _SEGMENT_RE.finditer(dotted):
        if m.group(1) is not None:
            if not isinstance(value, dict) or m.group(1) not in value:
                raise KeyError(dotted)
            value = value[m.group(1)]
        else:
            idx = int(m.group(2))
            if not isinstance(value, list) or not -len(value) <= idx < len(value):
                raise KeyError(dotted)
            value = value[idx]
    return value


def json_match_score(actual: Any, expected: Any, fields: list[str] | None) -> tuple[float, str]:
    """Share of ``fields`` whose values are equal in both objects (whole-value equality if none)."""
    if not fields:
        return (1.0, "") if actual == expected else (0.0, "JSON differs from the reference")
    wrong = []
    for f in fields:
        try:
            want = field_value(expected, f)
        except KeyError:
            raise ValueError(f"the reference has no field '{f}'") from None
        try:
            got = field_value(actual, f)
        except KeyError:
            wrong.append(f"{f} missing")
            continue
        if got != want:
            wrong.append(f"{f} differs")
    return (len(fields) - len(wrong)) / len(fields), "; ".join(wrong)


def json_schema_score(value: Any, schema: dict[str, Any]) -> tuple[float, str]:
    """1.0 when ``value`` is JSON that validates against ``schema``, with the first problem."""
    import jsonschema

    try:
        parsed = as_json(value)
    except ValueError as exc:
        return 0.0, f"not JSON: {exc}"
    validator = jsonschema.Draft202012Validator(schema)
    error = next(iter(validator.iter_errors(parsed)), None)
    if error is None:
        return 1.0, ""
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return 0.0, f"{where}: {error.message}"


# --- one entry point for every ftwizard kind ------------------------------------------------


def score_custom(spec: dict[str, Any], sample: dict[str, Any], item: dict[str, Any]) -> float:
    """Score one row with a ranking / numeric / regex / json_match / json_schema grader spec."""
    return score_custom_with_notes(spec, sample, item)[0]


def score_custom_with_notes(
    spec: dict[str, Any], sample: dict[str, Any], item: dict[str, Any]
) -> tuple[float, str]:
    """Like :func:`score_custom`, plus a short note on why the score is what it is."""
    ctx = {"item": item, "sample": sample}
    kind = spec["type"]
    if kind == "ranking":
        pred = to_list(resolve(spec["input"], ctx))
        ref = to_list(resolve(spec["reference"], ctx))
        if not spec.get("case_sensitive", True):
            pred = [p.lower() for p in pred]
            ref = [r.lower() for r in ref]
        return ranking_score(spec["metric"], pred, ref, spec.get("k")), ""
    if kind == "numeric":
        ref = extract_number(resolve(spec["reference"], ctx), "whole")
        if ref is None:
            raise ValueError("the reference is not a number")
        got = extract_number(resolve(spec["input"], ctx), spec.get("extract", "last"))
        note = "no number in the answer" if got is None else f"got {got:g}, expected {ref:g}"
        return numeric_score(
            got, ref, spec.get("tolerance", 0.0), spec.get("rel_tolerance", 0.0)
        ), note
    if kind == "regex":
        text = render(spec["input"], ctx)
        return regex_score(
            text, spec["pattern"], spec.get("flags", []), spec.get("mode", "search")
        ), ""
    if kind == "json_match":
        try:
            actual = as_json(resolve(spec["input"], ctx))
        except ValueError as exc:
            return 0.0, f"answer is not JSON: {exc}"
        expected = as_json(resolve(spec["reference"], ctx))
        return json_match_score(actual, expected, spec.get("fields"))
    if kind == "json_schema":
        return json_schema_score(resolve(spec["input"], ctx), spec["schema"])
    raise ValueError(f"unknown grader kind '{kind}'")
