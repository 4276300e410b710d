"""Distilling answers about images: teachers receive the pictures in their own wire format,
the estimate prices the image tokens, and the written file carries the images."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ftwizard.distill.engine import run_distill
from ftwizard.distill.estimate import estimate_distill_cost
from ftwizard.distill.options import DistillOptions
from ftwizard.graders.loading import load_grader
from ftwizard.providers.models import ModelRef
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer
from tests.tiny_vision import SHAPES_DIR

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)
N = 6


@pytest.fixture
def pictures(tmp_path: Path) -> tuple[Path, dict[bytes, str]]:
    """The first N shapes rows, with their PNGs beside them, and each picture's answer."""
    (tmp_path / "images").mkdir()
    lines = (SHAPES_DIR / "train.jsonl").read_text().splitlines()[:N]
    answers: dict[bytes, str] = {}
    for line in lines:
        row = json.loads(line)
        ref = row["messages"][0]["content"][0]["image_url"]["url"]
        shutil.copy(SHAPES_DIR / ref, tmp_path / ref)
        answers[(SHAPES_DIR / ref).read_bytes()] = row["messages"][1]["content"]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    return data, answers


@pytest.fixture
def grader(tmp_path: Path) -> Any:
    return load_grader(SHAPES_DIR / "grader.yaml")


async def test_an_anthropic_teacher_sees_each_image_as_a_base64_block(
    tmp_path: Path,
    anthropic_env: FakeAnthropicServer,
    pictures: tuple[Path, dict[bytes, str]],
    grader: Any,
) -> None:
    data, answers = pictures
    wrong = next(iter(answers))  # the teacher gets one picture wrong

    def reply(params: dict[str, Any]) -> MessageReply:
        blocks = params["messages"][-1]["content"]
        image = base64.b64decode(blocks[0]["source"]["data"])
        answer = "purple blob" if image == wrong else answers[image]
        return MessageReply(answer, input_tokens=40, output_tokens=3)

    anthropic_env.reply_fn = reply
    teacher = ModelRef(
        provider="anthropic", name="claude-haiku-4-5", base_url=anthropic_env.base_url
    )
    options = DistillOptions(teacher=teacher, retry=FAST, mode="direct")
    estimate = estimate_distill_cost(data, options)
    assert f"for {N} images" in estimate.basis
    out = tmp_path / "out" / "distilled.parquet"
    result = await run_distill(data, out, options, grader=grader, grader_name="grader.yaml")
    bodies = anthropic_env.message_bodies()
    assert len(bodies) == N
    image_block, text_block = bodies[0]["messages"][0]["content"]
    assert image_block["type"] == "image"
    assert image_block["source"]["type"] == "base64"
    assert image_block["source"]["media_type"] == "image/png"
    assert text_block == {
        "type": "text",
        "text": json.loads(data.read_text().splitlines()[0])["messages"][0]["content"][1]["text"],
    }
    assert (result.n, result.kept) == (N, N - 1)
    assert result.accuracy_text == f"{N - 1} / {N} correct, {100 * (N - 1) / N:.1f} %"
    # The kept rows carry their pictures inside the file, not paths to the source folder.
    from ftwizard.datasets.loading import iter_records

    rows = [rec.data for rec in iter_records(out)]
    assert len(rows) == N - 1
    part = rows[0]["messages"][0]["content"][0]
    assert part["image_url"]["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(part["image_url"]["url"].split(",", 1)[1]) in answers
    # Resumable as for text: a rerun pays for nothing.
    again = await run_distill(data, out, options, grader=grader, grader_name="grader.yaml")
    assert len(anthropic_env.message_bodies()) == N and again.kept == N - 1


async def test_an_openai_teacher_gets_image_url_parts_with_data_uris(
    tmp_path: Path, pictures: tuple[Path, dict[bytes, str]], grader: Any
) -> None:
    data, answers = pictures
    server = FakeOpenAIServer(api_key=None, models=None)
    server.start()
    try:

        def reply(body: dict[str, Any]) -> ChatReply:
            parts = body["messages"][-1]["content"]
            url = parts[0]["image_url"]["url"]
            return ChatReply(answers[base64.b64decode(url.split(",", 1)[1])])

        server.reply_fn = reply
        teacher = ModelRef(provider="openai", name="teacher-vl", base_url=server.v1_url)
        options = DistillOptions(teacher=teacher, retry=FAST, mode="direct")
        result = await run_distill(
            data, tmp_path / "out.jsonl", options, grader=grader, grader_name="grader.yaml"
        )
        assert result.kept == N
        body = server.requests_to("/v1/chat/completions", "POST")[0].json()
        assert body["messages"][0]["content"][0]["type"] == "image_url"
        assert body["messages"][0]["content"][1]["type"] == "text"
    finally:
        server.stop()
