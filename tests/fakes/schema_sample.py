"""The simplest JSON value that satisfies a JSON schema: the fakes' default structured reply."""

from __future__ import annotations

from typing import Any


def sample_for_schema(schema: Any, root: dict[str, Any] | None = None) -> Any:
    """A value valid against ``schema`` (the subset structured outputs use: objects, arrays,
    scalars with enum/const/min/max, anyOf/oneOf, local ``$ref``)."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        return sample_for_schema(target, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_for_schema(schema[key][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props: dict[str, Any] = schema.get("properties", {})
        names = schema.get("required", list(props))
        return {name: sample_for_schema(props.get(name, {}), root) for name in names}
    if kind == "array":
        count = int(schema.get("minItems", 1))
        return [sample_for_schema(schema.get("items", {}), root) for _ in range(count)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = low if low is not None else schema.get("maximum", 1)
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            value = value + 1
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "sample"
