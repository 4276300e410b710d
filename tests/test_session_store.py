"""The session store: sessions survive crashes, old files and two processes; no keys on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ftwizard import session as session_module
from ftwizard import store as store_module
from ftwizard.flow import start_session
from ftwizard.session import Backend, Method
from ftwizard.store import (
    SESSION_FILE,
    SessionCorrupt,
    SessionLocked,
    SessionNotFound,
    SessionStore,
)

# A child process that rewrites one session as fast as it can, alternating between two
# journal sizes, so a kill lands mid-write with high probability.
_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ftwizard.store import SessionStore
    store = SessionStore(Path(sys.argv[1]))
    session = store.load(sys.argv[2])
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        session.name = f"round {n}"
        del session.journal[:]
        for i in range(2000 if n % 2 else 200):
            session.record("task", {"set": {f"w{i}": "x" * 40}})
        store.save(session)
    """
)


def test_new_session_round_trips_with_its_choices(store: SessionStore) -> None:
    created = store.create("support bot", method=Method.rft, backend=Backend.openai)
    loaded = store.load(created.id)
    assert loaded.name == "support bot"
    assert loaded.task.method is Method.rft
    assert loaded.task.backend is Backend.openai
    assert created.id.startswith("support-bot-")


def test_sessions_are_listed_newest_first(store: SessionStore) -> None:
    first = store.create("first")
    second = store.create("second")
    store.save(store.load(first.id))  # touching the first makes it the newest
    summaries, problems = store.list()
    assert [s.id for s in summaries] == [first.id, second.id]
    assert problems == []
    assert store.resolve("latest") == first.id


def test_atomic_write_survives_a_kill_mid_write(store: SessionStore) -> None:
    session = store.create("crash test")
    path = store.session_dir(session.id) / SESSION_FILE
    for attempt in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store.home), session.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stderr is not None
        if child.stdout.readline().strip() != "ready":
            child.wait(timeout=30)
            pytest.fail(f"the writer did not start: {child.stderr.read()}")
        time.sleep(0.05 + 0.04 * attempt)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        loaded = store.load(session.id)  # must parse: the old file or the new one, never half
        assert loaded.name == "crash test" or loaded.name.startswith("round ")
        assert len(loaded.journal) in (0, 1, 200, 2000)
        json.loads(path.read_text(encoding="utf-8"))


def test_older_schema_is_migrated_on_load(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Schema 0 called the session's name "title"; the migration hook renames it.
    def rename_title(data: dict[str, object]) -> dict[str, object]:
        data["name"] = data.pop("title")
        return data

    monkeypatch.setitem(store_module.MIGRATIONS, 0, rename_title)
    directory = store.root / "old-one"
    directory.mkdir(parents=True)
    (directory / SESSION_FILE).write_text(
        json.dumps({"schema_version": 0, "id": "old-one", "title": "from last year"})
    )
    loaded = store.load("old-one")
    assert loaded.name == "from last year"
    assert loaded.schema_version == session_module.SCHEMA_VERSION


def test_newer_schema_and_missing_migration_are_named(store: SessionStore) -> None:
    directory = store.root / "future"
    directory.mkdir(parents=True)
    path = directory / SESSION_FILE
    path.write_text(json.dumps({"schema_version": 99, "id": "future", "name": "x"}))
    with pytest.raises(SessionCorrupt, match="newer ftwizard") as newer:
        store.load("future")
    assert str(path) in str(newer.value)
    path.write_text(json.dumps({"schema_version": -3, "id": "future", "name": "x"}))
    with pytest.raises(SessionCorrupt, match="no migration from schema -3"):
        store.load("future")


def test_corrupt_file_is_reported_with_its_line_and_skipped_in_the_list(
    store: SessionStore,
) -> None:
    good = store.create("good")
    directory = store.root / "broken"
    directory.mkdir(parents=True)
    (directory / SESSION_FILE).write_text('{\n  "schema_version": 1,\n  "id": oops\n}\n')
    with pytest.raises(SessionCorrupt) as error:
        store.load("broken")
    assert f"{directory / SESSION_FILE}:3" in str(error.value)
    summaries, problems = store.list()
    assert [s.id for s in summaries] == [good.id]
    assert len(problems) == 1


def test_field_errors_name_the_field(store: SessionStore) -> None:
    directory = store.root / "badfield"
    directory.mkdir(parents=True)
    (directory / SESSION_FILE).write_text(
        json.dumps({"schema_version": 1, "id": "badfield", "name": "n", "task": {"method": "ppo"}})
    )
    with pytest.raises(SessionCorrupt, match=r"field 'task\.method'"):
        store.load("badfield")


def test_unknown_session_is_a_clear_error(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound, match="no session 'nope'"):
        store.load("nope")
    with pytest.raises(SessionNotFound, match="not a valid session id"):
        store.load("../etc")


def test_a_second_process_cannot_take_the_lock(store: SessionStore) -> None:
    session = store.create("locked")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from ftwizard.store import SessionStore\n"
            "lock = SessionStore(Path(sys.argv[1])).lock(sys.argv[2])\n"
            "lock.acquire()\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(store.home),
            session.id,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SessionLocked, match=f"pid {holder.pid}"):
            store.lock(session.id).acquire()
        with pytest.raises(SessionLocked):
            store.delete(session.id)
        assert store.load(session.id).name == "locked"  # reading is never blocked
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # The operating system released the dead holder's lock.
    with store.lock(session.id) as lock:
        assert lock.held


def test_delete_removes_the_session_and_its_artifacts(store: SessionStore) -> None:
    session = store.create("to delete")
    (store.artifacts_dir(session.id) / "train.jsonl").write_text("{}\n")
    store.delete(session.id)
    assert not store.session_dir(session.id).exists()
    assert store.list() == ([], [])


def test_keys_are_never_written(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    openai_key = "sk-test-" + "a1b2c3d4" * 4
    monkeypatch.setenv("OPENAI_API_KEY", openai_key)
    session = start_session(store, "keys")
    # A key pasted into a field by mistake must not reach the disk either.
    session.task.base_model = openai_key
    session.record("task", {"set": {"base-model": openai_key}})
    store.save(session)
    text = (store.session_dir(session.id) / SESSION_FILE).read_text()
    assert openai_key not in text
    assert "[redacted:OPENAI_API_KEY]" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG paths are Linux's")
def test_home_defaults_to_the_user_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FTWIZARD_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert SessionStore().home == tmp_path / "state" / "ftwizard"
