"""The dataset step with an image dataset: image tokens in the summary and the tokens tab,
and the preview draws each image with its size, format and tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent

from ftwizard.app import make_app
from ftwizard.datasets.image_preview import block_picture
from ftwizard.flow import start_session
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from tests.fakes.image_datasets import url_part, write_images
from tests.fakes.images import png


def _rows(folder: Path) -> Path:
    write_images(folder)
    rows = []
    for i in range(12):
        image = "img/missing.png" if i == 0 else ["img/red.png", "img/blue.jpg"][i % 2]
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Name the colour."},
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": f"Item {i}?"}, url_part(image)],
                    },
                    {"role": "assistant", "content": ["red", "blue"][i % 2]},
                ]
            }
        )
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("size", [(80, 24), (120, 50)])
async def test_image_rows_show_their_pictures_and_tokens(
    store: SessionStore, tmp_path: Path, size: tuple[int, int]
) -> None:
    data = _rows(tmp_path)
    session = start_session(store, "images")
    session.step = StepId.dataset
    store.save(session)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        app.screen.query_one("#check-dataset").focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        summary = str(app.screen.query_one("#dataset-summary", Static).render())
        assert "Images: 11" in summary and "image tokens" in summary
        table = app.screen.query_one("#problems", DataTable)
        assert table.get_row_at(0)[0] == 1 and table.get_row_at(0)[2] == "image_missing"
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.query_one("#dataset-tabs", TabbedContent).active == "tab-preview"
        preview = str(app.screen.query_one("#preview-page", Static).render())
        assert "does not exist" in preview  # line 1's image
        assert "PNG 8x6 RGB" in preview or "JPEG 6x8 RGB" in preview
        assert "tokens" in preview and "▀" in preview
        tokens = str(app.screen.query_one("#inference-cost", Static).render())
        assert "images: 11 in 11 examples" in tokens


def test_block_picture_keeps_colours_and_fits_its_box() -> None:
    picture = block_picture(png((100, 40), (10, 200, 30)), width=20, max_rows=4)
    lines = picture.plain.splitlines()
    assert len(lines) <= 4 and all(len(line) <= 20 for line in lines)
    assert "rgb(10,200,30)" in str(picture.spans[0].style)


async def test_a_terminal_with_graphics_gets_the_picture_widget(
    store: SessionStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("textual_image")
    from textual_image.widget import HalfcellImage

    from ftwizard.widgets import terminal_image

    # What prepare() records on a Kitty or Sixel terminal; half cells draw under Pilot too.
    monkeypatch.setattr(terminal_image, "_widget_class", HalfcellImage)
    data = _rows(tmp_path)
    session = start_session(store, "images")
    session.step = StepId.dataset
    store.save(session)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        app.screen.query_one("#train-path", Input).value = str(data)
        app.screen.query_one("#check-dataset").focus()
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.screen.show_preview(2)
        await pilot.pause()
        box = app.screen.query_one("#preview-image")
        assert [type(w) for w in box.children] == [HalfcellImage]
        preview = str(app.screen.query_one("#preview-page", Static).render())
        assert "JPEG 6x8 RGB" in preview and "▀" not in preview  # the caption, no blocks


def test_prepare_is_a_no_op_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from ftwizard.widgets import terminal_image

    monkeypatch.setattr(terminal_image, "_widget_class", None)
    terminal_image.prepare()  # stdout is not a terminal under pytest
    assert not terminal_image.graphics_available()
    assert terminal_image.picture_widget(png()) is None
