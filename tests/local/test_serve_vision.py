"""The local server answering images for a vision model, with the openai SDK as the client.

The server runs in this process over ``builtin-tiny-vl``; its answers must be the model's own
(the same as the local chat provider's for the same image), streamed or not.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.local.batcher import Batcher
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.media import data_uri
from tests.fakes.images import png
from tests.local.openapi_spec import assert_matches_spec
from tests.local.test_serve import Served
from tests.tiny_local import TinyBuild, tiny_model_build
from tests.tiny_vision import VisionBuild, tiny_vlm_build

__all__ = ["tiny_model_build", "tiny_vlm_build"]

NAME = "ftwizard-tuned"
QUESTION = "What colour is this?"
RED = png(size=(56, 56), color=(220, 30, 30))
BLUE = png(size=(56, 56), color=(30, 60, 220))


def _image_message(url: str) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": QUESTION},
            ],
        }
    ]


@pytest.fixture(scope="module")
def provider() -> LocalChatProvider:
    return LocalChatProvider(device="cpu", max_new_tokens=8)


@pytest.fixture(scope="module")
def vision_served(tiny_vlm_build: VisionBuild, provider: LocalChatProvider) -> Iterator[Served]:
    loaded = provider.load(str(tiny_vlm_build.model_dir))
    server = Served(Batcher(loaded, batch_size=8, max_queue=16))
    yield server
    server.close()


def _own_answer(provider: LocalChatProvider, model_dir: Path, image: bytes) -> str:
    request = GenerationRequest(
        model=str(model_dir),
        messages=[ChatMessage(role="user", content=QUESTION, images=[data_uri(image)])],
        max_tokens=8,
    )
    return asyncio.run(provider.generate(request)).text


def test_the_sdk_sends_an_image_as_a_data_uri_and_gets_the_models_answer(
    vision_served: Served, provider: LocalChatProvider, tiny_vlm_build: VisionBuild
) -> None:
    client = vision_served.client()
    answers = {}
    for name, image in (("red", RED), ("blue", BLUE)):
        raw = client.chat.completions.with_raw_response.create(
            model=NAME, messages=_image_message(data_uri(image)), max_completion_tokens=8
        )
        assert_matches_spec("CreateChatCompletionResponse", raw.http_response.json())
        response = raw.parse()
        answers[name] = response.choices[0].message.content
        assert answers[name] == _own_answer(provider, tiny_vlm_build.model_dir, image)
        # The image's tokens are part of the prompt the server reports.
        assert response.usage is not None and response.usage.prompt_tokens > 10
    text_only = client.chat.completions.create(
        model=NAME, messages=[{"role": "user", "content": QUESTION}], max_completion_tokens=8
    )
    assert text_only.usage is not None
    assert text_only.usage.prompt_tokens < response.usage.prompt_tokens


def test_a_streamed_image_answer_equals_the_whole_one_and_a_local_file_works(
    vision_served: Served, tmp_path: Path
) -> None:
    client = vision_served.client()
    whole = client.chat.completions.create(
        model=NAME, messages=_image_message(data_uri(RED)), max_completion_tokens=8
    )
    picture = tmp_path / "red.png"
    picture.write_bytes(RED)
    for url in (str(picture), picture.as_uri()):
        stream = client.chat.completions.create(
            model=NAME, messages=_image_message(url), max_completion_tokens=8, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text.strip() == whole.choices[0].message.content


def test_an_https_image_is_refused_offline_with_a_clear_400(vision_served: Served) -> None:
    client = vision_served.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=NAME, messages=_image_message("https://example.com/cat.png")
        )
    assert caught.value.status_code == 400
    assert "does not fetch image URLs" in caught.value.message
    assert "data URI" in caught.value.message
    bad = "data:image/png;base64," + base64.b64encode(b"not a picture").decode()
    with pytest.raises(openai.BadRequestError, match="not a readable image"):
        client.chat.completions.create(model=NAME, messages=_image_message(bad))
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        client.chat.completions.create(model=NAME, messages=_image_message("/no/such.png"))


def test_a_text_model_refuses_an_image_with_a_400(tiny_model_build: TinyBuild) -> None:
    loaded = LocalChatProvider(device="cpu").load(str(tiny_model_build.model_dir))
    server = Served(Batcher(loaded, batch_size=2, max_queue=4))
    try:
        with pytest.raises(openai.BadRequestError, match="does not take images"):
            server.client().chat.completions.create(
                model=NAME, messages=_image_message(data_uri(RED))
            )
    finally:
        server.close()


def test_a_merged_vision_export_serves_images(
    tiny_vlm_build: VisionBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merging an adapter into builtin-tiny-vl gives a folder that still answers images."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from ftwizard.providers.local.export import export_merged
    from ftwizard.providers.local.vision_train import lora_targets

    base = AutoModelForImageTextToText.from_pretrained(str(tiny_vlm_build.model_dir))
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=lora_targets(False), init_lora_weights=False)
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(str(adapter))
    merged = export_merged(adapter, tmp_path / "merged", base_model=str(tiny_vlm_build.model_dir))
    assert json.loads((merged / "config.json").read_text())["vision_config"]
    provider = LocalChatProvider(device="cpu")
    tuned = _own_answer(provider, adapter, RED)
    assert _own_answer(provider, merged, RED) == tuned
