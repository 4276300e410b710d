"""The dataset summary agrees with its Problems table, which names the file of each problem;
a changed choice does not leave the last check's result standing as if it applied."""

from __future__ import annotations

import re
from pathlib import Path

from textual.widgets import DataTable, Input, Static, Switch

from ftwizard.store import SessionStore
from tests.datasets.test_screen import _chat, _check, _open_dataset, write_jsonl

SIZE = (120, 50)


def _text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(selector, Static).render())


async def test_the_status_counts_what_the_table_lists_per_file(
    store: SessionStore, tmp_path: Path
) -> None:
    rows: list[object] = [_chat(f"What colour is item {i}?", "red") for i in range(20)]
    rows.append(rows[0])  # a duplicate: a warning in the training file
    valid: list[object] = [_chat(f"Which colour has thing {i}?", "blue") for i in range(6)]
    valid += [valid[0], valid[1]]  # two duplicates in the validation file
    train_file = write_jsonl(tmp_path / "train.jsonl", rows)
    valid_file = write_jsonl(tmp_path / "valid.jsonl", valid)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(train_file)
        app.screen.query_one("#valid-path", Input).value = str(valid_file)
        await pilot.pause()
        await _check(app, pilot)
        status = _text(app, "#dataset-status")
        table = app.screen.query_one("#problems", DataTable)
        listed: dict[str, int] = {}
        for i in range(table.row_count):
            name = str(table.get_row_at(i)[0])
            listed[name] = listed.get(name, 0) + 1
        assert set(listed) == {"train.jsonl", "valid.jsonl"}
        for name, count in listed.items():
            found = re.search(rf"(\d+) errors?, (\d+) warnings? in {re.escape(name)}", status)
            assert found is not None, status
            assert int(found[1]) + int(found[2]) == count

        # Ticking Convert changes the choices: the old "Checked: ..." must not stand beside
        # a summary that says the data is not checked.
        app.screen.query_one("#convert-format", Switch).value = True
        await pilot.pause()
        assert "Changed since the last check" in _text(app, "#dataset-summary")
        assert "Checked:" not in _text(app, "#dataset-status")
        assert "Not checked yet." not in _text(app, "#dataset-summary")
