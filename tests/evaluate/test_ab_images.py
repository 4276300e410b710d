"""Base-vs-tuned comparisons on image rows: the held-out prompt keeps its picture, and the
blind A/B judge is shown that picture with both answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.datasets.conversion import convert_example
from ftwizard.datasets.formats import DatasetFormat
from ftwizard.evaluate.ab import EvalRow, answer_rows, read_eval_rows
from ftwizard.evaluate.judging import JudgeOptions, PairItem, judge_messages
from ftwizard.evaluate.mapping import Presentation
from ftwizard.graders.samples import prompt_messages, samples_from_model
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.base import GenerationRequest, ProviderError
from ftwizard.providers.media import data_uri
from ftwizard.providers.openai.chat import OpenAIChatProvider
from ftwizard.providers.openai.http import LeanOpenAIChatProvider
from ftwizard.providers.vertex.chat import VertexChatProvider
from tests.fakes.images import png
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer
from tests.tiny_vision import SHAPES_DIR


def test_the_judge_sees_the_picture_and_both_answers() -> None:
    row = read_eval_rows(SHAPES_DIR / "valid.jsonl")[0]
    (image,) = row.prompt[0].images
    # Anchored to the dataset's folder: the picture is found from any working directory.
    assert Path(image).is_absolute() and Path(image).is_file()
    item = PairItem(
        id=row.id,
        prompt=row.prompt,
        answer_a="red circle",
        answer_b="blue square",
        reference=row.reference,
    )
    messages = judge_messages(item, Presentation.b_first(False), JudgeOptions())
    assert messages[-1].images == [image]
    assert "red circle" in messages[-1].content and "blue square" in messages[-1].content
    assert "[1 image(s), shown above]" in messages[-1].content
    request = GenerationRequest(model="claude-haiku-4-5", messages=messages)
    content = AnthropicChatProvider().build_params(request)["messages"][0]["content"]
    assert content[0]["type"] == "image"
    assert content[0]["source"]["media_type"] == "image/png"
    assert content[-1]["type"] == "text"
    openai_turn = OpenAIChatProvider()._message(messages[-1])
    assert openai_turn["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")


def _image_chat_row(ref: str, answer: str = "red") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": "Answer with one word."},
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": ref}},
                    {"type": "text", "text": "Which colour?"},
                ],
            },
            {"role": "assistant", "content": answer},
        ]
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_vertex_sessions_gemini_image_rows_keep_their_pictures(tmp_path: Path) -> None:
    """A Vertex session's held-out file is its chat rows converted to Gemini's format: the dry
    run, checkpoint scores and the A/B read the same prompts, pictures included, from it."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "red.png").write_bytes(png())
    chat = [
        _image_chat_row(data_uri(png())),
        _image_chat_row("gs://bucket/img/blue.png", "blue"),
        _image_chat_row("img/red.png"),
    ]
    gemini = [convert_example(r, DatasetFormat.CHAT, DatasetFormat.GEMINI) for r in chat]
    assert all("contents" in g and "messages" not in g for g in gemini)
    for chat_row, gemini_row in zip(chat, gemini, strict=True):
        assert prompt_messages(gemini_row) == prompt_messages(chat_row)
        assert prompt_messages(gemini_row)[-1].images
    # Read from files: a relative picture is anchored to the file's folder either way.
    want = read_eval_rows(_write(tmp_path / "chat.jsonl", chat))
    got = read_eval_rows(_write(tmp_path / "gemini.jsonl", gemini))
    assert [r.prompt for r in got] == [r.prompt for r in want]
    assert got[2].prompt[-1].images == [str(tmp_path / "img" / "red.png")]


def test_a_gemini_rows_inline_data_becomes_a_data_uri() -> None:
    encoded = base64.b64encode(png()).decode("ascii")
    row = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Which colour?"},
                    {"inlineData": {"mimeType": "image/png", "data": encoded}},
                ],
            },
            {"role": "model", "parts": [{"text": "red"}]},
        ]
    }
    [turn] = prompt_messages(row)
    assert turn.images == [f"data:image/png;base64,{encoded}"]
    assert turn.content == "Which colour?"


async def test_gemini_image_rows_reach_the_model_with_their_pictures(
    vertex_env: FakeVertexServer,
) -> None:
    gemini = [
        convert_example(r, DatasetFormat.CHAT, DatasetFormat.GEMINI)
        for r in (_image_chat_row(data_uri(png())), _image_chat_row("gs://bucket/blue.png"))
    ]
    provider = VertexChatProvider(timeout_s=5)
    try:
        generated = await samples_from_model(provider, "gemini-2.5-flash", gemini, concurrency=1)
    finally:
        await provider.aclose()
    assert [g.error for g in generated] == [None, None]
    parts = [body["contents"][0]["parts"] for body in vertex_env.generate_bodies()]
    inline, file_data = parts[0][0]["inlineData"], parts[1][0]["fileData"]
    # The SDK camel-cases the part's key, not the fields inside it (Vertex's JSON takes both).
    assert inline.get("mimeType", inline.get("mime_type")) == "image/png"
    assert base64.b64decode(inline["data"]) == png()
    assert file_data.get("fileUri", file_data.get("file_uri")) == "gs://bucket/blue.png"
    assert parts[0][-1] == {"text": "Which colour?"}


@pytest.mark.parametrize(
    "provider_class", [OpenAIChatProvider, LeanOpenAIChatProvider], ids=["sdk", "lean"]
)
async def test_a_gs_picture_fails_only_its_row_on_a_model_that_cannot_read_it(
    openai_env: FakeOpenAIServer, provider_class: type[OpenAIChatProvider]
) -> None:
    """Chat APIs other than Vertex cannot read Cloud Storage: the row's answer is an error
    that names the image, and the other rows are answered."""
    gemini = [
        convert_example(r, DatasetFormat.CHAT, DatasetFormat.GEMINI)
        for r in (_image_chat_row("gs://bucket/blue.png"), _image_chat_row(data_uri(png())))
    ]
    rows = [
        EvalRow(id=f"r{i}", line=i + 1, prompt=prompt_messages(g), reference=None)
        for i, g in enumerate(gemini)
    ]
    # The lean provider is what openai: and OpenAI-compatible models get (providers/models.py).
    provider = provider_class()
    try:
        failed, answered = await answer_rows(
            rows, provider, "gpt-4.1-mini-2025-04-14", concurrency=1
        )
    finally:
        await provider.aclose()
    assert isinstance(failed, ProviderError)
    assert "field 'image'" in str(failed) and "gs://bucket/blue.png" in str(failed)
    assert "cannot read gs:// images" in str(failed)
    assert isinstance(answered, str)
