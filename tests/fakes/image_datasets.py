"""Image datasets in each documented shape, written in code with planted problems.

Each writer returns the dataset path; the images are tiny PNG/JPEG files built by
:mod:`tests.fakes.images` beside it (``img/``), referenced by relative path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.images import image_bytes, jpeg, png


def write_images(folder: Path) -> None:
    """``img/red.png``, ``img/blue.jpg``, ``img/grey.png`` (mode L), ``img/pic.webp``,
    ``img/broken.png`` (not an image) under ``folder``."""
    img = folder / "img"
    img.mkdir(parents=True, exist_ok=True)
    (img / "red.png").write_bytes(png((8, 6)))
    (img / "blue.jpg").write_bytes(jpeg((6, 8)))
    (img / "grey.png").write_bytes(image_bytes("PNG", mode="L"))
    (img / "pic.webp").write_bytes(image_bytes("WEBP"))
    (img / "broken.png").write_bytes(b"this is not an image")


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _chat(parts: list[dict[str, Any]], answer: str = "red") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Name the colour."},
            {"role": "user", "content": [{"type": "text", "text": "Which colour?"}, *parts]},
            {"role": "assistant", "content": answer},
        ]
    }


def url_part(url: str) -> dict[str, Any]:
    """An OpenAI ``image_url`` content part."""
    return {"type": "image_url", "image_url": {"url": url}}


def chat_file(folder: Path) -> Path:
    """OpenAI chat with ``image_url`` parts. Planted problems, by line:

    3 missing file (``messages[1].content[1].image_url.url``), 4 not an image, 5 eleven images
    (field of the 11th), 6 an image in the assistant turn (``messages[2].content[0]...``),
    7 an https URL, 8 a WEBP, 9 a grey (mode L) PNG.
    """
    write_images(folder)
    rows = [
        _chat([url_part("img/red.png")]),
        _chat([url_part(f"file://{folder}/img/blue.jpg")], "blue"),
        _chat([url_part("img/missing.png")]),
        _chat([url_part("img/broken.png")]),
        _chat([url_part("img/red.png")] * 11),
        {
            "messages": [
                {"role": "user", "content": "Draw red."},
                {"role": "assistant", "content": [url_part("img/red.png")]},
            ]
        },
        _chat([url_part("https://example.com/cat.png")]),
        _chat([url_part("img/pic.webp")], "white"),
        _chat([url_part("img/grey.png")], "grey"),
    ]
    return _jsonl(folder / "chat.jsonl", rows)


def gemini_file(folder: Path) -> Path:
    """Vertex ``contents/parts`` with ``fileData``. Planted: 2 missing file, 3 image in the
    model turn, 4 mimeType that does not match, 5 thirty-one images; line 1 is a gs:// URI."""
    write_images(folder)

    def row(parts: list[dict[str, Any]], model_parts: list[dict[str, Any]] | None = None) -> Any:
        return {
            "contents": [
                {"role": "user", "parts": [*parts, {"text": "Which colour?"}]},
                {"role": "model", "parts": model_parts or [{"text": "red"}]},
            ]
        }

    def fd(uri: str, mime: str = "image/png") -> dict[str, Any]:
        return {"fileData": {"mimeType": mime, "fileUri": uri}}

    rows = [
        row([fd("gs://bucket/img/100.png")]),
        row([fd("img/gone.png")]),
        row([fd("img/red.png")], [{"text": "red"}, fd("img/red.png")]),
        row([fd("img/blue.jpg", "image/png")]),
        row([fd("img/red.png")] * 31),
        row([fd("img/red.png")]),
    ]
    return _jsonl(folder / "gemini.jsonl", rows)


def trl_file(folder: Path) -> Path:
    """TRL ``messages`` + ``images`` with ``{"type": "image"}`` placeholders. Planted: line 2 has
    two placeholders for one image, line 3 names a missing file."""
    write_images(folder)

    def row(n_placeholders: int, images: list[str]) -> Any:
        content = [{"type": "image"}] * n_placeholders + [{"type": "text", "text": "Colour?"}]
        return {
            "messages": [
                {"role": "user", "content": content},
                {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
            ],
            "images": images,
        }

    rows = [row(1, ["img/red.png"]), row(2, ["img/red.png"]), row(1, ["img/nothing.png"])]
    return _jsonl(folder / "trl.jsonl", rows)


def hf_parquet(folder: Path) -> Path:
    """A Hugging Face parquet with an ``Image`` feature (``struct<bytes, path>``): row 1 bytes,
    row 2 only a path (the fallback), row 3 bytes that are not an image."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_images(folder)
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table(
        {
            "image": pa.array(
                [
                    {"bytes": png(), "path": None},
                    {"bytes": None, "path": "img/blue.jpg"},
                    {"bytes": b"junk", "path": None},
                ],
                type=image_type,
            ),
            "prompt": ["Which colour?"] * 3,
            "completion": ["red", "blue", "green"],
        }
    )
    features = {
        "image": {"_type": "Image"},
        "prompt": {"dtype": "string", "_type": "Value"},
        "completion": {"dtype": "string", "_type": "Value"},
    }
    table = table.replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})}
    )
    path = folder / "hf.parquet"
    pq.write_table(table, path)
    return path


def csv_paths(folder: Path) -> Path:
    """CSV with an image-path column ``photo``; line 3 names a missing file."""
    write_images(folder)
    path = folder / "paths.csv"
    path.write_text(
        "photo,prompt,completion\nimg/red.png,Which colour?,red\nimg/none.png,Which colour?,blue\n",
        encoding="utf-8",
    )
    return path
