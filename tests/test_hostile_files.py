"""Inputs that are not files, outputs that are not files, and text built to blow up a reader.

One shared way to open inputs (regular files only, bounded lines and documents), one way to
write outputs (never replace a device, FIFO or socket; write through a symlink to a file), one
YAML/JSON decoding policy (depth and alias limits): each case here is a command that exits with
a message (never a traceback, a hang or a runaway allocation).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.datasets.loading import iter_records
from ftwizard.errors import InputError
from ftwizard.inputs import MAX_LINE_BYTES, read_input_text
from ftwizard.store import SESSION_FILE, SessionStore

GOOD_LINE = json.dumps(
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
)
GRADER = "type: string_check\nname: same\ninput: '{{ sample.output_text }}'\n"
GRADER += "reference: '{{ item.answer }}'\noperation: eq\n"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data.jsonl"
    data.write_text(GOOD_LINE + "\n", encoding="utf-8")
    return data


def _grader(tmp_path: Path, text: str = GRADER) -> Path:
    grader = tmp_path / "grader.yaml"
    grader.write_text(text, encoding="utf-8")
    return grader


def _non_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jsonl"
    zero.symlink_to("/dev/zero")
    return {"a FIFO": fifo, "a character device": zero, "a directory": tmp_path}


def _commands(tmp_path: Path, bad: Path) -> list[list[str]]:
    data, grader, out = _data(tmp_path), _grader(tmp_path), str(tmp_path / "out.jsonl")
    return [
        ["validate", str(bad)],
        ["validate", str(data), "--validation", str(bad)],
        ["convert", str(bad), out, "--to", "trl"],
        ["split", str(bad), "--val", "0.5", "-o", str(tmp_path / "split")],
        ["transform", str(bad), out, "--drop-invalid"],
        ["topics", str(bad)],
        ["grade", "--grader", str(bad), "--data", str(data)],
        ["grade", "--grader", str(grader), "--data", str(bad)],
        ["--replay", str(bad)],
    ]


def test_fifos_devices_and_folders_as_inputs_are_refused_by_name(
    tmp_path: Path, store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, bad in _non_files(tmp_path).items():
        for argv in _commands(tmp_path, bad):
            started = time.monotonic()
            code, text = _run(capsys, *argv)
            assert code == 2, (argv, text)
            assert time.monotonic() - started < 10, argv  # no hang, no read to the end
            if kind != "a directory":
                assert kind in text, (argv, text)


def test_the_input_policy_refuses_before_reading(tmp_path: Path) -> None:
    fifo = _non_files(tmp_path)["a FIFO"]
    with pytest.raises(InputError, match="FIFO"):
        read_input_text(fifo)  # a FIFO with no writer would block a plain open
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(17 * 1024 * 1024)
    with pytest.raises(InputError, match="larger than the 16 MiB"):
        read_input_text(big)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InputError, match=r"latin1\.yaml:2: .*not valid UTF-8"):
        read_input_text(bad)


def test_a_line_over_the_limit_is_an_error_on_its_line_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    data = tmp_path / "long.jsonl"
    with data.open("wb") as fh:
        fh.write(GOOD_LINE.encode() + b"\n")
        fh.write(b'{"x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}\n')
        fh.write(GOOD_LINE.encode() + b"\n")
    records = list(iter_records(data, on_error="keep"))
    assert [r.line for r in records] == [1, 2, 3]
    assert records[0].ok and records[2].ok
    assert records[1].error is not None and "8 MiB" in records[1].error
    with pytest.raises(InputError, match=r"long\.jsonl:2: .*longer than 8 MiB"):
        list(iter_records(data))
    array = tmp_path / "long.json"
    array.write_bytes(b'[{"x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}]')
    with pytest.raises(InputError, match=r"long\.json:1: .*array element is longer"):
        list(iter_records(array))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_validating_a_50_mb_single_line_file_stays_small(tmp_path: Path) -> None:
    data = tmp_path / "one-line.jsonl"
    with data.open("wb") as fh:
        fh.write(b'{"messages": [{"role": "user", "content": "')
        for _ in range(50):
            fh.write(b"word " * 200_000)
        fh.write(b'"}]}')
    # VmHWM is this process's own peak; ru_maxrss would carry over the forking test's peak
    code = (
        "import re, sys\n"
        "from ftwizard.cli import main\n"
        "rc = main(['validate', sys.argv[1]])\n"
        "status = open('/proc/self/status').read()\n"
        "print('RSS', re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(data)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stderr
    assert "line 1" in done.stdout + done.stderr or "one-line.jsonl:1" in done.stderr
    rss_kib = int(done.stdout.split("RSS")[-1].split()[0])
    assert rss_kib < 500 * 1024  # was 2.6 GB; the interpreter and imports are ~150 MB


def test_outputs_never_replace_devices_fifos_or_follow_symlinks_into_replacing(
    tmp_path: Path, store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    session = store.create("out")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    to_null = tmp_path / "null-link.yaml"
    to_null.symlink_to(os.devnull)
    dangling = tmp_path / "dangling.yaml"
    dangling.symlink_to(tmp_path / "nowhere" / "x.yaml")
    targets = {"FIFO": fifo, "character device": to_null, "does not exist": dangling}
    if os.geteuid() == 0:  # a real device node of our own, as `-o /dev/full` was
        node = tmp_path / "full"
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        targets["character device "] = node
    data = _data(tmp_path)
    for why, target in targets.items():
        for argv in (
            ["export-replay", session.id, "-o", str(target)],
            ["ledger", "-o", str(target)],
            ["convert", str(data), str(target), "--to", "trl"],
        ):
            before = os.lstat(target)
            code, text = _run(capsys, *argv)
            assert code == 2, (argv, text)
            assert why.strip() in text, (argv, text)
            after = os.lstat(target)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), argv
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_symlink_to_a_file_is_written_through(
    tmp_path: Path, store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    session = store.create("through")
    real = tmp_path / "real" / "replay.yaml"
    real.parent.mkdir()
    real.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    code, _ = _run(capsys, "export-replay", session.id, "-o", str(link))
    assert code == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "actions" in real.read_text(encoding="utf-8")
    assert sorted(p.name for p in real.parent.iterdir()) == ["replay.yaml"]


def test_split_onto_a_file_or_under_one_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(GOOD_LINE.replace("hi", f"hi {i}") + "\n" for i in range(4)))
    a_file = tmp_path / "taken"
    a_file.write_text("keep me", encoding="utf-8")
    for out in (a_file, a_file / "below", a_file / "deeper" / "still"):
        code, text = _run(capsys, "split", str(data), "--val", "0.5", "-o", str(out))
        assert (code == 2 and "is a file, not a folder" in text) or "under" in text, text
    assert a_file.read_text(encoding="utf-8") == "keep me"


ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    + ["type: string_check"]
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, "aliases"),
        ("a: &x [1, *x]\ntype: string_check\n", "refers to itself"),
        ("x: " + "[" * 300 + "]" * 300 + "\ntype: string_check\n", "nested"),
        ("x:\n  " + "- " * 2000 + "a\n", "nested"),
        ('name: "\\ud800"\ntype: string_check\n', "invalid Unicode"),
    ],
)
def test_hostile_yaml_graders_exit_2_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    grader = _grader(tmp_path, text)
    started = time.monotonic()
    code, out = _run(capsys, "grade", "--grader", str(grader), "--data", str(_data(tmp_path)))
    assert code == 2
    assert str(grader) in out and message in out
    assert time.monotonic() - started < 5


def test_a_backtracking_regex_is_that_rows_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grader = _grader(
        tmp_path,
        "type: regex\nname: evil\ninput: '{{ sample.output_text }}'\npattern: '^(a|aa)+$'\n",
    )
    data = tmp_path / "rows.jsonl"
    answers = ["a" * 5000 + "!", "aaaa"]
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}]}
        for a in answers
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    started = time.monotonic()
    code, out = _run(capsys, "grade", "--grader", str(grader), "--data", str(data), "--json")
    assert time.monotonic() - started < 30
    assert code in (0, 1), out
    assert "did not finish matching" in out


@pytest.mark.parametrize(
    "formula",
    ["(" * 5000 + "same" + ")" * 5000, "-" * 5000 + "same", "same^" * 3000 + "same"],
)
def test_a_deep_formula_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], formula: str
) -> None:
    multi = {
        "type": "multi",
        "name": "m",
        "graders": {"same": {"type": "string_check", "name": "same", "input": "a",
                             "reference": "a", "operation": "eq"}},
        "calculate_output": formula,
    }  # fmt: skip
    grader = tmp_path / "multi.json"
    grader.write_text(json.dumps(multi), encoding="utf-8")
    code, out = _run(capsys, "grade", "--grader", str(grader), "--data", str(_data(tmp_path)))
    assert code == 2
    assert "calculate_output" in out or "formula" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nactions:\n" + "  " + "- " * 3000 + "x\n", "nested"),
        ('version: 1\nsession: {name: "a\\ud800b"}\nactions: []\n', "invalid Unicode"),
        ("version: 1\nactions: " + "[" * 400 + "]" * 400 + "\n", "nested"),
    ],
)
def test_hostile_replays_exit_2(
    tmp_path: Path, store: SessionStore, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    replay = tmp_path / "r.yaml"
    replay.write_text(text, encoding="utf-8")
    code, out = _run(capsys, "--replay", str(replay))
    assert code == 2
    assert str(replay) in out and message in out


def test_bad_names_and_base_models_exit_2(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    name = os.fsdecode(b"bad\xff\xfename")  # how Python hands over a non-UTF-8 argument
    code, out = _run(capsys, "new", "--name", name)
    assert code == 2 and "not valid UTF-8" in out
    for model in ("a" * 10_000, "a/" * 3000, "/" + "d" * 300 + "/model"):
        for backend in ("local", "openai"):
            code, out = _run(capsys, "new", "--backend", backend, "--base-model", model)
            assert code == 2, (backend, model[:20], out)
    assert store.list()[0] == []


def test_a_closed_pipe_ends_a_command_quietly(store: SessionStore, tmp_path: Path) -> None:
    for i in range(3):
        store.create(f"piped {i}")
    env = {**os.environ, "FTWIZARD_HOME": str(store.home), "PYTHONPATH": os.getcwd()}
    for argv in (["sessions"], ["sessions", "--json"], ["show", "latest", "--json"], ["ledger"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftwizard", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader left before the first line, as `| head -0` does
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, (argv, err)
        assert proc.returncode in (0, 141), (argv, proc.returncode)


def test_broken_and_borrowed_session_files(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    good = store.create("good")
    for name, make in (
        ("fifo-000000", lambda p: os.mkfifo(p)),
        ("zero-000000", lambda p: p.symlink_to("/dev/zero")),
    ):
        folder = store.root / name
        folder.mkdir(parents=True)
        make(folder / SESSION_FILE)
    started = time.monotonic()
    code, out = _run(capsys, "sessions")
    assert code == 0 and good.id in out
    assert "fifo-000000" in out and "FIFO" in out and "character device" in out
    assert time.monotonic() - started < 10
    code, out = _run(capsys, "show", "zero-000000")
    assert code == 2 and "character device" in out

    # a copied folder still holds the original's id: refused, naming both
    copy = store.root / "copy-000000"
    copy.mkdir()
    (copy / SESSION_FILE).write_bytes((store.root / good.id / SESSION_FILE).read_bytes())
    before = (store.root / good.id / SESSION_FILE).read_bytes()
    for argv in (("show", "copy-000000"), ("resume", "copy-000000")):
        code, out = _run(capsys, *argv)
        assert code == 2 and good.id in out and "copy-000000" in out
    assert (store.root / good.id / SESSION_FILE).read_bytes() == before


def test_leftover_save_temp_files_are_removed(store: SessionStore) -> None:
    session = store.create("tidy")
    folder = store.root / session.id
    stale = folder / f".{SESSION_FILE}.abc123.tmp"
    fresh = folder / f".{SESSION_FILE}.def456.tmp"
    stale.write_text("{", encoding="utf-8")
    fresh.write_text("{", encoding="utf-8")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    store.load(session.id)
    assert not stale.exists()
    assert fresh.exists()  # maybe a save in flight in another process
    store.save(session)
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == [fresh.name]


def test_a_batch_journal_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    from ftwizard.providers.batch_journal import BatchDoneEntry, BatchEntry, Journal

    bad = _non_files(tmp_path)
    for kind in ("a FIFO", "a character device"):
        with pytest.raises(InputError, match=kind.removeprefix("a ")):
            Journal(bad[kind]).load()
        with pytest.raises(InputError, match=kind.removeprefix("a ")):
            Journal(bad[kind]).append([BatchDoneEntry(batch_id="b1")])
    assert stat.S_ISFIFO(os.lstat(bad["a FIFO"]).st_mode)
    # a torn last line is forgiven; a bad line with lines after it is not
    journal = Journal(tmp_path / "j.jsonl")
    journal.append([BatchEntry(batch_id="b1", request_ids=["r1"], model="m")])
    with journal.path.open("ab") as fh:
        fh.write(b'{"kind": "batch_do')
    assert journal.load().batch_ids == ["b1"]
    with journal.path.open("ab") as fh:
        fh.write(b"\n" + BatchDoneEntry(batch_id="b1").model_dump_json().encode() + b"\n")
    with pytest.raises(InputError, match=r"j\.jsonl:2: journal line"):
        journal.load()
