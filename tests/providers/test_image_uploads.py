"""Hosted training with images: each backend gets its own upload shape, checked by the fakes
against the providers' documented image rules (tests/fakes/image_rules.py).

Together and Fireworks: local image files embedded as base64 data URIs; OpenAI
(gpt-4o-2024-08-06): local files as data URIs, https URLs kept; Vertex: local images uploaded
to the session's bucket and referenced by gs:// URI.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.fireworks.training import FireworksTrainingProvider
from ftwizard.providers.together.training import TogetherTrainingProvider
from ftwizard.providers.training import TrainingSpec, start_or_reattach
from tests.fakes.fireworks_server import FakeFireworksServer
from tests.fakes.images import jpeg, png
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.together_server import FakeTogetherServer
from tests.fakes.together_spec import request_errors
from tests.fakes.vertex_server import FakeVertexServer
from tests.fireworks.conftest import FAST_RETRY, fireworks, provider  # noqa: F401
from tests.together.conftest import together_env  # noqa: F401
from tests.training.openai_jobs import create_bodies, tuning_provider, tuning_spec
from tests.training.vertex_jobs import BUCKET, vertex_provider, vertex_spec

KEY = "sess-images-0001"


def _chat_rows(folder: Path, n: int = 4, url: str | None = None) -> Path:
    (folder / "img").mkdir(exist_ok=True)
    (folder / "img" / "red.png").write_bytes(png())
    (folder / "img" / "blue.jpg").write_bytes(jpeg())
    rows = []
    for i in range(n):
        image = url or ("img/red.png" if i % 2 == 0 else "img/blue.jpg")
        rows.append(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": f"Which colour? ({i})"},
                            {"type": "image_url", "image_url": {"url": image}},
                        ],
                    },
                    {"role": "assistant", "content": "red" if i % 2 == 0 else "blue"},
                ]
            }
        )
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _image_urls(data: bytes) -> list[str]:
    return [
        part["image_url"]["url"]
        for line in data.splitlines()
        if line.strip()
        for m in json.loads(line)["messages"]
        if isinstance(m["content"], list)
        for part in m["content"]
        if part.get("type") == "image_url"
    ]


def _decoded(url: str) -> bytes:
    assert url.startswith("data:image/")
    return base64.b64decode(url.split(",", 1)[1])


def test_together_gets_base64_images(
    together_env: FakeTogetherServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    train = _chat_rows(tmp_path)
    spec = TrainingSpec(
        method="sft",
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        training_file=train,
        idempotency_key=KEY,
    )

    async def run() -> None:
        together = TogetherTrainingProvider()
        await start_or_reattach(together, spec)
        await together.aclose()

    asyncio.run(run())
    (stored,) = together_env.files.values()
    urls = _image_urls(stored.data)
    assert [_decoded(u) for u in urls] == [png(), jpeg(), png(), jpeg()]
    (create,) = together_env.creates()
    assert request_errors("/fine-tunes", "POST", create.json()) == []
    assert create.json()["model"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert train.read_bytes().count(b"img/red.png") == 2  # the user's file is not touched


def test_together_refuses_an_image_url_before_uploading(
    together_env: FakeTogetherServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    train = _chat_rows(tmp_path, url="https://example.com/cat.png")
    spec = TrainingSpec(
        method="sft",
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        training_file=train,
        idempotency_key=KEY,
    )

    async def run() -> None:
        together = TogetherTrainingProvider()
        try:
            await together.upload(spec)
        finally:
            await together.aclose()

    with pytest.raises(InputError) as info:
        asyncio.run(run())
    assert info.value.line == 1 and "base64" in str(info.value)
    assert together_env.files == {}


def test_together_refuses_images_for_a_base_its_limits_mark_text_only(
    together_env: FakeTogetherServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    train = _chat_rows(tmp_path)
    spec = TrainingSpec(
        method="sft", base_model="Qwen/Qwen3.5-9B", training_file=train, idempotency_key=KEY
    )

    async def run() -> None:
        together = TogetherTrainingProvider()
        try:
            await together.upload(spec)
        finally:
            await together.aclose()

    with pytest.raises(InputError) as info:
        asyncio.run(run())
    assert "does not tune on images" in str(info.value) and info.value.field == "base_model"
    assert together_env.files == {}
    limits = together_env.requests_to("/v1/fine-tunes/models/limits")
    assert limits and limits[-1].query["model_name"] == ["Qwen/Qwen3.5-9B"]


def test_the_together_fake_refuses_what_the_docs_refuse(
    together_env: FakeTogetherServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    from tests.fakes.image_rules import chat_image_problem

    raw = _chat_rows(tmp_path).read_bytes()
    assert "base64" in (chat_image_problem(raw, "together") or "")


def test_fireworks_vlm_sft_gets_base64_png_and_jpeg(
    fireworks: FakeFireworksServer,  # noqa: F811
    provider: FireworksTrainingProvider,  # noqa: F811
    tmp_path: Path,
) -> None:
    train = _chat_rows(tmp_path)
    spec = TrainingSpec(
        method="sft",
        base_model="accounts/fireworks/models/qwen3-vl-8b-instruct",
        training_file=train,
        idempotency_key=KEY,
    )

    async def run() -> None:
        await start_or_reattach(provider, spec)

    asyncio.run(run())
    (stored,) = fireworks.dataset_bytes.values()
    assert [_decoded(u) for u in _image_urls(stored)] == [png(), jpeg(), png(), jpeg()]


async def test_openai_gpt4o_gets_data_uris_and_keeps_https(
    openai_env: FakeOpenAIServer, tmp_path: Path
) -> None:
    train = _chat_rows(tmp_path, n=10)
    rows = train.read_text().splitlines()
    url = "https://example.com/cat.png"
    rows[0] = rows[0].replace("img/red.png", url)
    train.write_text("\n".join(rows) + "\n")
    tuning = tuning_provider(openai_env)
    spec = tuning_spec(train, None, base_model="gpt-4o-2024-08-06")
    await start_or_reattach(tuning, spec)
    (stored,) = [f for f in openai_env.tuning.files.values() if f.purpose == "fine-tune"]
    assert stored.status_details is None
    urls = _image_urls(stored.data)
    assert urls[0] == url and _decoded(urls[1]) == jpeg() and _decoded(urls[2]) == png()
    assert create_bodies(openai_env)[0]["model"] == "gpt-4o-2024-08-06"
    await tuning.aclose()


async def test_vertex_uploads_images_to_the_bucket_and_names_them_by_gs_uri(
    vertex_env: FakeVertexServer, tmp_path: Path
) -> None:
    (tmp_path / "red.png").write_bytes(png())
    rows: list[dict[str, Any]] = [
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"fileData": {"mimeType": "image/png", "fileUri": "red.png"}},
                        {"text": f"Which colour? ({i})"},
                    ],
                },
                {"role": "model", "parts": [{"text": "red"}]},
            ]
        }
        for i in range(3)
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    vertex = vertex_provider(vertex_env)
    await start_or_reattach(vertex, vertex_spec(train, None))
    objects = vertex_env.tuning.objects
    images = [name for (bucket, name) in objects if "/images/" in name]
    assert len(images) == 1 and images[0].endswith(".png")  # one image, stored once
    assert objects[(BUCKET, images[0])] == png()
    uploaded = objects[(BUCKET, "ftwizard/Sess-0001-train-1/train.jsonl")]
    uri = json.loads(uploaded.splitlines()[0])["contents"][0]["parts"][0]["fileData"]["fileUri"]
    assert uri == f"gs://{BUCKET}/{images[0]}"
    assert vertex_env.tuning.job_count == 1
    await vertex.aclose()
