"""Previews page through big files without reading them whole."""

from __future__ import annotations

import json
from pathlib import Path

from ftwizard.datasets.preview import PagedReader
from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "datasets"


def test_first_page_reads_only_what_it_shows(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"p{i}", "completion": "c"}) + "\n" for i in range(50_000))
    )
    reader = PagedReader(path)
    page = reader.page(1, 20)
    assert [r.line for r in page] == list(range(1, 21))
    assert reader.known_lines == 20 and not reader.complete
    far = reader.page(40_001, 3)
    assert [r.data["prompt"] for r in far] == ["p40000", "p40001", "p40002"]
    assert reader.count_lines() == 50_000 and reader.complete
    assert reader.page(49_999, 10)[-1].line == 50_000


def test_pages_keep_editor_line_numbers_and_show_bad_lines() -> None:
    reader = PagedReader(DATA / "chat_bom_crlf.jsonl")
    page = reader.page(5, 3)
    assert [r.line for r in page] == [5, 8, 9]  # lines 6 and 7 are blank
    bad = PagedReader(DATA / "invalid_json.jsonl").page(4, 1)
    assert bad[0].line == 4 and not bad[0].ok


def test_json_array_pages_through_the_stream() -> None:
    page = PagedReader(DATA / "chat_array.json").page(18, 2)
    assert [r.line for r in page] == [18, 34]
