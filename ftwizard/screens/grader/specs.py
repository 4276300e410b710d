"""What the grader step's forms stand for: styles, and the specs the forms generate."""

from __future__ import annotations

from typing import Any

import yaml

from ftwizard.json_input import load_yaml

STYLE_LABELS: dict[str, str] = {
    "judge": "LLM-as-judge - a model scores answers against your rubric",
    "script": "Script - Python grade(sample, item) returns a score from 0 to 1",
    "builtin": "Built-in check - exact answer, numbers, regex, JSON, ranking",
}

_JUDGE_USER_TEMPLATE = (
    "Reference answer: {{item.reference_answer}}\nAnswer to grade: {{sample.output_text}}"
)
_MODEL_TYPES = ("score_model", "label_model")


def style_of(spec: dict[str, Any]) -> str:
    """The screen style (judge, script or builtin) that edits a spec of this type."""
    kind = spec.get("type")
    if kind in _MODEL_TYPES:
        return "judge"
    if kind == "python":
        return "script"
    return "builtin"


def judge_yaml(model: str, rubric: str) -> str:
    """The score_model spec (as YAML) the judge form stands for."""
    spec = {
        "type": "score_model",
        "name": "rubric judge",
        "model": model,
        "range": [0, 1],
        "sampling_params": {"temperature": 0},
        "input": [
            {"role": "system", "content": rubric},
            {"role": "user", "content": _JUDGE_USER_TEMPLATE},
        ],
    }
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def script_yaml(source: str) -> str:
    """The python spec (as YAML) the script editor stands for."""
    return yaml.safe_dump(
        {"type": "python", "name": "my script", "source": source},
        sort_keys=False,
        allow_unicode=True,
    )


def parse_spec(text: str) -> dict[str, Any]:
    """The spec text as a mapping, or ``{}`` while it is not valid YAML of a mapping."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
