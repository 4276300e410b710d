"""Validate Together requests and replies against its published OpenAPI spec.

``/work/shared/research/specs/together-openapi-2026-04.yaml`` (togethercomputer/openapi,
snapshot of 2026-04-28). :func:`request_errors` checks a JSON request body against a path's
``requestBody`` schema, :func:`response_errors` a reply against the path's 200 schema, both with
the spec's ``$ref`` s resolved inside it and OpenAPI 3.0's ``nullable`` turned into JSON Schema.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.openapi import TOGETHER_SPEC, schema_errors, spec


def _operation(path: str, method: str) -> dict[str, Any]:
    return dict(spec(TOGETHER_SPEC)["paths"][path][method.lower()])


def request_errors(path: str, method: str, body: Any) -> list[str]:
    """Why ``body`` is not a valid JSON request for ``method path`` (empty when it is)."""
    request_body = _operation(path, method).get("requestBody", {})
    schema = request_body.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return [] if body is None else ["this operation takes no JSON body"]
    if body is None:
        return ["a JSON body is required"] if request_body.get("required") else []
    return schema_errors(TOGETHER_SPEC, schema, body)


def response_errors(path: str, method: str, body: Any, status: int = 200) -> list[str]:
    """Why ``body`` is not the reply the spec defines for ``method path`` and ``status``."""
    response = _operation(path, method)["responses"].get(str(status), {})
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    return schema_errors(TOGETHER_SPEC, schema, body)


__all__ = ["request_errors", "response_errors"]
