"""Images keep their user turn through conversion; Parquet embeds their bytes; the dataset
pipeline makes image paths absolute so files written elsewhere still find them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ftwizard.datasets.conversion import convert_file
from ftwizard.datasets.validation import validate_file
from ftwizard.providers.media_files import place_file
from tests.fakes import image_datasets as sets
from tests.fakes.images import jpeg, png


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _two_rows(folder: Path, *, system: bool = True) -> Path:
    sets.write_images(folder)
    rows = [
        {
            "messages": [
                *([{"role": "system", "content": "Name the colour."}] if system else []),
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Which colour?"},
                        sets.url_part(image),
                    ],
                },
                {"role": "assistant", "content": answer},
            ]
        }
        for image, answer in (("img/red.png", "red"), ("img/blue.jpg", "blue"))
    ]
    path = folder / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_chat_to_gemini_and_back_keeps_each_image_in_its_turn(tmp_path: Path) -> None:
    chat = _two_rows(tmp_path)
    gemini = tmp_path / "out" / "gemini.jsonl"
    result = convert_file(chat, gemini, to="gemini")
    assert result.written == 2 and not result.skipped
    first = _lines(gemini)[1]["contents"][0]["parts"]
    assert first[0] == {
        "fileData": {"mimeType": "image/jpeg", "fileUri": str(tmp_path / "img/blue.jpg")}
    }
    assert first[1] == {"text": "Which colour?"}
    back = tmp_path / "out" / "chat.jsonl"
    convert_file(gemini, back, to="chat")
    user = _lines(back)[0]["messages"][1]
    assert user["content"][-1] == {
        "type": "image_url",
        "image_url": {"url": str(tmp_path / "img/red.png")},
    }
    assert validate_file(back, model="vertex:gemini-2.5-flash").images == 2


def test_trl_and_prompt_completion_use_an_images_column(tmp_path: Path) -> None:
    chat = _two_rows(tmp_path, system=False)
    for fmt in ("trl", "prompt_completion"):
        out = tmp_path / f"{fmt}.jsonl"
        convert_file(chat, out, to=fmt)
        row = _lines(out)[0]
        assert row["images"] == [str(tmp_path / "img/red.png")]
        turns = row["messages"] if fmt == "trl" else row["prompt"]
        user = next(t for t in turns if t["role"] == "user")
        assert user["content"][0] == {"type": "image"}
        report = validate_file(out, model="local:Qwen/Qwen2-VL-2B-Instruct")
        assert report.ok or not [e for e in report.errors if e.line], report.errors
        assert report.images == 2


def test_an_image_in_an_assistant_turn_is_skipped_with_its_field(tmp_path: Path) -> None:
    chat = sets.chat_file(tmp_path)
    result = convert_file(chat, tmp_path / "g.jsonl", to="gemini")
    skipped = {s.line: s.message for s in result.skipped}
    assert "messages[1].content[0].image_url.url" in skipped[6]


def test_hf_image_bytes_become_data_uris_in_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    result = convert_file(sets.hf_parquet(tmp_path), out, to="chat")
    assert [s.line for s in result.skipped] == [3]  # the bytes that are not an image
    url = _lines(out)[0]["messages"][0]["content"][-1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == png()


def test_parquet_output_embeds_image_bytes_as_hf_image_structs(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "pc.parquet"
    convert_file(_two_rows(tmp_path, system=False), out, to="prompt_completion")
    table = pq.read_table(out)
    assert (
        str(table.schema.field("images").type)
        == "list<element: struct<bytes: binary, path: string>>"
    )
    images = table.column("images").to_pylist()
    assert images[0] == [{"bytes": png(), "path": "red.png"}]
    assert images[1] == [{"bytes": jpeg((6, 8)), "path": "blue.jpg"}]
    meta = json.loads(table.schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["images"] == {"feature": {"_type": "Image"}, "_type": "List"}
    # and it reads back as a valid image dataset
    report = validate_file(out, model="local:Qwen/Qwen2-VL-2B-Instruct")
    assert report.images == 2 and report.valid_examples == 2


def test_parquet_output_refuses_a_missing_image_naming_its_row(tmp_path: Path) -> None:
    import pytest

    from ftwizard.errors import InputError

    chat = _two_rows(tmp_path, system=False)
    (tmp_path / "img" / "blue.jpg").unlink()
    with pytest.raises(InputError) as info:
        convert_file(chat, tmp_path / "pc.parquet", to="prompt_completion")
    assert "row 2" in str(info.value) and info.value.field == "images"
    assert not (tmp_path / "pc.parquet").exists()


def test_placing_for_local_makes_paths_absolute_and_leaves_text_files_alone(
    tmp_path: Path,
) -> None:
    chat = _two_rows(tmp_path)
    placed = place_file(chat, "local", out=tmp_path / "placed.jsonl")
    url = _lines(placed)[0]["messages"][1]["content"][1]["image_url"]["url"]
    assert url == str((tmp_path / "img/red.png").resolve())
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert place_file(text, "together") == text


def test_the_dataset_step_finds_images_from_the_artifacts_folder(tmp_path: Path) -> None:
    from ftwizard.datasets.pipeline import prepare
    from ftwizard.session import Backend, DatasetChoice, Method

    chat = _two_rows(tmp_path / "data")
    choice = DatasetChoice(train_path=str(chat), split_val="1")
    result, report = prepare(
        choice,
        backend=Backend.local,
        method=Method.sft,
        model="Qwen/Qwen2-VL-2B-Instruct",
        out_dir=tmp_path / "artifacts",
    )
    assert Path(result.training_file).parent != chat.parent
    assert report.images == 1 and not [e for e in report.errors if e.code.value.startswith("image")]
    assert result.images == 1 and result.image_tokens > 0
    assert any("made absolute" in note for note in result.notes)


def test_transforms_and_splits_keep_images_and_hf_bytes(tmp_path: Path) -> None:
    from ftwizard.datasets.splitting import split_file
    from ftwizard.datasets.transforms import Transform, transform_file

    chat = _two_rows(tmp_path)
    out = tmp_path / "t.jsonl"
    transform_file(chat, out, [Transform(kind="replace_system_prompt", text="Colour only.")])
    row = _lines(out)[0]
    assert row["messages"][0]["content"] == "Colour only."
    assert row["messages"][1]["content"][-1] == sets.url_part("img/red.png")
    # an HF parquet with image bytes splits into JSONL without a traceback, bytes kept
    split = split_file(sets.hf_parquet(tmp_path), tmp_path / "split", val=1, seed=0)
    rows = _lines(Path(split.train_path)) + _lines(Path(split.validation_path))
    assert len(rows) == 3
    red = next(r for r in rows if r["completion"] == "red")
    assert base64.b64decode(red["image"]["bytes"]) == png()


def test_the_dataset_step_reads_an_hf_parquet_with_relative_image_paths(tmp_path: Path) -> None:
    from ftwizard.datasets.pipeline import prepare
    from ftwizard.session import Backend, DatasetChoice, Method

    source = sets.hf_parquet(tmp_path / "data")
    choice = DatasetChoice(train_path=str(source), split_val="1", split_seed=3)
    _, report = prepare(
        choice,
        backend=Backend.local,
        method=Method.sft,
        model="Qwen/Qwen2-VL-2B-Instruct",
        out_dir=tmp_path / "artifacts",
    )
    problems = [(p.code.value, p.field) for p in report.errors if p.line is not None]
    if report.validation is not None:
        problems += [(p.code.value, p.field) for p in report.validation.errors if p.line]
    assert problems == [("invalid_image", "image.bytes")]  # only the planted bytes
