"""Exports: OpenAI RFT grader JSON (checked against OpenAI's spec), Vertex reward configs, TRL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.export_openai import (
    ExportUnsupported,
    openai_schema_problems,
    to_openai_grader,
)
from ftwizard.graders.export_trl import make_reward_func
from ftwizard.graders.export_vertex import to_vertex_reward_config
from ftwizard.graders.loading import load_grader, parse_grader
from ftwizard.graders.openai_schema import SCHEMA_FILE, build_grader_schema
from ftwizard.graders.python_pool import PythonGraderPool
from ftwizard.graders.results import Sample
from ftwizard.graders.runner import grade_rows
from tests.conftest import REPO_ROOT
from tests.scripted_judge import ScriptedJudge

REPO = REPO_ROOT
GALLERY = REPO / "examples" / "graders"
SPEC_YAML = REPO.parent / "shared" / "research" / "specs" / "openai-openapi-2026-08.yaml"
OUT = "{{sample.output_text}}"

EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": OUT,
    "reference": "{{item.answer}}",
    "operation": "eq",
}
LABEL = {
    "type": "label_model",
    "name": "lab",
    "model": "gpt-4.1-mini-2025-04-14",
    "input": [{"role": "user", "content": "Classify: {{sample.output_text}}"}],
    "labels": ["good", "bad"],
    "passing_labels": ["good"],
}


@pytest.mark.skipif(not SPEC_YAML.exists(), reason="OpenAI spec not beside the repository")
def test_shipped_schema_is_the_one_in_openais_spec() -> None:
    import yaml

    with SPEC_YAML.open(encoding="utf-8") as fh:
        openapi = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert shipped == json.loads(json.dumps(build_grader_schema(openapi)))


@pytest.mark.parametrize("name", sorted(p.name for p in GALLERY.glob("*.yaml")))
def test_every_gallery_grader_exports_to_a_valid_rft_grader(name: str) -> None:
    exported = to_openai_grader(load_grader(GALLERY / name))
    assert openai_schema_problems(exported) == []
    json.dumps(exported)  # plain JSON, ready for the API


def test_openai_kinds_pass_through_unchanged() -> None:
    assert to_openai_grader(parse_grader(EXACT)) == EXACT


def test_source_file_is_inlined_as_source() -> None:
    exported = to_openai_grader(load_grader(GALLERY / "exact_answer_python.yaml"))
    assert set(exported) == {"type", "name", "source"}
    assert exported["source"] == (GALLERY / "grade_exact.py").read_text(encoding="utf-8")


def test_label_model_is_refused_top_level_but_allowed_inside_multi() -> None:
    with pytest.raises(ExportUnsupported, match="not accept label_model as the top-level"):
        to_openai_grader(parse_grader(LABEL))
    multi = parse_grader(
        {
            "type": "multi",
            "name": "m",
            "graders": {"lab": LABEL, "ex": EXACT},
            "calculate_output": "0.5 * lab + 0.5 * ex",
        }
    )
    exported = to_openai_grader(multi)
    assert exported["graders"]["lab"]["type"] == "label_model"
    assert openai_schema_problems(exported) == []


def test_cosine_is_for_evals_only() -> None:
    spec = parse_grader(
        {
            "type": "text_similarity",
            "name": "c",
            "input": OUT,
            "reference": "{{item.r}}",
            "evaluation_metric": "cosine",
            "pass_threshold": 0.8,
        }
    )
    with pytest.raises(ExportUnsupported, match="evals only"):
        to_openai_grader(spec)
    assert to_openai_grader(spec, purpose="eval")["pass_threshold"] == 0.8


def test_schema_problems_name_the_field() -> None:
    assert openai_schema_problems({"type": "python", "name": "p"}) == [
        "(grader): 'source' is a required property"
    ]
    problems = openai_schema_problems({**EXACT, "operation": "neq"})
    assert len(problems) == 1
    assert problems[0].startswith("operation: 'neq' is not one of")
    assert openai_schema_problems({"type": "regex"})[0].startswith("type 'regex' is not")


CUSTOM_CASES: list[tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]] = [
    (
        {
            "type": "ranking",
            "name": "r",
            "input": "{{sample.output_json.files}}",
            "reference": "{{item.files}}",
            "metric": "recall_at_k",
            "k": 2,
        },
        [
            ({"files": ["a", "b", "c"]}, '{"files": ["a", "x", "b"]}'),
            ({"files": ["q"]}, '{"files": ["q"]}'),
        ],
    ),
    (
        {"type": "numeric", "name": "n", "input": OUT, "reference": "{{item.n}}", "tolerance": 0.1},
        [({"n": 3.14}, "pi is about 3.1"), ({"n": 2}, "3")],
    ),
    (
        {"type": "regex", "name": "g", "input": OUT, "pattern": "^yes\\b", "flags": ["ignorecase"]},
        [({}, "Yes, indeed"), ({}, "no")],
    ),
    (
        {
            "type": "json_match",
            "name": "j",
            "input": OUT,
            "reference": "{{item.want}}",
            "fields": ["a", "b.c"],
        },
        [({"want": {"a": 1, "b": {"c": 2}}}, '{"a": 1, "b": {"c": 3}}')],
    ),
    (
        {
            "type": "json_schema",
            "name": "s",
            "input": OUT,
            "schema": {"type": "object", "required": ["a"]},
        },
        [({}, '{"a": 1}'), ({}, "[]")],
    ),
]


@pytest.mark.parametrize(("spec", "rows"), CUSTOM_CASES, ids=lambda v: str(v)[:30])
def test_ftwizard_kinds_export_to_python_that_scores_the_same(
    spec: dict[str, Any], rows: list[tuple[dict[str, Any], str]]
) -> None:
    grader = parse_grader(spec)
    exported = to_openai_grader(grader)
    assert exported["type"] == "python"
    assert openai_schema_problems(exported) == []
    assert len(exported["source"].encode()) < 256 * 1024  # OpenAI's limit on grader code
    items = [item for item, _ in rows]
    samples = [Sample.from_output(text) for _, text in rows]
    local = [r.score for r in grade_rows(grader, items, samples)]
    with PythonGraderPool(1) as pool:
        remote = pool.grade(
            exported["source"], [(s.as_context(), i) for s, i in zip(samples, items, strict=True)]
        )
    assert [o.error for o in remote] == [None] * len(rows)
    assert [o.score for o in remote] == local


# --- Vertex -----------------------------------------------------------------------------------


def test_vertex_exact_match_uses_references() -> None:
    config = to_vertex_reward_config(parse_grader(EXACT))
    assert config == {
        "single_reward_config": {
            "reward_name": "exact",
            "string_match_reward_scorer": {
                "correct_answer_reward": 1.0,
                "wrong_answer_reward": 0.0,
                "string_match_expression": {
                    "match_operation": "EXACT_MATCH",
                    "expression": "{{references.answer}}",
                },
            },
        }
    }


def test_vertex_ne_swaps_the_rewards_and_like_is_partial_match() -> None:
    ne = to_vertex_reward_config(parse_grader({**EXACT, "operation": "ne"}))
    scorer = ne["single_reward_config"]["string_match_reward_scorer"]
    assert (scorer["correct_answer_reward"], scorer["wrong_answer_reward"]) == (0.0, 1.0)
    like = to_vertex_reward_config(parse_grader({**EXACT, "operation": "like"}))
    expression = like["single_reward_config"]["string_match_reward_scorer"]
    assert expression["string_match_expression"]["match_operation"] == "PARTIAL_MATCH"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({**EXACT, "operation": "ilike"}, "ilike with a templated reference"),
        ({**EXACT, "input": "{{item.other}}"}, "input must be {{sample.output_text}}"),
        (
            {
                "type": "text_similarity",
                "name": "t",
                "input": OUT,
                "reference": "x",
                "evaluation_metric": "bleu",
            },
            "no text-similarity reward",
        ),
        (LABEL, "not one of several labels"),
        (
            {
                "type": "multi",
                "name": "m",
                "graders": {"a": EXACT, "b": {**EXACT, "name": "b"}},
                "calculate_output": "a * b",
            },
            "weighted average",
        ),
        (
            {
                "type": "multi",
                "name": "m",
                "graders": {"a": EXACT, "b": {**EXACT, "name": "b"}},
                "calculate_output": "a + b",
            },
            "weights sum to 2",
        ),
    ],
)
def test_vertex_says_what_cannot_map(spec: dict[str, Any], why: str) -> None:
    with pytest.raises(ExportUnsupported) as err:
        to_vertex_reward_config(parse_grader(spec))
    assert why in str(err.value)
    assert "cannot map to a Vertex reward" in str(err.value)


def _vertex_evaluate(config: dict[str, Any]) -> Any:
    code = config["single_reward_config"]["code_execution_reward_scorer"]["python_code_snippet"]
    namespace: dict[str, Any] = {"__name__": "vertex_reward"}
    exec(compile(code, "<vertex>", "exec"), namespace)
    return namespace["evaluate"]


def test_vertex_code_execution_wraps_python_and_ftwizard_kinds() -> None:
    python = to_vertex_reward_config(load_grader(GALLERY / "exact_answer_python.yaml"))
    evaluate = _vertex_evaluate(python)
    example = {"contents": [], "references": {"answer": "Paris"}}
    assert evaluate(example, {"parts": [{"text": " paris "}]}) == 1.0
    assert evaluate(example, {"parts": [{"text": "Rome"}]}) == 0.0
    ranking = to_vertex_reward_config(load_grader(GALLERY / "ranking.yaml"))
    evaluate = _vertex_evaluate(ranking)
    example = {"references": {"files": ["a.py", "b.py"]}}
    assert evaluate(example, {"parts": [{"text": '{"files": ["b.py", "c.py"]}'}]}) == 0.5


def test_vertex_composite_and_score_model_validate_with_google_genai() -> None:
    types = pytest.importorskip("google.genai.types")
    judge = {
        "type": "score_model",
        "name": "j",
        "model": "gemini-2.5-flash",
        "input": [{"role": "user", "content": "Rate {{sample.output_text}} vs {{item.r}}"}],
    }
    spec = parse_grader(
        {
            "type": "multi",
            "name": "m",
            "graders": {"ex": EXACT, "j": judge},
            "calculate_output": "0.25 * ex + 0.75 * j",
        }
    )
    config = to_vertex_reward_config(spec)
    parsed = types.ReinforcementTuningSpec.model_validate(config)
    weighted = parsed.composite_reward_config.weighted_reward_configs
    assert [w.weight for w in weighted] == [0.25, 0.75]
    prompt = weighted[1].reward_config.autorater_scorer.autorater_prompt
    assert prompt.startswith("Rate {{response}} vs {{references.r}}")


def test_vertex_refuses_a_score_range_it_would_clip() -> None:
    judge = {
        "type": "score_model",
        "name": "j",
        "model": "m",
        "range": [0, 10],
        "input": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(ExportUnsupported, match="clips autorater rewards"):
        to_vertex_reward_config(parse_grader(judge))


# --- TRL ---------------------------------------------------------------------------------------


def test_trl_reward_func_grades_completions_with_dataset_columns() -> None:
    reward = make_reward_func(load_grader(GALLERY / "exact_answer.yaml"))
    try:
        assert reward.__name__ == "exact_answer"
        scores = reward(
            prompts=["q1", "q2", "q3"],
            completions=["Paris", [{"role": "assistant", "content": "Rome"}], "paris"],
            answer=["Paris", "Rome", "Paris"],
            completion_ids=[[1], [2], [3]],
            trainer_state=object(),
        )
        assert scores == [1.0, 1.0, 0.0]
    finally:
        reward.close()  # type: ignore[attr-defined]


def test_trl_reward_func_scores_a_failing_row_zero() -> None:
    spec = parse_grader(
        {"type": "python", "name": "p", "source": "def grade(s, i):\n    return 1 / int(i['d'])\n"}
    )
    reward = make_reward_func(spec)
    try:
        assert reward(["a", "b"], ["x", "y"], d=["1", "0"]) == [1.0, 0.0]
    finally:
        reward.close()  # type: ignore[attr-defined]


def test_trl_reward_func_with_a_judge() -> None:
    judge = ScriptedJudge(lambda r: '{"steps": [], "result": 0.6}')
    spec = parse_grader(
        {
            "type": "score_model",
            "name": "j",
            "model": "m",
            "input": [{"role": "user", "content": "{{item.prompt}}: {{sample.output_text}}"}],
        }
    )
    reward = make_reward_func(spec, judge=judge)
    assert reward(["why?"], ["because"]) == [0.6]
    assert judge.requests[0].messages[-1].content == "why?: because"


def test_trl_says_what_cannot_run() -> None:
    cosine = parse_grader(
        {
            "type": "text_similarity",
            "name": "c",
            "input": OUT,
            "reference": "x",
            "evaluation_metric": "cosine",
        }
    )
    with pytest.raises(ExportUnsupported, match="evals only"):
        make_reward_func(cosine)
    judge = parse_grader(
        {
            "type": "score_model",
            "name": "j",
            "model": "m",
            "input": [{"role": "user", "content": "x"}],
        }
    )
    with pytest.raises(InputError, match="needs a judge"):
        make_reward_func(judge)
