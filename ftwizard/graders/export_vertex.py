"""Export a grader spec to a Vertex AI reinforcement-tuning reward config, where the kind maps.

The result is the ``single_reward_config`` or ``composite_reward_config`` of google-genai's
``ReinforcementTuningSpec`` (snake_case, as ``google.genai.types`` accepts it).

What maps:

- ``string_check`` on ``{{sample.output_text}}``: eq → EXACT_MATCH, like → PARTIAL_MATCH,
  ne → EXACT_MATCH with the rewards swapped, ilike → REGEX_CONTAINS ``(?i)`` when the reference
  is plain text.
- ``regex`` (search mode) on ``{{sample.output_text}}`` → REGEX_CONTAINS (Vertex uses RE2).
- ``python`` and ftwizard's other kinds → ``code_execution_reward_scorer`` with an
  ``evaluate(example, response)`` wrapper around the same code that runs locally.
- ``score_model`` with a range inside [-1, 1] → ``autorater_scorer`` (prompt placeholders
  ``{{response}}`` and ``{{references.x}}``; the judge must answer with the bare number).
- ``multi`` whose formula is ``w1 * a + w2 * b + ...`` with positive weights summing to 1 →
  ``composite_reward_config`` (Vertex divides by the sum of weights).

Vertex reads ``{{references.x}}`` from a ``references`` object in each training example, so
``{{item.x}}`` becomes ``{{references.x}}``: put the fields the grader uses there.
"""

from __future__ import annotations

import re
from typing import Any

from ftwizard.graders.export_openai import ExportUnsupported, portable_source
from ftwizard.graders.formula import parse_formula
from ftwizard.graders.portable import TEMPLATE_RE, parse_variable
from ftwizard.graders.spec import (
    FTWIZARD_KINDS,
    AnyGrader,
    MultiGrader,
    PythonGrader,
    RegexGrader,
    ScoreModelGrader,
    StringCheckGrader,
    spec_to_dict,
)

_RESPONSE = "{{sample.output_text}}"

_EVALUATE = """

def _ftwizard_response_text(response):
    if isinstance(response, str):
        return response
    parts = response.get("parts", []) if isinstance(response, dict) else []
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in parts)


def evaluate(example, response):
    import json as _json

    text = _ftwizard_response_text(response)
    try:
        parsed = _json.loads(text)
    except ValueError:
        parsed = None
    sample = {"output_text": text,
              "output_json": parsed if isinstance(parsed, (dict, list)) else None}
    item = dict((example or {}).get("references") or {})
    return float(grade(sample, item))
"""


def _unsupported(g: AnyGrader, why: str) -> ExportUnsupported:
    return ExportUnsupported(f"grader '{g.name}' ({g.type}) cannot map to a Vertex reward: {why}")


def _references(g: AnyGrader, template: str, *, response: str | None = None) -> str:
    """``{{item.x}}`` → ``{{references.x}}`` (and the response placeholder when given)."""

    def sub(m: re.Match[str]) -> str:
        namespace, path = parse_variable(m.group(1))
        if namespace == "sample" and path == ["output_text"] and response is not None:
            return response
        if namespace == "item" and len(path) == 1 and isinstance(path[0], str):
            return f"{{{{references.{path[0]}}}}}"
        raise _unsupported(g, f"template '{m.group(0)}' has no Vertex placeholder")

    return TEMPLATE_RE.sub(sub, template)


def _string_match(
    g: AnyGrader, operation: str, expression: str, *, swap: bool = False
) -> dict[str, Any]:
    return {
        "reward_name": g.name,
        "string_match_reward_scorer": {
            "correct_answer_reward": 0.0 if swap else 1.0,
            "wrong_answer_reward": 1.0 if swap else 0.0,
            "string_match_expression": {"match_operation": operation, "expression": expression},
        },
    }


def _single(g: AnyGrader) -> dict[str, Any]:
    if isinstance(g, StringCheckGrader):
        if g.input.strip() != _RESPONSE:
            raise _unsupported(
                g,
                "Vertex string match compares the response itself; input must "
                "be {{sample.output_text}}",
            )
        if g.operation == "ilike":
            if "{{" in g.reference:
                raise _unsupported(
                    g,
                    "ilike with a templated reference has no case-insensitive "
                    "Vertex equivalent; use like or a python grader",
                )
            return _string_match(g, "REGEX_CONTAINS", "(?i)" + re.escape(g.reference))
        op = {"eq": "EXACT_MATCH", "ne": "EXACT_MATCH", "like": "PARTIAL_MATCH"}[g.operation]
        return _string_match(g, op, _references(g, g.reference), swap=g.operation == "ne")
    if (
        isinstance(g, RegexGrader)
        and g.mode == "search"
        and set(g.flags) <= {"ignorecase"}
        and g.input.strip() == _RESPONSE
    ):
        prefix = "(?i)" if g.flags else ""
        return _string_match(g, "REGEX_CONTAINS", prefix + g.pattern)
    if isinstance(g, PythonGrader) or g.type in FTWIZARD_KINDS:
        code = g.code if isinstance(g, PythonGrader) else portable_source(spec_to_dict(g))
        return {
            "reward_name": g.name,
            "code_execution_reward_scorer": {"python_code_snippet": code + _EVALUATE},
        }
    if isinstance(g, ScoreModelGrader):
        low, high = g.range
        if low < -1 or high > 1:
            raise _unsupported(
                g,
                f"Vertex clips autorater rewards to [-1, 1]; range "
                f"[{low:g}, {high:g}] does not fit",
            )
        prompt = "\n\n".join(
            _references(g, text, response="{{response}}") for m in g.input for text in m.texts()
        )
        prompt += (
            "\n\nAnswer with the score alone, a number from "
            f"{low:g} to {high:g}, inside <score></score>."
        )
        return {
            "reward_name": g.name,
            "autorater_scorer": {
                "autorater_config": {"autorater_model": g.model},
                "autorater_prompt": prompt,
                "autorater_response_parse_config": {
                    "parse_type": "REGEX_EXTRACT",
                    "regex_extract_expression": r"<score>\s*([-+0-9.eE]+)\s*</score>",
                },
                "parsed_response_conversion_scorer": {},
            },
        }
    raise _unsupported(
        g,
        {
            "text_similarity": "Vertex has no text-similarity reward; use a python grader",
            "label_model": "Vertex autoraters return a number, not one of several labels",
        }.get(g.type, "no Vertex equivalent"),
    )


def to_vertex_reward_config(spec: AnyGrader) -> dict[str, Any]:
    """``{"single_reward_config": ...}`` or ``{"composite_reward_config": ...}`` for ``spec``.

    Raises :class:`ExportUnsupported` naming the part that cannot map and why.
    """
    if not isinstance(spec, MultiGrader):
        return {"single_reward_config": _single(spec)}
    weights = parse_formula(spec.calculate_output).linear_weights()
    if weights is None or any(w <= 0 for w in weights.values()):
        raise _unsupported(
            spec,
            "Vertex combines rewards as a weighted average; the formula "
            "must be w1 * a + w2 * b + ... with positive weights",
        )
    if abs(sum(weights.values()) - 1.0) > 1e-9:
        raise _unsupported(
            spec,
            f"the weights sum to {sum(weights.values()):g}; Vertex divides "
            "by the sum of weights, so they must sum to 1 to give the same score",
        )
    return {
        "composite_reward_config": {
            "weighted_reward_configs": [
                {"reward_config": _single(spec.graders[k]), "weight": w} for k, w in weights.items()
            ]
        }
    }
