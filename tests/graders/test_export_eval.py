"""Eval exports (OpenAI ``testing_criteria``) checked against the published OpenAPI spec."""

from __future__ import annotations

from typing import Any

import pytest

from ftwizard.graders.export_openai import (
    ExportUnsupported,
    openai_schema_problems,
    to_openai_grader,
)
from ftwizard.graders.loading import load_grader, parse_grader
from ftwizard.graders.spec import spec_to_dict
from tests.graders.test_export import EXACT, GALLERY, OUT, SPEC_YAML


def _eval_criterion_errors(criterion: dict[str, Any]) -> list[str]:
    """Where ``criterion`` breaks the spec's ``CreateEvalRequest.testing_criteria`` item schema."""
    import jsonschema
    import yaml

    with SPEC_YAML.open(encoding="utf-8") as fh:
        openapi = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    items = openapi["components"]["schemas"]["CreateEvalRequest"]["properties"]
    schema = {**items["testing_criteria"]["items"], "components": openapi["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message[:200] for e in validator.iter_errors(criterion)]


@pytest.mark.skipif(not SPEC_YAML.exists(), reason="OpenAI spec not beside the repository")
@pytest.mark.parametrize("name", sorted(p.name for p in GALLERY.glob("*.yaml")))
def test_every_eval_export_matches_the_specs_testing_criteria(name: str) -> None:
    spec = load_grader(GALLERY / name)
    try:
        exported = to_openai_grader(spec, purpose="eval")
    except ExportUnsupported as exc:
        # refused with a reason: only what evals cannot hold
        assert "multi grader" in str(exc) or "pass_threshold" in str(exc)
        return
    assert _eval_criterion_errors(exported) == []


@pytest.mark.skipif(not SPEC_YAML.exists(), reason="OpenAI spec not beside the repository")
def test_an_eval_text_similarity_without_pass_threshold_is_refused() -> None:
    spec = parse_grader(
        {
            "type": "text_similarity",
            "name": "sim",
            "input": OUT,
            "reference": "{{item.r}}",
            "evaluation_metric": "bleu",
        }
    )
    # what the export used to produce is invalid against the spec ...
    assert _eval_criterion_errors(spec_to_dict(spec)) != []
    # ... so it is refused, naming the field
    with pytest.raises(ExportUnsupported, match="pass_threshold"):
        to_openai_grader(spec, purpose="eval")
    fixed = parse_grader({**spec_to_dict(spec), "pass_threshold": 0.5})
    assert _eval_criterion_errors(to_openai_grader(fixed, purpose="eval")) == []


def test_a_multi_grader_is_refused_for_evals_but_not_for_rft() -> None:
    multi = parse_grader(
        {
            "type": "multi",
            "name": "m",
            "graders": {"ex": EXACT},
            "calculate_output": "ex",
        }
    )
    with pytest.raises(ExportUnsupported, match="no multi grader"):
        to_openai_grader(multi, purpose="eval")
    assert openai_schema_problems(to_openai_grader(multi)) == []
