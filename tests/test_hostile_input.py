"""Hostile and broken input gets a message naming the file, line and field, and exit 2.

Each case here printed a Python traceback before: JSON nested 100,000 levels deep (in data, a
grader file and a session file), a lone surrogate in a data line, an output path that is a
directory, a full disk or a read-only home while saving, and ids or names over the file-name
limit.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.datasets.loading import iter_records
from ftwizard.datasets.writing import write_jsonl
from ftwizard.errors import InputError
from ftwizard.store import SESSION_FILE, SessionStore
from tests.distill.test_engine import GRADER, write_rows

DEEP = "[" * 100_000 + "]" * 100_000
GOOD_LINE = json.dumps(
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
)
# json.dumps escapes the lone surrogate as \ud800, as any JSON writer would
SURROGATE_LINE = json.dumps(
    {"messages": [{"role": "user", "content": "a\ud800b"}, {"role": "assistant", "content": "x"}]}
)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def test_a_deeply_nested_data_line_is_an_error_on_its_line(tmp_path: Path) -> None:
    data = tmp_path / "deep.jsonl"
    data.write_text(f"{GOOD_LINE}\n{DEEP}\n", encoding="utf-8")
    records = list(iter_records(data, on_error="keep"))
    assert records[0].ok
    assert records[1].line == 2 and records[1].error is not None
    assert "nested too deeply" in records[1].error
    with pytest.raises(InputError, match=r"deep\.jsonl:2: .*nested too deeply"):
        list(iter_records(data))


def test_a_deeply_nested_json_array_element_names_its_line(tmp_path: Path) -> None:
    data = tmp_path / "deep.json"
    data.write_text(f"[\n{GOOD_LINE},\n{DEEP}\n]\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"deep\.json:3: .*nested too deeply"):
        list(iter_records(data))


def test_distill_on_a_deeply_nested_line_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_rows(tmp_path / "data.jsonl", n=2)
    with data.open("a", encoding="utf-8") as fh:
        fh.write(DEEP + "\n")
    grader = tmp_path / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    code, text = _run(
        capsys, "distill", "--data", str(data), "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", str(grader), "-o", str(tmp_path / "out.jsonl"), "--estimate",
    )  # fmt: skip
    assert code == 2
    assert "data.jsonl:3" in text and "nested too deeply" in text


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_deeply_nested_grader_file_exits_2(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grader = tmp_path / f"grader{suffix}"
    grader.write_text('{"type": "string_check", "x": ' + DEEP + "}", encoding="utf-8")
    data = tmp_path / "data.jsonl"
    data.write_text(GOOD_LINE + "\n", encoding="utf-8")
    code, text = _run(capsys, "grade", "--grader", str(grader), "--data", str(data))
    assert code == 2
    assert str(grader) in text and "nested too deeply" in text


def test_a_deeply_nested_session_file_is_listed_as_a_problem_not_a_crash(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    good = store.create("good one")
    bad_dir = store.root / "bad-000000"
    bad_dir.mkdir(parents=True)
    (bad_dir / SESSION_FILE).write_text('{"schema_version": ' + DEEP + "}", encoding="utf-8")

    code, text = _run(capsys, "sessions")
    assert code == 0
    assert good.id in text
    assert "bad-000000" in text and "nested too deeply" in text

    code, text = _run(capsys, "show", "bad-000000")
    assert code == 2
    assert str(bad_dir / SESSION_FILE) in text


def test_a_lone_surrogate_is_reported_with_its_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "s.jsonl"
    data.write_text(f"{GOOD_LINE}\n{SURROGATE_LINE}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(iter_records(data))
    message = str(caught.value)
    assert "s.jsonl:2" in message and "messages[0].content" in message
    assert "surrogate" in message
    # a proper pair written as escapes is one character, and fine
    pair = json.dumps({"messages": [{"role": "user", "content": "\U0001f600"}]})
    assert "\\ud83d\\ude00" in pair
    data.write_text(pair + "\n", encoding="utf-8")
    assert [r.data["messages"][0]["content"] for r in iter_records(data)] == ["\U0001f600"]


def test_convert_skips_a_surrogate_line_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "s.jsonl"
    data.write_text(f"{GOOD_LINE}\n{SURROGATE_LINE}\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, text = _run(capsys, "convert", str(data), str(out), "--to", "trl")
    assert code == 1  # convert writes what it can and exits 1 when it skipped lines
    assert "line 2" in text and "messages[0].content" in text and "surrogate" in text
    assert out.read_text(encoding="utf-8").count("\n") == 1


def test_distill_on_a_surrogate_line_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text(SURROGATE_LINE.replace('"assistant"', '"user"') + "\n", encoding="utf-8")
    grader = tmp_path / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    code, text = _run(
        capsys, "distill", "--data", str(data), "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", str(grader), "-o", str(tmp_path / "out.jsonl"), "--estimate",
    )  # fmt: skip
    assert code == 2
    assert "data.jsonl:1" in text and "surrogate" in text


def test_a_surrogate_made_on_the_way_is_refused_by_the_writer(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"row 2 .*surrogate"):
        write_jsonl(out, [{"a": "ok"}, {"a": "\ud800"}])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_output_paths_that_are_directories_exit_2(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    data = write_rows(tmp_path / "data.jsonl", n=2)
    grader = tmp_path / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    code, text = _run(
        capsys, "distill", "--data", str(data), "--teacher", "anthropic:claude-haiku-4-5",
        "--grader", str(grader), "-o", str(folder), "--estimate",
    )  # fmt: skip
    assert code == 2 and str(folder) in text and "is a directory" in text

    session = store.create("dir test")
    code, text = _run(capsys, "export-replay", session.id, "-o", str(folder))
    assert code == 2 and str(folder) in text and "is a directory" in text

    code, text = _run(capsys, "ledger", "-o", str(folder))
    assert code == 2 and str(folder) in text and "is a directory" in text
    assert list(folder.iterdir()) == []


class _FullDisk:
    """A file handle whose writes fail the way a full disk does."""

    def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
        os.close(fd)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_saving_a_session_exits_2_and_keeps_the_old_file(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    session = store.create("before")
    path = store.session_dir(session.id) / SESSION_FILE
    before = path.read_text(encoding="utf-8")
    monkeypatch.setattr("ftwizard.files.os.fdopen", _FullDisk)

    code, text = _run(capsys, "new", "--name", "after")
    assert code == 2 and "no space left" in text

    session.name = "changed"
    with pytest.raises(InputError, match=r"session\.json: no space left"):
        store.save(session)
    assert path.read_text(encoding="utf-8") == before
    assert sorted(p.name for p in path.parent.iterdir()) == [SESSION_FILE]


def test_a_full_disk_while_writing_data_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ftwizard.files.os.fdopen", _FullDisk)
    with pytest.raises(InputError, match=r"out\.jsonl: no space left"):
        write_jsonl(tmp_path / "out.jsonl", [{"a": 1}])
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_home_exits_2_on_new(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # chmod cannot stop root, so the file system's answer is simulated where it arrives
    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("ftwizard.files.tempfile.mkstemp", read_only)
    code, text = _run(capsys, "new", "--name", "x")
    assert code == 2
    assert "read-only" in text and "FTWIZARD_HOME" in text and SESSION_FILE in text


def test_ids_and_names_over_the_file_name_limit(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    long_id = "a" * 300
    for command in ("show", "export-replay", "resume"):
        code, text = _run(capsys, command, long_id)
        assert code == 2, command
        assert "file-name limit" in text

    code, text = _run(capsys, "new", "--name", "n" * 10_000)
    assert code == 0
    session_id = text.strip()
    assert len(session_id) < 64
    assert store.load(session_id).name == "n" * 10_000
