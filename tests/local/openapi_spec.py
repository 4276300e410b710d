"""Validate what the local server answers against OpenAI's published OpenAPI spec.

``spec_validator("CreateChatCompletionResponse")`` is a JSON Schema (2020-12) validator for that
component of ``/work/shared/research/specs/openai-openapi-2026-08.yaml``, its ``$ref`` s resolved
inside the spec.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SPEC_YAML = REPO.parent / "shared" / "research" / "specs" / "openai-openapi-2026-08.yaml"


@functools.cache
def _spec() -> dict[str, Any]:
    import yaml

    with SPEC_YAML.open(encoding="utf-8") as fh:
        return dict(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def _nullable(node: Any) -> Any:
    # The spec still writes OpenAPI 3.0's ``nullable: true``, which JSON Schema ignores.
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _components() -> dict[str, Any]:
    return dict(_nullable(_spec()["components"]))


def spec_validator(component: str) -> Any:
    """A validator for ``#/components/schemas/<component>`` of the spec."""
    import jsonschema

    schema = {"$ref": f"#/components/schemas/{component}", "components": _components()}
    return jsonschema.Draft202012Validator(schema)


def assert_matches_spec(component: str, body: Any) -> None:
    """Fail with every schema error when ``body`` is not a valid ``component``."""
    errors = sorted(spec_validator(component).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


__all__ = ["SPEC_YAML", "assert_matches_spec", "spec_validator"]
