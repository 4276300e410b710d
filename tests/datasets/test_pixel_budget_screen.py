"""The dataset step on the images quickstart's data, driven by keys: the summary names the
training and the validation counts apart (48 validation rows never read as "192 valid"), and the
pixel budget typed on the Prepare tab is what the image tokens, the training estimate and local
training all use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, TabbedContent

from ftwizard.app import FtwizardApp, make_app
from ftwizard.deploy.model_card import _data_rows
from ftwizard.flow import start_session
from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.session import Backend, StepId
from ftwizard.store import SessionStore
from ftwizard.training.plan import current_hyperparameters, estimate_training

SHAPES = Path(__file__).resolve().parents[2] / "examples" / "data" / "shapes"
SIZES = [(80, 24), pytest.param((120, 50), marks=pytest.mark.slow)]


def open_shapes(store: SessionStore) -> tuple[FtwizardApp, str]:
    session = start_session(store, "shapes", backend=Backend.local, base_model="builtin-tiny-vl")
    session.step = StepId.dataset
    session.dataset.choice.train_path = str(SHAPES / "train.jsonl")
    session.dataset.choice.valid_path = str(SHAPES / "valid.jsonl")
    store.save(session)
    return make_app(store=store, session_id=session.id), session.id


def screen(app: FtwizardApp) -> DatasetScreen:
    assert isinstance(app.screen, DatasetScreen)
    return app.screen


async def check_by_keys(app: FtwizardApp, pilot: Pilot[Any]) -> None:
    screen(app).query_one("#check-dataset").focus()
    await pilot.pause()
    await pilot.press("enter")
    for _ in range(50):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not screen(app).busy:
            return
    raise AssertionError("the check did not finish")


@pytest.mark.parametrize("size", SIZES)
async def test_counts_are_named_apart_and_the_pixel_budget_is_one_setting(
    store: SessionStore, size: tuple[int, int]
) -> None:
    app, session_id = open_shapes(store)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await check_by_keys(app, pilot)
        summary = str(screen(app).query_one("#dataset-summary", Static).render())
        assert "192 training examples (all pass the checks), 48 validation examples" in summary
        assert "192 valid" not in summary
        assert app.session is not None
        result = app.session.dataset.result
        assert result is not None
        assert (result.examples, result.valid_examples, result.validation_examples) == (
            192,
            192,
            48,
        )
        # The built-in model's own processor: 56x56 px pictures, 4 tokens each.
        assert result.image_tokens == 192 * 4
        assert "3,136 max pixels" in summary

        screen(app).query_one("#dataset-tabs", TabbedContent).active = "tab-prepare"
        await pilot.pause()
        field = screen(app).query_one("#max-pixels", Input)
        field.focus()
        await pilot.pause()
        await pilot.press("7", "8", "4")
        await pilot.pause()
        assert app.session.dataset.choice.max_pixels == 784
        assert app.session.dataset.result is None  # the counts changed: check again
        await check_by_keys(app, pilot)
        result = app.session.dataset.result
        assert result is not None and result.image_tokens == 192
        assert "784 max pixels" in str(screen(app).query_one("#dataset-summary", Static).render())
        assert "192 of the tokens per epoch are 192 images" in estimate_training(app.session).basis
        # Local training resizes with the same budget the tokens were counted with.
        assert current_hyperparameters(app.session)["max_pixels"] == 784

    saved = store.load(session_id)
    assert saved.dataset.choice.max_pixels == 784
    card = "\n".join(_data_rows(saved))
    assert "- training: 192 examples" in card and "- validation: 48 examples" in card

    # Resumed, the field shows the budget again; emptied, the model's own applies.
    again = make_app(store=store, session_id=session_id)
    async with again.run_test(size=size) as pilot:
        await pilot.pause()
        screen(again).query_one("#dataset-tabs", TabbedContent).active = "tab-prepare"
        await pilot.pause()
        field = screen(again).query_one("#max-pixels", Input)
        assert field.value == "784"
        field.focus()
        await pilot.pause()
        await pilot.press("end", "backspace", "backspace", "backspace")
        await pilot.pause()
        assert again.session is not None
        assert again.session.dataset.choice.max_pixels is None
        assert current_hyperparameters(again.session)["max_pixels"] is None


async def test_a_pixel_budget_below_one_patch_is_not_taken(store: SessionStore) -> None:
    app, _ = open_shapes(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen(app).query_one("#dataset-tabs", TabbedContent).active = "tab-prepare"
        await pilot.pause()
        screen(app).query_one("#max-pixels", Input).focus()
        await pilot.pause()
        await pilot.press("5", "0")
        await pilot.pause()
        assert app.session is not None
        assert app.session.dataset.choice.max_pixels is None
