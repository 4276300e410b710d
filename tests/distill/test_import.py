"""Importing a teacher's existing answers from CSV files: matched by several keys (float
coordinates within a tolerance), checked against the ground truth, only correct rows kept,
written as Parquet with the images inside and a metadata file with the statistics."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.datasets.loading import iter_records
from tests.fakes.images import png

COLOURS = ["red", "green", "blue", "yellow", "red", "blue", "green", "red"]


def _dataset(folder: Path) -> Path:
    """Eight image rows with a site id and a (lat, lon) position as keys."""
    (folder / "img").mkdir()
    lines = []
    for i, colour in enumerate(COLOURS):
        (folder / "img" / f"{i}.png").write_bytes(png(color=(i * 20, 10, 10)))
        row = {
            "site": f"S{i % 3}",
            "lat": 45.0 + i * 0.01,
            "lon": 7.0 - i * 0.01,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": f"img/{i}.png"}},
                        {"type": "text", "text": "Which colour?"},
                    ],
                },
                {"role": "assistant", "content": colour},
            ],
        }
        lines.append(json.dumps(row))
    path = folder / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _answers(folder: Path) -> list[Path]:
    """Two CSV files; positions written with rounding noise; row 5 answered wrongly;
    row 7 absent; one answer for a place not in the dataset."""
    first = ["site,lat,lon,answer"]
    second = ["site,lat,lon,answer"]
    for i, colour in enumerate(COLOURS):
        if i == 7:
            continue
        answer = "Purple" if i == 5 else f" {colour.upper()} "
        line = f"S{i % 3},{45.0 + i * 0.01 + 3e-6:.6f},{7.0 - i * 0.01 - 2e-6:.6f},{answer}"
        (first if i < 4 else second).append(line)
    second.append("S9,10.0,10.0,red")
    paths = [folder / "a.csv", folder / "b.csv"]
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_text("\n".join(lines) + "\n")
    return paths


def test_answers_are_matched_checked_and_only_correct_rows_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path)
    a, b = _answers(tmp_path)
    out = tmp_path / "out" / "kept.parquet"
    args = ["distill-import", "--data", str(data), "--answers", str(a), "--answers", str(b)]
    args += ["--key", "site", "--key", "lat~1e-5", "--key", "lon~1e-5", "-o", str(out)]
    assert main([*args, "--json", "--keep-field", "site"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert (meta["rows"], meta["matched"], meta["correct"], meta["kept"]) == (8, 7, 6, 6)
    assert meta["match_text"] == "7 / 8 rows matched, 87.5 %"
    assert meta["accuracy_text"] == "6 / 7 correct, 85.7 %"
    assert meta["unused_answers"] == 1
    assert meta["unmatched"] == [{"line": 8, "key": {"site": "S1", "lat": 45.07, "lon": 6.93}}]
    assert json.loads(Path(f"{out}.meta.json").read_text())["kept"] == 6
    rows = [rec.data for rec in iter_records(out)]
    assert len(rows) == 6 and rows[0]["site"] == "S0"
    url = rows[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == (tmp_path / "img" / "0.png").read_bytes()
    # Too tight a tolerance matches nothing with the rounding noise.
    assert main([*args[:-2], "-o", str(tmp_path / "none.jsonl"), "--json"]) == 0
    capsys.readouterr()
    tight = [*args[:7], "--key", "lat~1e-7", "--key", "lon~1e-7", "-o", str(tmp_path / "t.jsonl")]
    assert main([*tight, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] == 0


def test_a_missing_column_or_a_bad_number_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _dataset(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("site,lat,answer\nS0,45.0,red\n")
    args = [
        "distill-import",
        "--data",
        str(data),
        "--answers",
        str(bad),
        "-o",
        str(tmp_path / "o.parquet"),
    ]
    assert main([*args, "--key", "site", "--key", "lon~0.1"]) == 2
    assert "bad.csv:1" in capsys.readouterr().err
    bad.write_text("site,lat,lon,answer\nS0,north,7.0,red\n")
    assert main([*args, "--key", "site", "--key", "lat~0.1", "--key", "lon~0.1"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:2" in err and "lat" in err
    assert main([*args, "--key", "lat~-1"]) == 2
