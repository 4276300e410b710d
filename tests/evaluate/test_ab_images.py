"""Base-vs-tuned comparisons on image rows: the held-out prompt keeps its picture, and the
blind A/B judge is shown that picture with both answers."""

from __future__ import annotations

from pathlib import Path

from ftwizard.evaluate.ab import read_eval_rows
from ftwizard.evaluate.judging import JudgeOptions, PairItem, judge_messages
from ftwizard.evaluate.mapping import Presentation
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.base import GenerationRequest
from ftwizard.providers.openai.chat import OpenAIChatProvider
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
