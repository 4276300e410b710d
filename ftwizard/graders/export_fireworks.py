"""Export a grader spec as a Fireworks evaluator (the reward of a Fireworks RFT job).

A Fireworks evaluator is Python that Fireworks runs on every rollout: our export is one file,
``main.py``, whose ``evaluate(messages, ground_truth=None, **kwargs)`` returns
``{"score": float in [0, 1], "reason": str}``. The dataset row's other fields arrive as keyword
arguments; they become the grader's ``item`` (``ground_truth`` included), and the last
assistant message becomes ``sample.output_text`` (and ``sample.output_json`` when it parses),
so the templates (``{{ item.answer }}``, ``{{ sample.output_text }}``) mean what they mean
locally.

What can be exported, and why the rest cannot:

- ftwizard's own kinds (ranking, numeric, regex, json_match, json_schema): the rules are
  :mod:`ftwizard.graders.portable` pasted verbatim (stdlib only; ``json_schema`` also lists
  ``jsonschema`` in the evaluator's requirements), so they score exactly as they do locally;
- ``python``: the user's ``grade(sample, item)`` runs as written;
- ``string_check``: its four operations are a few lines of stdlib Python;
- not ``score_model`` / ``label_model``: they call a judge model, which inside Fireworks'
  sandbox would need an API key for that model; ftwizard never ships a key into someone
  else's runtime, so grade with a python/builtin grader or run the judge locally;
- not ``text_similarity``: BLEU, ROUGE, METEOR and fuzzy matching need packages (nltk,
  rouge-score, rapidfuzz) whose versions we cannot pin to ours inside the sandbox, so the
  scores would not match the dry run's;
- not ``multi``: its ``calculate_output`` formula runs on ftwizard's formula engine, which is
  not part of the portable source.

The job references the evaluator by name (``accounts/ACCOUNT/evaluators/ID``); Fireworks
builds it (``BUILDING`` -> ``ACTIVE``) before the job may start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.graders import portable
from ftwizard.graders.export_openai import ExportUnsupported
from ftwizard.graders.spec import (
    FTWIZARD_KINDS,
    AnyGrader,
    PythonGrader,
    StringCheckGrader,
    spec_to_dict,
)

ENTRY_FILE = "main.py"
ENTRY_FUNC = "evaluate"
EXPORTABLE_KINDS = (*FTWIZARD_KINDS, "python", "string_check")

_WHY_NOT = {
    "score_model": "it calls a judge model, which inside Fireworks would need that model's "
    "API key; ftwizard does not ship keys into another runtime",
    "label_model": "it calls a judge model, which inside Fireworks would need that model's "
    "API key; ftwizard does not ship keys into another runtime",
    "text_similarity": "its metrics need nltk / rouge-score / rapidfuzz, whose versions in "
    "Fireworks' sandbox cannot be pinned to ours, so scores would differ from the dry run's",
    "multi": "its calculate_output formula runs on ftwizard's formula engine, which is not "
    "part of the portable source; export one grader, or write the combination as python",
}

_STRING_CHECK = """

def _ftwizard_string_check(operation, text, reference):
    if operation == "eq":
        return 1.0 if text == reference else 0.0
    if operation == "ne":
        return 1.0 if text != reference else 0.0
    if operation == "like":
        return 1.0 if reference in text else 0.0
    return 1.0 if reference.lower() in text.lower() else 0.0


def grade(sample, item):
    ctx = {"item": item, "sample": sample}
    return _ftwizard_string_check(
        _FTWIZARD_SPEC["operation"],
        render(_FTWIZARD_SPEC["input"], ctx),
        render(_FTWIZARD_SPEC["reference"], ctx),
    )
"""

_CUSTOM = """

def grade(sample, item):
    return float(score_custom(_FTWIZARD_SPEC, sample, item))
