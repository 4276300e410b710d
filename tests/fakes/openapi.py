"""The published OpenAPI specs in ``../shared/research/specs/``, as JSON Schema validators.

The specs still write OpenAPI 3.0's ``nullable: true``, which JSON Schema ignores; it is turned
into ``anyOf [..., null]`` here, once, for every spec the tests validate against.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO.parent / "shared" / "research" / "specs"
OPENAI_SPEC = SPECS / "openai-openapi-2026-08.yaml"
TOGETHER_SPEC = SPECS / "together-openapi-2026-04.yaml"


@functools.cache
def spec(path: Path) -> dict[str, Any]:
    """The spec at ``path``, parsed."""
    import yaml

    with path.open(encoding="utf-8") as fh:
        return dict(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _components(path: Path) -> dict[str, Any]:
    return dict(_nullable(spec(path)["components"]))


def validator(path: Path, schema: dict[str, Any]) -> Any:
    """A JSON Schema (2020-12) validator for ``schema``, its ``$ref`` s resolved in the spec."""
    import jsonschema

    return jsonschema.Draft202012Validator({**_nullable(schema), "components": _components(path)})


def schema_errors(path: Path, schema: dict[str, Any], body: Any) -> list[str]:
    """Every reason ``body`` does not match ``schema`` (empty when it does), by position."""
    errors = sorted(validator(path, schema).iter_errors(body), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors]


__all__ = ["OPENAI_SPEC", "TOGETHER_SPEC", "schema_errors", "spec", "validator"]
