"""Distilling with a teacher whose key is not set: the preflight names the key before any cost
question, in words that name the on-screen field, not a widget id."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button

from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.store import SessionStore
from tests.distill.test_screen import SIZE, TEACHER, choose, open_dataset, write_rows


async def test_a_keyless_teacher_is_named_before_any_cost_question(
    store: SessionStore, tmp_path: Path
) -> None:
    data = write_rows(tmp_path / "train.jsonl")
    app, _ = open_dataset(store, data, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await choose(app, pilot, distill_teacher=TEACHER)
        app.screen.query_one("#distill-run", Button).press()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        messages = [str(n.message) for n in app._notifications]
        named = [m for m in messages if "ANTHROPIC_API_KEY is not set" in m]
        assert named, messages
        assert "export ANTHROPIC_API_KEY=" in named[0]
        assert "field 'Teacher'" in named[0]
        assert all("distill-" not in m for m in messages)
