"""Reading datasets: every storage kind streams records with the line a user would look at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.datasets.loading import (
    SourceKind,
    count_records,
    detect_source_kind,
    iter_records,
)
from ftwizard.errors import InputError
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"


def test_jsonl_records_carry_their_line_numbers() -> None:
    records = list(iter_records(DATA / "chat_valid.jsonl"))
    assert [r.line for r in records] == list(range(1, 13))
    assert records[0].data["messages"][1]["content"] == "Which bird is number 1?"


def test_bom_crlf_and_blank_lines_are_read_and_counted_like_an_editor() -> None:
    records = list(iter_records(DATA / "chat_bom_crlf.jsonl"))
    assert len(records) == 12
    # two blank lines sit after line 5, so the sixth example is on line 8
    assert [r.line for r in records][4:7] == [5, 8, 9]
    assert all(r.ok for r in records)


def test_a_bad_line_raises_by_default_naming_file_and_line() -> None:
    with pytest.raises(InputError) as info:
        list(iter_records(DATA / "invalid_json.jsonl"))
    assert info.value.line == 4
    assert "invalid_json.jsonl:4" in str(info.value)


def test_keep_yields_bad_lines_and_skip_drops_them() -> None:
    kept = list(iter_records(DATA / "invalid_json.jsonl", on_error="keep"))
    bad = [r for r in kept if not r.ok]
    assert [r.line for r in bad] == [4]
    assert bad[0].data is None and "invalid JSON" in (bad[0].error or "")
    skipped = list(iter_records(DATA / "invalid_json.jsonl", on_error="skip"))
    assert len(skipped) == len(kept) - 1


def test_json_array_elements_report_the_line_where_they_start() -> None:
    records = list(iter_records(DATA / "chat_array.json"))
    assert detect_source_kind(DATA / "chat_array.json") is SourceKind.JSON_ARRAY
    assert len(records) == 11
    # each pretty-printed element spans 16 lines; the array opens on line 1
    assert [r.line for r in records[:3]] == [2, 18, 34]


def test_json_array_larger_than_the_read_chunk_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    items = [{"prompt": "p" * 50_000, "completion": str(i)} for i in range(40)]
    path.write_text("[\n" + ",\n".join(json.dumps(x) for x in items) + "\n]")
    records = list(iter_records(path))
    assert [r.data["completion"] for r in records] == [str(i) for i in range(40)]
    assert [r.line for r in records][:3] == [2, 3, 4]


def test_broken_json_array_is_unusable_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n{"a": 1},\n{"a": \n')
    with pytest.raises(InputError) as info:
        list(iter_records(path))
    assert info.value.line == 3


def test_csv_with_mapping_quoted_newlines_and_json_cells(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    messages = json.dumps([{"role": "user", "content": "hi"}]).replace('"', '""')
    path.write_bytes(
        b"\xef\xbb\xbfquestion,answer,messages\r\n"
        b'"two\nlines",yes,"' + messages.encode() + b'"\r\n'
        b"\r\n"
        b"plain,no,[]\r\n"
    )
    records = list(iter_records(path, mapping={"prompt": "question", "completion": "answer"}))
    assert [r.line for r in records] == [2, 5]
    assert records[0].data == {
        "prompt": "two\nlines",
        "completion": "yes",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_csv_mapping_to_a_missing_column_is_unusable_and_names_the_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("q,a\nx,y\n")
    with pytest.raises(InputError) as info:
        list(iter_records(path, mapping={"prompt": "question"}, on_error="keep"))
    assert info.value.field == "question" and "'q'" in str(info.value)


def test_csv_row_with_the_wrong_number_of_cells_is_reported_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("prompt,completion\na,b\nc,d,e\nf,g\n")
    records = list(iter_records(path, on_error="keep"))
    assert [(r.line, r.ok) for r in records] == [(2, True), (3, False), (4, True)]
    assert "2" in (records[1].error or "") and "quote" in (records[1].error or "")


def test_parquet_rows_stream_with_mapping(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "data.parquet"
    table = pa.table({"q": [f"q{i}" for i in range(2500)], "a": [f"a{i}" for i in range(2500)]})
    pq.write_table(table, path, row_group_size=700)
    records = list(iter_records(path, mapping={"prompt": "q", "completion": "a"}))
    assert len(records) == 2500
    assert records[2499].line == 2500
    assert records[2499].data == {"prompt": "q2499", "completion": "a2499"}


def test_hugging_face_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "hf"
    rows = {
        "messages": [
            [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
            for i in range(5)
        ]
    }
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(folder))
    assert detect_source_kind(folder) is SourceKind.HF_DISK
    records = list(iter_records(folder))
    assert [r.line for r in records] == [1, 2, 3, 4, 5]
    assert records[4].data["messages"][1]["content"] == "a4"


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_missing_file_or_plain_directory_is_unusable(tmp_path: Path, make: str) -> None:
    path = tmp_path / "nothing.jsonl"
    if make == "directory":
        path.mkdir()
    with pytest.raises(InputError) as info:
        list(iter_records(path))
    assert info.value.exit_code == 2


def test_reading_never_changes_the_file() -> None:
    path = DATA / "chat_bom_crlf.jsonl"
    before = path.read_bytes()
    assert count_records(path) == 12
    assert path.read_bytes() == before


def test_invalid_utf8_line_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    records = list(iter_records(path, on_error="keep"))
    assert records[1].line == 2
    assert "UTF-8" in (records[1].error or "")


def test_json_array_strings_may_hold_brackets_commas_and_multibyte_text(tmp_path: Path) -> None:
    path = tmp_path / "tricky.json"
    items = [{"prompt": "a ], [ b, {c}", "completion": "é" * 700_000}, {"prompt": "ünïcode 🐦"}]
    path.write_text(
        "\ufeff[\r\n"
        + ",\r\n".join(json.dumps(x, ensure_ascii=False) for x in items)
        + "\r\n]\r\n",
        encoding="utf-8",
    )
    records = list(iter_records(path))
    assert [r.data for r in records] == items
    assert [r.line for r in records] == [2, 3]
