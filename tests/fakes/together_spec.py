"""Validate Together requests and replies against its published OpenAPI spec.

``/work/shared/research/specs/together-openapi-2026-04.yaml`` (togethercomputer/openapi,
snapshot of 2026-04-28). :func:`request_errors` checks a JSON request body against a path's
``requestBody`` schema, :func:`response_errors` a reply against the path's 200 schema, both with
the spec's ``$ref`` s resolved inside it and OpenAPI 3.0's ``nullable`` turned into JSON Schema.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SPEC_YAML = REPO.parent / "shared" / "research" / "specs" / "together-openapi-2026-04.yaml"


@functools.cache
def _spec() -> dict[str, Any]:
    import yaml

    with SPEC_YAML.open(encoding="utf-8") as fh:
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
def _components() -> dict[str, Any]:
    return dict(_nullable(_spec()["components"]))


def _errors(schema: dict[str, Any], body: Any) -> list[str]:
    import jsonschema

    full = {**_nullable(schema), "components": _components()}
    validator = jsonschema.Draft202012Validator(full)
    return [
        f"{list(e.path)}: {e.message}"
        for e in sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    ]


def _operation(path: str, method: str) -> dict[str, Any]:
    return dict(_spec()["paths"][path][method.lower()])


def request_errors(path: str, method: str, body: Any) -> list[str]:
    """Why ``body`` is not a valid JSON request for ``method path`` (empty when it is)."""
    request_body = _operation(path, method).get("requestBody", {})
    schema = request_body.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return [] if body is None else ["this operation takes no JSON body"]
    if body is None:
        return ["a JSON body is required"] if request_body.get("required") else []
    return _errors(schema, body)


def response_errors(path: str, method: str, body: Any, status: int = 200) -> list[str]:
    """Why ``body`` is not the reply the spec defines for ``method path`` and ``status``."""
    response = _operation(path, method)["responses"].get(str(status), {})
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    return _errors(schema, body)


__all__ = ["SPEC_YAML", "request_errors", "response_errors"]