"""

_EVALUATE = '''

def _ftwizard_field(message, name):
    if isinstance(message, dict):
        return message.get(name)
    return getattr(message, name, None)


def _ftwizard_sample(messages):
    text = ""
    for message in reversed(list(messages or [])):
        if _ftwizard_field(message, "role") == "assistant":
            content = _ftwizard_field(message, "content")
            if isinstance(content, list):
                content = "".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            text = "" if content is None else str(content)
            break
    try:
        output_json = json.loads(text)
    except ValueError:
        output_json = None
    if not isinstance(output_json, (dict, list)):
        output_json = None
    return {"output_text": text, "output_json": output_json}


def evaluate(messages, ground_truth=None, **kwargs):
    """Fireworks entry point: score the last assistant message of one rollout in [0, 1]."""
    item = dict(kwargs)
    if ground_truth is not None:
        item["ground_truth"] = ground_truth
    try:
        score = float(grade(_ftwizard_sample(messages), item))
    except Exception as exc:  # a row whose data breaks the rule scores 0, with the reason
        return {"score": 0.0, "reason": f"{type(exc).__name__}: {exc}"}
    if score != score:
        return {"score": 0.0, "reason": "the grader returned NaN"}
    return {"score": min(1.0, max(0.0, score)), "reason": ""}
'''


class FireworksEvaluator(BaseModel):
    """The evaluator's files and the create request Fireworks takes for it."""

    evaluator_id: str
    display_name: str
    description: str
    files: dict[str, str]
    requirements: list[str] = Field(default_factory=list)

    def create_body(self) -> dict[str, Any]:
        """The body of ``POST /v1/accounts/ACCOUNT/evaluatorsV2``."""
        return {
            "evaluatorId": self.evaluator_id,
            "evaluator": {
                "displayName": self.display_name,
                "description": self.description,
                "criteria": [
                    {
                        "type": "CODE_SNIPPETS",
                        "name": self.evaluator_id,
                        "description": self.description,
                        "codeSnippets": {
                            "language": "python",
                            "fileContents": dict(self.files),
                            "entryFile": ENTRY_FILE,
                            "entryFunc": ENTRY_FUNC,
                        },
                    }
                ],
                "requirements": "\n".join(self.requirements),
                "entryPoint": f"{ENTRY_FILE}::{ENTRY_FUNC}",
            },
        }


def _portable_with(spec: dict[str, Any], grade_source: str) -> str:
    module = Path(portable.__file__).read_text(encoding="utf-8")
    literal = json.dumps(json.dumps(spec, ensure_ascii=False))
    return f"{module}\n\n_FTWIZARD_SPEC = json.loads({literal})\n{grade_source}"


def evaluator_source(spec: AnyGrader) -> str:
    """``main.py`` of the evaluator for ``spec``; :class:`ExportUnsupported` (exit 2) naming
    the kind and why when it cannot be exported."""
    if spec.type in FTWIZARD_KINDS:
        body = _portable_with(spec_to_dict(spec), _CUSTOM)
    elif isinstance(spec, StringCheckGrader):
        body = _portable_with(spec_to_dict(spec), _STRING_CHECK)
    elif isinstance(spec, PythonGrader):
        body = "import json\n\n" + spec.code
    else:
        why = _WHY_NOT.get(spec.type, "Fireworks has no equivalent")
        raise ExportUnsupported(
            f"grader '{spec.name}' ({spec.type}) cannot become a Fireworks evaluator: {why}. "
            f"Exportable kinds: {', '.join(EXPORTABLE_KINDS)}",
            field="type",
        )
    return body + _EVALUATE


def to_fireworks_evaluator(spec: AnyGrader, *, evaluator_id: str) -> FireworksEvaluator:
    """The Fireworks evaluator for ``spec``, with id ``evaluator_id``."""
    requirements = ["jsonschema"] if spec.type == "json_schema" else []
    return FireworksEvaluator(
        evaluator_id=evaluator_id,
        display_name=f"ftwizard {spec.name}"[:128],
        description=f"ftwizard grader '{spec.name}' ({spec.type}), exported by ftwizard",
        files={ENTRY_FILE: evaluator_source(spec)},
        requirements=requirements,
    )


__all__ = [
    "ENTRY_FILE",
    "ENTRY_FUNC",
    "EXPORTABLE_KINDS",
    "FireworksEvaluator",
    "evaluator_source",
    "to_fireworks_evaluator",
]
