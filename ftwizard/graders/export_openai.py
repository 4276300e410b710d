"""Export a grader spec to OpenAI's grader JSON (RFT ``method.reinforcement.grader`` or evals).

OpenAI kinds pass through unchanged (``source_file`` is inlined). ftwizard's own kinds become
``python`` graders whose source is :mod:`ftwizard.graders.portable` plus a two-line ``grade``,
so they score on OpenAI exactly as they do locally. RFT refuses ``cosine`` (evals only) and a
top-level ``label_model`` (OpenAI accepts it only inside ``multi``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from ftwizard.errors import InputError
from ftwizard.graders import portable
from ftwizard.graders.spec import (
    FTWIZARD_KINDS,
    AnyGrader,
    LabelModelGrader,
    MultiGrader,
    PythonGrader,
    TextSimilarityGrader,
    spec_to_dict,
)

Purpose = Literal["rft", "eval"]
_DEFS = {
    "string_check": "GraderStringCheck",
    "text_similarity": "GraderTextSimilarity",
    "python": "GraderPython",
    "score_model": "GraderScoreModel",
    "label_model": "GraderLabelModel",
    "multi": "GraderMulti",
}


class ExportUnsupported(InputError):
    """A grader (or part of one) that cannot be expressed for the chosen target."""


def portable_source(spec: dict[str, Any], entry: str = "grade") -> str:
    """Self-contained Python defining ``grade(sample, item)`` for an ftwizard kind's spec."""
    module = Path(portable.__file__).read_text(encoding="utf-8")
    literal = json.dumps(json.dumps(spec, ensure_ascii=False))
    return (
        f"{module}\n\n_FTWIZARD_SPEC = json.loads({literal})\n\n\n"
        f"def {entry}(sample, item):\n"
        f"    return float(score_custom(_FTWIZARD_SPEC, sample, item))\n"
    )


def _convert(g: AnyGrader, purpose: Purpose, top: bool) -> dict[str, Any]:
    if isinstance(g, TextSimilarityGrader) and g.evaluation_metric == "cosine" and purpose == "rft":
        raise ExportUnsupported(
            f"grader '{g.name}': the cosine metric is available in OpenAI evals only, not in "
            "reinforcement fine-tuning; choose another evaluation_metric",
            field="evaluation_metric",
        )
    if isinstance(g, LabelModelGrader) and top and purpose == "rft":
        raise ExportUnsupported(
            f"grader '{g.name}': OpenAI does not accept label_model as the top-level RFT grader; "
            "use score_model, or put the label_model inside a multi grader",
        )
    if purpose == "eval" and top and isinstance(g, MultiGrader):
        raise ExportUnsupported(
            f"grader '{g.name}': OpenAI evals have no multi grader (testing criteria are "
            "string_check, text_similarity, python, score_model and label_model); export each "
            "of its graders as a testing criterion of its own",
        )
    if purpose == "eval" and isinstance(g, TextSimilarityGrader) and g.pass_threshold is None:
        raise ExportUnsupported(
            f"grader '{g.name}': an eval's text_similarity grader needs pass_threshold "
            "(the score from which a row passes); add it",
            field="pass_threshold",
        )
    if g.type in FTWIZARD_KINDS:
        return {"type": "python", "name": g.name, "source": portable_source(spec_to_dict(g))}
    if isinstance(g, MultiGrader):
        return {
            "type": "multi",
            "name": g.name,
            "graders": {k: _convert(sub, purpose, False) for k, sub in g.graders.items()},
            "calculate_output": g.calculate_output,
        }
    data = spec_to_dict(g)
    if isinstance(g, PythonGrader):
        data["source"] = g.code
        data.pop("source_file", None)
    if purpose == "rft":
        data.pop("pass_threshold", None)
    if "range" in data:
        data["range"] = [float(x) for x in data["range"]]
    return data


IMAGE_PART = {"type": "input_image", "image_url": "{{ item.image_url }}", "detail": "auto"}
"""How a model grader is shown the row's image on OpenAI (the grader guide's ``input_image``)."""


def with_image_input(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (OpenAI grader JSON) with every model grader that shows no image given the row's
    image as an ``input_image`` part in its last user message."""
    if data.get("type") == "multi":
        graders = {k: with_image_input(g) for k, g in data["graders"].items()}
        return {**data, "graders": graders}
    if data.get("type") not in ("score_model", "label_model"):
        return data
    messages = [dict(m) for m in data.get("input", [])]
    has_image = any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "input_image" for p in m["content"])
        for m in messages
    )
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if has_image or not users:
        return data
    last = messages[users[-1]]
    content = last.get("content")
    parts = (
        [{"type": "input_text", "text": content}]
        if isinstance(content, str)
        else list(content or [])
    )
    messages[users[-1]] = {**last, "content": [*parts, dict(IMAGE_PART)]}
    return {**data, "input": messages}


def to_openai_grader(
    spec: AnyGrader, *, purpose: Purpose = "rft", with_images: bool = False
) -> dict[str, Any]:
    """The spec as OpenAI grader JSON, checked against OpenAI's schema for RFT.

    ``with_images`` (the data has images): model graders are shown each row's image.
    Raises :class:`ExportUnsupported` (exit 2) naming what cannot map and why.
    """
    data = _convert(spec, purpose, True)
    if with_images:
        data = with_image_input(data)
    if purpose == "rft":
        problems = openai_schema_problems(data)
        if problems:
            raise ExportUnsupported(
                f"grader '{spec.name}' does not match OpenAI's RFT grader schema: "
                + "; ".join(problems[:5])
            )
    return data


def openai_schema_problems(grader: dict[str, Any]) -> list[str]:
    """Where ``grader`` breaks OpenAI's RFT grader schema, with messages per field."""
    import jsonschema

    from ftwizard.graders.openai_schema import grader_schema

    schema = grader_schema()
    kind = grader.get("type")
    if kind not in _DEFS or kind == "label_model":
        allowed = ", ".join(k for k in _DEFS if k != "label_model")
        return [f"type '{kind}' is not an RFT grader type (allowed: {allowed})"]
    target = {"$ref": f"#/$defs/{_DEFS[kind]}", "$defs": schema["$defs"]}
    problems = []
    for err in jsonschema.Draft202012Validator(target).iter_errors(grader):
        where = ".".join(str(p) for p in err.absolute_path) or "(grader)"
        problems.append(f"{where}: {err.message[:200]}")
    # The per-kind check gives readable messages; the full oneOf is the final word.
    if not problems:
        problems += [
            f"(grader): {e.message[:200]}"
            for e in jsonschema.Draft202012Validator(schema).iter_errors(grader)
        ]
    return problems
