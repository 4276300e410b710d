"""Grader files: what loads, and what a user is told when something is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.errors import InputError
from ftwizard.graders.formula import FormulaError, parse_formula
from ftwizard.graders.loading import check_grader_file, load_grader, parse_grader
from ftwizard.graders.portable import TemplateError, lookup, render, resolve
from ftwizard.graders.spec import MultiGrader, PythonGrader, ScoreModelGrader, StringCheckGrader


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}


def test_yaml_and_json_files_load_to_the_same_spec(tmp_path: Path) -> None:
    yaml_file = write(tmp_path, "g.yaml", "\n".join(f"{k}: '{v}'" for k, v in EXACT.items()))
    json_file = write(tmp_path, "g.json", json.dumps(EXACT))
    a = load_grader(yaml_file)
    b = load_grader(json_file)
    assert isinstance(a, StringCheckGrader)
    assert a == b
    assert a.operation == "eq"


def test_unknown_kind_names_the_kind_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "g.yaml", "name: x\ntype: string_chek\ninput: a\n")
    with pytest.raises(InputError) as err:
        load_grader(path)
    assert err.value.line == 2
    assert err.value.field == "type"
    assert err.value.path == path
    assert "unknown grader kind 'string_chek'" in str(err.value)
    assert "string_check" in str(err.value)


def test_wrong_operation_points_at_its_line_and_field(tmp_path: Path) -> None:
    text = "type: string_check\nname: x\ninput: a\nreference: b\noperation: neq\n"
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g.yaml", text))
    assert err.value.line == 5
    assert err.value.field == "operation"


def test_misspelled_field_is_reported_not_ignored(tmp_path: Path) -> None:
    text = "type: string_check\nname: x\ninput: a\nreference: b\noperation: eq\nrefrence: c\n"
    _, problems = check_grader_file(write(tmp_path, "g.yaml", text))
    assert [(p.field, p.line) for p in problems] == [("refrence", 6)]
    assert "unknown field" in problems[0].message


def test_problem_inside_a_multi_grader_names_the_sub_grader_field(tmp_path: Path) -> None:
    text = (
        "type: multi\nname: m\ncalculate_output: a\ngraders:\n  a:\n    type: ranking\n"
        "    name: r\n    input: x\n    reference: y\n    metric: precision_at_k\n"
    )
    _, problems = check_grader_file(write(tmp_path, "g.yaml", text))
    assert len(problems) == 1
    assert problems[0].field == "graders.a"
    assert problems[0].line == 5
    assert "needs k" in problems[0].message


def test_template_variable_not_in_the_dataset_fields_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "g.json", json.dumps(EXACT))
    with pytest.raises(InputError) as err:
        load_grader(path, fields={"messages", "label"})
    assert "no field 'answer'" in str(err.value)
    assert "label, messages" in str(err.value)
    assert err.value.field == "reference"
    assert load_grader(path, fields={"answer"}).name == "exact"


def test_sample_variables_are_limited_to_what_openai_provides() -> None:
    data = {**EXACT, "input": "{{sample.text}}"}
    with pytest.raises(InputError, match="sample has no field 'text'"):
        parse_grader(data)


def test_templates_in_judge_messages_are_checked_too() -> None:
    data = {
        "type": "score_model",
        "name": "judge",
        "model": "gpt-4.1-mini",
        "input": [{"role": "user", "content": "Answer: {{sample.output_text}} vs {{item.gold}}"}],
    }
    with pytest.raises(InputError) as err:
        parse_grader(data, fields={"answer"})
    assert err.value.field == "input.0.content"


def test_score_model_range_must_be_increasing() -> None:
    data = {
        "type": "score_model",
        "name": "judge",
        "model": "m",
        "input": [{"role": "user", "content": "x"}],
        "range": [1, 0],
    }
    with pytest.raises(InputError, match="low < high"):
        parse_grader(data)
    spec = parse_grader({**data, "range": [0, 10]})
    assert isinstance(spec, ScoreModelGrader)
    assert spec.range == (0.0, 10.0)


def test_label_model_passing_labels_must_be_labels() -> None:
    data = {
        "type": "label_model",
        "name": "l",
        "model": "m",
        "input": [{"role": "user", "content": "x"}],
        "labels": ["good", "bad"],
        "passing_labels": ["great"],
    }
    with pytest.raises(InputError, match="subset of labels"):
        parse_grader(data)


def test_formula_naming_an_unknown_grader_is_refused_with_the_known_names(tmp_path: Path) -> None:
    text = (
        "type: multi\nname: m\ngraders:\n  exact:\n    type: string_check\n    name: e\n"
        "    input: a\n    reference: b\n    operation: eq\ncalculate_output: 0.5 * exact + "
        "0.5 * fuzzy\n"
    )
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g.yaml", text))
    assert "unknown grader(s) fuzzy" in str(err.value)
    assert "the graders are: exact" in str(err.value)
    assert err.value.field == "calculate_output"
    assert err.value.line == 10


def test_multi_accepts_openai_list_form_keyed_by_name() -> None:
    spec = parse_grader(
        {
            "type": "multi",
            "name": "m",
            "graders": [{**EXACT, "name": "exact"}],
            "calculate_output": "exact",
        }
    )
    assert isinstance(spec, MultiGrader)
    assert list(spec.graders) == ["exact"]


def test_nested_multi_is_refused() -> None:
    inner = {"type": "multi", "name": "i", "graders": {"a": EXACT}, "calculate_output": "a"}
    with pytest.raises(InputError, match="cannot contain another multi"):
        parse_grader(
            {"type": "multi", "name": "m", "graders": {"i": inner}, "calculate_output": "i"}
        )


def test_python_syntax_error_names_the_grader_file_and_its_line(tmp_path: Path) -> None:
    text = "type: python\nname: p\nsource: |\n  def grade(sample, item):\n      return 1.0 if\n"
    path = write(tmp_path, "g.yaml", text)
    with pytest.raises(InputError) as err:
        load_grader(path)
    assert err.value.path == path
    assert err.value.line == 5
    assert "syntax error" in str(err.value)


def test_python_source_file_syntax_error_names_the_py_file(tmp_path: Path) -> None:
    write(tmp_path, "grade.py", "def grade(sample, item):\n    return (\n")
    path = write(tmp_path, "g.yaml", "type: python\nname: p\nsource_file: grade.py\n")
    with pytest.raises(InputError) as err:
        load_grader(path)
    assert err.value.path == (tmp_path / "grade.py").resolve()
    assert err.value.line == 2


def test_python_source_file_is_read_relative_to_the_grader_file(tmp_path: Path) -> None:
    write(tmp_path, "grade.py", "def grade(sample, item):\n    return 1.0\n")
    spec = load_grader(write(tmp_path, "g.yaml", "type: python\nname: p\nsource_file: grade.py\n"))
    assert isinstance(spec, PythonGrader)
    assert spec.code == "def grade(sample, item):\n    return 1.0\n"


def test_python_without_grade_function_is_refused() -> None:
    with pytest.raises(InputError, match="defines no"):
        parse_grader({"type": "python", "name": "p", "source": "def score(s, i):\n    return 1\n"})


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g.yaml", "type: python\nname: [unclosed\nsource: x\n"))
    assert err.value.line == 3


def test_invalid_regex_pattern_is_refused() -> None:
    with pytest.raises(InputError, match="not a valid regular expression"):
        parse_grader(
            {
                "type": "regex",
                "name": "r",
                "input": "{{sample.output_text}}",
                "pattern": "(unclosed",
            }
        )


# --- templates ---------------------------------------------------------------------------------

CTX = {
    "item": {"answer": "Paris", "files": ["a.py", "b.py"], "meta": {"n": 3}},
    "sample": {"output_text": "It is Paris", "output_json": {"a": {"b": [10, 20]}}},
}


def test_templates_render_nested_fields_and_list_indexes() -> None:
    assert render("{{ item.answer }} / {{item.files[1]}}", CTX) == "Paris / b.py"
    assert render("{{sample.output_json.a.b[-1]}}", CTX) == "20"
    assert render("n={{item.meta}}", CTX) == 'n={"n": 3}'


def test_a_template_that_is_one_variable_keeps_the_value_type() -> None:
    assert resolve("{{item.files}}", CTX) == ["a.py", "b.py"]
    assert resolve("{{sample.output_json.a.b[0]}}", CTX) == 10
    assert resolve("x {{item.files}}", CTX) == 'x ["a.py", "b.py"]'


def test_missing_template_value_says_where_the_path_stops() -> None:
    with pytest.raises(TemplateError, match=r"'item\.meta' has no field 'x'"):
        lookup(CTX, "item.meta.x")
    with pytest.raises(TemplateError, match=r"has no index \[5\]"):
        lookup(CTX, "item.files[5]")


# --- formula -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.5 * a + 0.5 * b", 0.5 * 1.0 + 0.5 * 0.25),
        ("2 ^ 3 ^ 2", 512.0),
        ("-2 ^ 2", -4.0),
        ("(a + b) / 2", 0.625),
        ("min(a, b, 0.1) + max(a, b)", 1.1),
        ("abs(b - a)", 0.75),
        ("floor(2.7) + ceil(0.2)", 3.0),
        ("sqrt(b) * exp(0) + log(1)", 0.5),
        ("a - b - b", 0.5),
        ("8 / 2 / 2", 2.0),
    ],
)
def test_formula_evaluates_like_arithmetic(text: str, expected: float) -> None:
    assert parse_formula(text).evaluate({"a": 1.0, "b": 0.25}) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a +", "ends too early"),
        ("a ** b", "unexpected '*'"),
        ("__import__(os)", "unknown function '__import__'"),
        ("open('x')", "unexpected character '''"),
        ("a; b", "unexpected character ';'"),
        ("sqrt(a, b)", "takes 1 argument"),
        ("(a + b", "expected ')'"),
        ("max", "is a function"),
        ("", "empty"),
    ],
)
def test_formula_refuses_anything_but_arithmetic(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as err:
        parse_formula(text)
    assert message in str(err.value)


def test_formula_error_gives_the_column() -> None:
    with pytest.raises(FormulaError) as err:
        parse_formula("a + b $ c")
    assert err.value.column == 7


def test_formula_math_errors_are_formula_errors_not_crashes() -> None:
    with pytest.raises(FormulaError, match="division by zero"):
        parse_formula("a / b").evaluate({"a": 1.0, "b": 0.0})
    with pytest.raises(FormulaError, match="undefined"):
        parse_formula("log(a)").evaluate({"a": 0.0})


def test_formula_lists_its_names_and_linear_weights() -> None:
    f = parse_formula("0.3 * a + b * 0.7 - c / 2")
    assert f.names == {"a", "b", "c"}
    assert f.linear_weights() == pytest.approx({"a": 0.3, "b": 0.7, "c": -0.5})
    assert parse_formula("a * b").linear_weights() is None


def test_json_grader_files_report_lines_too(tmp_path: Path) -> None:
    text = json.dumps({**EXACT, "operation": "contains"}, indent=2)
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g.json", text))
    assert err.value.field == "operation"
    assert err.value.line == text.splitlines().index('  "operation": "contains"') + 1


def test_invalid_json_reports_the_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g.json", '{\n  "type": "python",\n  "name": \n}\n'))
    assert err.value.line == 4
    assert "invalid JSON" in str(err.value)


def test_every_problem_is_listed_for_the_editor(tmp_path: Path) -> None:
    text = "type: string_check\nname: ''\ninput: a\noperation: eq\n"
    _, problems = check_grader_file(write(tmp_path, "g.yaml", text))
    assert sorted((p.field, p.line) for p in problems) == [("name", 2), ("reference", 1)]


def test_loading_graders_and_the_cli_module_stay_free_of_heavy_imports() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ftwizard.graders.commands\n"
        "light = [m for m in ('pydantic', 'yaml') if m in sys.modules]\n"
        "import ftwizard.graders.runner, ftwizard.graders.loading, ftwizard.graders.export_trl\n"
        "import ftwizard.graders.export_openai, ftwizard.graders.export_vertex\n"
        "heavy = [m for m in ('textual', 'nltk', 'rouge_score', 'rapidfuzz', 'jsonschema',\n"
        "         'google.genai', 'torch') if m in sys.modules]\n"
        "print(light, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('type: python\nname: p\nsource: "def grade(s, i):\\n    return (\\n"\n', 4),
        ("type: python\nname: p\nsource: def grade(s, i) return 1\n", 3),
        (json.dumps({"type": "python", "name": "p", "source": "x = (\n"}, indent=1), 4),
    ],
)
def test_syntax_errors_in_one_line_sources_point_near_the_source(
    tmp_path: Path, text: str, line: int
) -> None:
    suffix = ".json" if text.startswith("{") else ".yaml"
    with pytest.raises(InputError) as err:
        load_grader(write(tmp_path, "g" + suffix, text))
    assert "syntax error" in str(err.value)
    assert err.value.line == line
