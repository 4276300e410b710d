"""The JSON Schema of OpenAI's RFT grader, cut out of OpenAI's OpenAPI spec.

The schema ships as ``openai_grader_schema.json`` beside this module (the full spec is 3 MB);
``python -m ftwizard.graders.openai_schema SPEC.yaml`` regenerates it, and a test checks that
the shipped copy matches the spec in the research folder.

One patch is made, and it is documented by OpenAI's own guide: the spec types ``multi.graders``
as a single grader, but the API and guide take an object of graders keyed by name.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("openai_grader_schema.json")
ROOT = "FineTuneReinforcementMethod"
_DROP = {
    "description",
    "example",
    "examples",
    "title",
    "x-oaiMeta",
    "x-stainless-const",
    "x-oaiTypeLabel",
    "x-oaiExpandable",
    "deprecated",
}


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _strip(v)
            for k, v in node.items()
            if k not in _DROP and not (isinstance(k, str) and k.startswith("x-"))
        }
    if isinstance(node, list):
        return [_strip(v) for v in node]
    if isinstance(node, str) and node.startswith("#/components/schemas/"):
        return "#/$defs/" + node.rsplit("/", 1)[1]
    return node


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def build_grader_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The RFT grader schema (``method.reinforcement.grader``) with every schema it references."""
    schemas = openapi["components"]["schemas"]
    wanted = {ROOT, "GraderLabelModel"}
    todo = list(wanted)
    while todo:
        found: set[str] = set()
        _refs(schemas[todo.pop()], found)
        for name in found - wanted:
            wanted.add(name)
            todo.append(name)
    defs = {name: _strip(schemas[name]) for name in sorted(wanted)}
    multi = defs["GraderMulti"]["properties"]
    multi["graders"] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": multi["graders"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/$defs/RFTGrader",
        "$defs": {**defs, "RFTGrader": defs[ROOT]["properties"]["grader"]},
    }


@cache
def grader_schema() -> dict[str, Any]:
    """The shipped RFT grader schema."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def grader_schema_errors(grader: dict[str, Any]) -> list[str]:
    """Every way ``grader`` breaks OpenAI's RFT grader schema (empty when it is valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(grader_schema())
    out = []
    for err in sorted(validator.iter_errors(grader), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(grader)"
        out.append(f"{where}: {err.message[:300]}")
    return out


def main(argv: list[str]) -> int:
    """Regenerate the shipped schema from an OpenAPI YAML file."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(argv[0], encoding="utf-8") as fh:
        openapi = yaml.load(fh, Loader=loader)
    SCHEMA_FILE.write_text(
        json.dumps(build_grader_schema(openapi), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
