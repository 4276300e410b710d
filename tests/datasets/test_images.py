"""Image datasets in every shape: planted problems are reported on their line and field, per
target (together:, vertex:, local:), and text-only files never load image support."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ftwizard.datasets.formats import DatasetFormat
from ftwizard.datasets.validation import validate_file
from tests.conftest import REPO_ROOT
from tests.fakes import image_datasets as sets


def found(report) -> list[tuple[int | None, str, str | None]]:
    return [(p.line, p.code.value, p.field) for p in report.errors if p.line is not None]


CHAT_COMMON = [
    (3, "image_missing", "messages[1].content[1].image_url.url"),
    (4, "invalid_image", "messages[1].content[1].image_url.url"),
]
ASSISTANT = (6, "image_not_in_user_turn", "messages[1].content[0].image_url.url")
ELEVEN = (5, "too_many_images", "messages[1].content[11].image_url.url")


def test_chat_file_under_together(tmp_path: Path) -> None:
    report = validate_file(sets.chat_file(tmp_path), model="together:Qwen/Qwen3-VL-8B-Instruct")
    assert found(report) == [
        *CHAT_COMMON,
        ELEVEN,
        ASSISTANT,
        (7, "image_not_embedded", "messages[1].content[1].image_url.url"),
    ]
    codes = {w.code.value for w in report.warnings}
    assert "image_will_be_embedded" in codes
    assert report.images == 4  # lines 1, 2, 8, 9
    assert report.image_tokens > 0
    assert report.backend.value == "together"


def test_chat_file_under_vertex_and_local(tmp_path: Path) -> None:
    path = sets.chat_file(tmp_path)
    vertex = validate_file(path, model="vertex:gemini-2.5-flash")
    # Vertex takes 30 images and any RGB/L mode; the URL is left unchecked, not refused.
    assert found(vertex) == [*CHAT_COMMON, ASSISTANT]
    assert "image_not_checked" in {w.code.value for w in vertex.warnings}
    assert "image_will_be_uploaded" in {w.code.value for w in vertex.warnings}
    local = validate_file(path, model="local:Qwen/Qwen2-VL-2B-Instruct")
    assert found(local) == [*CHAT_COMMON, ASSISTANT]


def test_fireworks_takes_png_and_jpeg_only_and_openai_rgb_only(tmp_path: Path) -> None:
    path = sets.chat_file(tmp_path)
    fireworks = validate_file(path, model="fireworks:accounts/fireworks/models/qwen3-vl-8b")
    assert (8, "image_format", "messages[1].content[1].image_url.url") in found(fireworks)
    openai = validate_file(path, model="openai:gpt-4o-2024-08-06")
    assert (9, "image_mode", "messages[1].content[1].image_url.url") in found(openai)
    assert (8, "image_format", "messages[1].content[1].image_url.url") not in found(openai)
    warnings = {w.code.value: w.message for w in openai.warnings}
    assert "faces" in warnings["images_may_be_dropped"]
    assert "2027-01-06" in warnings["images_may_be_dropped"]
    assert "2027-01-14" in warnings["images_may_be_dropped"]


def test_image_bytes_over_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from ftwizard.providers import media

    monkeypatch.setitem(
        media.IMAGE_LIMITS, "together", replace(media.IMAGE_LIMITS["together"], max_bytes=50)
    )
    report = validate_file(sets.chat_file(tmp_path), model="together:Qwen/Qwen3-VL-8B-Instruct")
    assert (1, "image_too_large", "messages[1].content[1].image_url.url") in found(report)


def test_gemini_file_data_under_vertex(tmp_path: Path) -> None:
    report = validate_file(sets.gemini_file(tmp_path), model="vertex:gemini-2.5-flash")
    assert report.format is DatasetFormat.GEMINI
    assert found(report) == [
        (2, "image_missing", "contents[0].parts[0].fileData.fileUri"),
        (3, "image_not_in_user_turn", "contents[1].parts[1].fileData.fileUri"),
        (4, "invalid_image", "contents[0].parts[0].fileData.fileUri"),
        (5, "too_many_images", "contents[0].parts[30].fileData.fileUri"),
    ]
    not_checked = next(w for w in report.warnings if w.code.value == "image_not_checked")
    assert not_checked.line == 1 and "gs://bucket/img/100.png" in not_checked.message


def test_trl_images_column_with_placeholders(tmp_path: Path) -> None:
    report = validate_file(sets.trl_file(tmp_path), model="local:Qwen/Qwen2-VL-2B-Instruct")
    assert report.format is DatasetFormat.TRL
    assert found(report) == [
        (2, "image_count_mismatch", "messages[0].content[0]"),
        (3, "image_missing", "images[0]"),
    ]
    assert not [w for w in report.warnings if w.code.value == "unrecognized_key"]


def test_hf_parquet_image_feature_reads_without_a_traceback(tmp_path: Path) -> None:
    path = sets.hf_parquet(tmp_path)
    for model in ("local:Qwen/Qwen2-VL-2B-Instruct", "together:Qwen/Qwen3-VL-8B-Instruct"):
        report = validate_file(path, model=model)
        assert found(report) == [(3, "invalid_image", "image.bytes")]
        assert report.images == 2  # row 2 falls back to its path
        assert report.valid_examples == 2


def test_csv_image_path_column_mapped(tmp_path: Path) -> None:
    report = validate_file(
        sets.csv_paths(tmp_path),
        model="local:Qwen/Qwen2-VL-2B-Instruct",
        mapping={"image": "photo"},
    )
    assert found(report) == [(3, "image_missing", "image")]


def test_text_model_warns_it_takes_no_images(tmp_path: Path) -> None:
    report = validate_file(sets.chat_file(tmp_path), model="openai:gpt-4.1-mini-2025-04-14")
    assert "model_not_vision" in {w.code.value for w in report.warnings}
    vision = validate_file(sets.chat_file(tmp_path), model="together:Qwen/Qwen3-VL-8B-Instruct")
    assert "model_not_vision" not in {w.code.value for w in vision.warnings}


def test_max_pixels_caps_qwen_image_tokens(tmp_path: Path) -> None:
    from tests.fakes.images import png

    (tmp_path / "big.png").write_bytes(png((1000, 1000)))
    rows = [sets._chat([sets.url_part("big.png")])]
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(rows[0]) + "\n")
    full = validate_file(path, model="local:Qwen/Qwen2-VL-2B-Instruct")
    capped = validate_file(path, model="local:Qwen/Qwen2-VL-2B-Instruct", max_pixels=224 * 224)
    # 1000 px rounds to 1008 = 36 cells, but 1008^2 is over the default 1,003,520-pixel budget,
    # so smart_resize scales down to 35 cells a side.
    assert full.image_tokens == 35 * 35
    assert capped.image_tokens == 64  # 224x224 = 8x8 cells
    assert full.tokens.total - capped.tokens.total == full.image_tokens - capped.image_tokens


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "ftwizard", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_validate_together_and_fireworks_for_text_and_images(tmp_path: Path) -> None:
    text = tmp_path / "text.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(3)
    ]
    text.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for model in ("together:Qwen/Qwen3.5-9B", "fireworks:accounts/fireworks/models/qwen3-8b"):
        done = _cli("validate", str(text), "--model", model, "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    chat = sets.chat_file(tmp_path)
    done = _cli(
        "validate",
        str(chat),
        "--model",
        "together:Qwen/Qwen3-VL-8B-Instruct",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert {"line": 7, "code": "image_not_embedded"}.items() <= out["errors"][-1].items()
    assert out["errors"][-1]["field"] == "messages[1].content[1].image_url.url"
    assert out["images"]["count"] == 4
    hf = sets.hf_parquet(tmp_path)
    done = _cli("validate", str(hf), "--model", "local:Qwen/Qwen2-VL-2B-Instruct", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "images: 2 in 2 examples" in done.stdout


def test_text_only_validation_never_imports_pillow(tmp_path: Path) -> None:
    text = tmp_path / "text.jsonl"
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    text.write_text(json.dumps(row) + "\n")
    code = (
        "import sys; from ftwizard.datasets.validation import validate_file; "
        f"validate_file({str(text)!r}, model='local:m'); "
        "print('PIL' in sys.modules, 'ftwizard.datasets.image_checks' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "HOME": str(tmp_path)},
    )
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_hf_save_to_disk_folder_with_image_features(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from tests.fakes.images import png

    features = datasets.Features(
        {
            "images": datasets.List(datasets.Image()),
            "prompt": datasets.Value("string"),
            "completion": datasets.Value("string"),
        }
    )
    rows = {
        "images": [[{"bytes": png(), "path": None}], [{"bytes": b"junk", "path": None}]],
        "prompt": ["Which colour?", "Which colour?"],
        "completion": ["red", "blue"],
    }
    folder = tmp_path / "hf"
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(folder))
    before = sorted(p.name for p in folder.iterdir())
    report = validate_file(folder, model="local:Qwen/Qwen2-VL-2B-Instruct")
    assert found(report) == [(2, "invalid_image", "images[0].bytes")]
    assert report.images == 1
    assert sorted(p.name for p in folder.iterdir()) == before  # the folder is only read


def test_an_image_file_over_the_limit_is_judged_by_its_size(tmp_path: Path) -> None:
    sets.write_images(tmp_path)
    big = tmp_path / "img" / "huge.png"
    with big.open("wb") as fh:  # sparse: 21 MB on paper, nothing to read
        fh.truncate(21 * 1024 * 1024)
    row = sets._chat([sets.url_part("img/huge.png")])
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(row) + "\n")
    for model in ("vertex:gemini-2.5-flash", "together:Qwen/Qwen3-VL-8B-Instruct"):
        report = validate_file(path, model=model)
        assert found(report) == [(1, "image_too_large", "messages[1].content[1].image_url.url")]
