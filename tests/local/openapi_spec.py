"""Validate what the local server answers against OpenAI's published OpenAPI spec.

``spec_validator("CreateChatCompletionResponse")`` is a JSON Schema (2020-12) validator for that
component of ``/work/shared/research/specs/openai-openapi-2026-08.yaml``, its ``$ref`` s resolved
inside the spec.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.openapi import OPENAI_SPEC, schema_errors, validator


def spec_validator(component: str) -> Any:
    """A validator for ``#/components/schemas/<component>`` of the spec."""
    return validator(OPENAI_SPEC, {"$ref": f"#/components/schemas/{component}"})


def assert_matches_spec(component: str, body: Any) -> None:
    """Fail with every schema error when ``body`` is not a valid ``component``."""
    errors = schema_errors(OPENAI_SPEC, {"$ref": f"#/components/schemas/{component}"}, body)
    assert not errors, "\n".join(errors)


__all__ = ["assert_matches_spec", "spec_validator"]
