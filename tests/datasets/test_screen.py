"""The dataset step as a user drives it: check files, fix or drop problems, prepare, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Static, Switch, TabbedContent

from ftwizard.app import FtwizardApp, make_app
from ftwizard.flow import dataset_problem, start_session
from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.screens.file_picker import FilePickerScreen
from ftwizard.session import Backend, StepId
from ftwizard.store import SessionStore
from tests.view import in_view
from tests.waiting import step_opened, until

SIZE = (120, 50)


def _chat(question: str, answer: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": "Answer with one word."},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def write_jsonl(path: Path, rows: list[object]) -> Path:
    """Write rows (dicts, or raw strings for broken lines) as JSONL."""
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def good_rows() -> list[object]:
    return [_chat(f"What colour is item {i}?", ["red", "blue"][i % 2]) for i in range(24)]


async def _open_dataset(store: SessionStore) -> tuple[FtwizardApp, str]:
    session = start_session(store, "data")
    session.step = StepId.dataset
    store.save(session)
    return make_app(store=store, session_id=session.id), session.id


async def _check(app: FtwizardApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.click("#check-dataset")
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_problems_are_listed_by_line_and_block_next_until_dropped(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    rows = list(good_rows)
    rows[3] = '{"messages": [oops'
    rows[7] = {"messages": [{"role": "user", "content": "no answer"}]}
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    original = data.read_bytes()
    app, session_id = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        table = app.screen.query_one("#problems", DataTable)
        found = {(table.get_row_at(i)[1], table.get_row_at(i)[3]) for i in range(table.row_count)}
        assert (4, "invalid_json") in found
        assert (8, "example_missing_assistant_message") in found
        assert app.screen.query_one("#next", Button).disabled
        assert "error(s) remain" in _text(app, "#next-hint")

        app.screen.query_one("#drop-invalid", Switch).value = True
        await pilot.pause()
        await _check(app, pilot)
        assert app.session is not None
        result = app.session.dataset.result
        assert result is not None and result.errors == 0
        assert result.examples == 22
        assert Path(result.training_file).is_relative_to(store.session_dir(session_id))
        assert "drop invalid" in " ".join(result.notes)
    assert data.read_bytes() == original  # the user's file is never modified
    saved = store.load(session_id)
    assert saved.dataset.choice.drop_invalid
    assert dataset_problem(saved) is None


async def test_preference_data_for_sft_is_named_and_not_silently_converted(
    store: SessionStore, tmp_path: Path
) -> None:
    """Converting DPO pairs to SFT chat would drop every rejected answer: the check refuses
    and says how to do it on purpose, instead of training on half the data unasked."""
    rows = [
        {
            "input": {"messages": [{"role": "user", "content": f"Greet person {i}"}]},
            "preferred_output": [{"role": "assistant", "content": f"Hello, person {i}!"}],
            "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
        }
        for i in range(12)
    ]
    data = write_jsonl(tmp_path / "prefs.jsonl", rows)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        assert app.session is not None and app.session.dataset.result is not None
        assert app.session.dataset.result.format == "dpo"
        assert "method is SFT" in _text(app, "#next-hint")
        # The note names the moves that work, not the switch that would be refused.
        (note,) = [n for n in app.session.dataset.result.notes if "trains DPO" in n]
        assert "change the method to DPO" in note and "--preferred-only" in note
        assert "switch on conversion" not in note
        app.screen.query_one("#convert-format", Switch).value = True
        await pilot.pause()
        await _check(app, pilot)
        status = _text(app, "#dataset-status")
        assert "rejected answers" in status and "--preferred-only" in status
        assert app.session.dataset.result is None  # nothing to train on
        assert dataset_problem(app.session) is not None
        assert app.screen.query_one("#next", Button).disabled


async def test_wrong_format_for_the_method_is_named_and_can_be_converted(
    store: SessionStore, tmp_path: Path
) -> None:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Greet person {i}"},
                {"role": "assistant", "content": f"Hello, person {i}!"},
            ],
            "reference_answer": f"Hello, person {i}!",
        }
        for i in range(12)
    ]
    data = write_jsonl(tmp_path / "items.jsonl", rows)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        assert app.session is not None and app.session.dataset.result is not None
        assert app.session.dataset.result.format == "rft"
        assert "method is SFT" in _text(app, "#next-hint")
        app.screen.query_one("#convert-format", Switch).value = True
        await pilot.pause()
        await _check(app, pilot)
        result = app.session.dataset.result
        assert result is not None and result.format == "chat"
        assert result.errors == 0
        assert dataset_problem(app.session) is None


async def test_a_validation_split_is_held_out(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", good_rows)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        app.screen.query_one("#split-val", Input).value = "6"
        app.screen.query_one("#split-stratify", Input).value = ""
        await pilot.pause()
        await _check(app, pilot)
        assert app.session is not None
        result = app.session.dataset.result
        assert result is not None and result.validation_file is not None
        train = Path(result.training_file).read_text().splitlines()
        valid = Path(result.validation_file).read_text().splitlines()
        assert (len(train), len(valid)) == (18, 6)
        assert not set(train) & set(valid)


async def test_a_resumed_session_shows_the_saved_check(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    rows = [*good_rows, good_rows[0]]  # a duplicate: one error
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    app, session_id = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        await pilot.press("ctrl+q")
    again = make_app(store=store, session_id=session_id)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(again.screen, DatasetScreen)
        assert again.screen.query_one("#train-path", Input).value == str(data)
        table = again.screen.query_one("#problems", DataTable)
        assert table.get_row_at(0)[3] == "duplicate_example"
        assert "25 training examples (24 pass the checks)" in _text(again, "#dataset-summary")


async def test_editing_the_file_after_a_check_asks_for_a_new_check(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", good_rows)
    app, session_id = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
    assert dataset_problem(store.load(session_id)) is None
    write_jsonl(data, good_rows[:12])
    assert "changed since they were checked" in (dataset_problem(store.load(session_id)) or "")


async def test_selecting_a_problem_previews_its_line(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    rows = list(good_rows)
    rows[15] = {"messages": "not a list"}
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        table = app.screen.query_one("#problems", DataTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.query_one("#dataset-tabs", TabbedContent).active == "tab-preview"
        preview = _text(app, "#preview-page")
        assert preview.lstrip().startswith("16 ")
        assert "not a list" in preview


async def test_browse_opens_a_file_picker(store: SessionStore) -> None:
    app, _ = await _open_dataset(store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#browse-train")
        await pilot.pause()
        assert isinstance(app.screen, FilePickerScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)
        assert app.screen.query_one("#train-path", Input).value == ""


async def test_cost_per_call_of_base_and_tuned_model_is_shown(
    store: SessionStore, tmp_path: Path, good_rows: list[object]
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", good_rows)
    session = start_session(store, "costs", backend=Backend.openai)
    session.step = StepId.dataset
    store.save(session)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        await _check(app, pilot)
        text = _text(app, "#inference-cost")
        assert "Per call on gpt-4.1-mini-2025-04-14" in text
        assert "base $" in text and "tuned $" in text


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_typed_path_and_enter_check_the_data_then_next_has_the_focus(
    store: SessionStore, tmp_path: Path, good_rows: list[object], size: tuple[int, int]
) -> None:
    """The file box has the focus: the path typed and Enter check the file; usable data puts
    its summary in view and the focus on Next, so a second Enter goes on."""
    data = write_jsonl(tmp_path / "train.jsonl", good_rows)
    app, _ = await _open_dataset(store)
    async with app.run_test(size=size) as pilot:
        await step_opened(pilot)
        await pilot.press(*str(data), "enter")
        screen = app.screen
        nxt = screen.query_one("#next", Button)
        await until(pilot, lambda: app.focused is nxt, "focus on Next after the check", 60)
        await pilot.pause()
        assert "24 training examples" in _text(app, "#dataset-summary")
        assert in_view(screen, screen.query_one("#dataset-summary"))
        await pilot.press("enter")
        await until(pilot, lambda: getattr(app.screen, "STEP", None) is StepId.grader, "grader")
