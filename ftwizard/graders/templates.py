"""Templates in a grader spec: where they are, and whether the variables they name exist."""

from __future__ import annotations

from ftwizard.graders.portable import TEMPLATE_RE, TemplateError, parse_variable
from ftwizard.graders.spec import (
    AnyGrader,
    EvalMessage,
    LabelModelGrader,
    ScoreModelGrader,
    iter_graders,
)

# What OpenAI puts in ``sample``; ftwizard fills output_text and output_json.
SAMPLE_FIELDS = ("output_text", "output_json", "output_tools", "choices", "output_audio")


def grader_templates(spec: AnyGrader) -> list[tuple[str, str]]:
    """``[(field path, template text)]`` for every templated field of ``spec`` and its parts."""
    out: list[tuple[str, str]] = []
    for prefix, g in iter_graders(spec):
        base = f"{prefix}." if prefix else ""
        for field in ("input", "reference"):
            value = getattr(g, field, None)
            if isinstance(value, str):
                out.append((base + field, value))
        if isinstance(g, ScoreModelGrader | LabelModelGrader):
            out += _message_templates(g.input, base)
    return out


def _message_templates(messages: list[EvalMessage], base: str) -> list[tuple[str, str]]:
    out = []
    for i, m in enumerate(messages):
        for text in m.texts():
            out.append((f"{base}input.{i}.content", text))
    return out


def template_variables(text: str) -> list[str]:
    """The variable expressions inside ``{{ }}`` in ``text``, in order."""
    return [m.group(1) for m in TEMPLATE_RE.finditer(text)]


def check_variable(expr: str, fields: set[str] | None) -> str | None:
    """Why ``expr`` cannot be resolved for these dataset fields, or ``None`` when it can."""
    try:
        namespace, path = parse_variable(expr)
    except TemplateError as exc:
        return str(exc)
    if not path or not isinstance(path[0], str):
        return f"'{{{{{expr}}}}}' names the whole '{namespace}'; name a field, e.g. {namespace}.x"
    if namespace == "sample" and path[0] not in SAMPLE_FIELDS:
        return (
            f"'{{{{{expr}}}}}': sample has no field '{path[0]}'; "
            f"sample fields are {', '.join(SAMPLE_FIELDS)}"
        )
    if namespace == "item" and fields is not None and path[0] not in fields:
        known = ", ".join(sorted(fields)) or "(none)"
        return f"'{{{{{expr}}}}}': the dataset has no field '{path[0]}'; its fields are {known}"
    return None


def template_problems(spec: AnyGrader, fields: set[str] | None) -> list[tuple[str, str]]:
    """``[(field path, problem)]`` for template variables that do not resolve."""
    problems = []
    for where, text in grader_templates(spec):
        if text.count("{{") != len(template_variables(text)):
            problems.append((where, f"unclosed '{{{{' in template {text!r}"))
        for expr in template_variables(text):
            why = check_variable(expr, fields)
            if why:
                problems.append((where, why))
    return problems
