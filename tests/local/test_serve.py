"""The local server as real OpenAI clients see it: the openai SDK, streaming, errors, load.

The server runs in this process (its HTTP server and batcher on threads) over the tiny model,
so these tests pay for one model load; every answer is checked against OpenAI's OpenAPI spec.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ftwizard.providers.local.batcher import Batcher, GenerationJob, QueueFull
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.local.serve_http import OpenAIServer, make_handler
from tests.local.openapi_spec import assert_matches_spec
from tests.tiny_local import TinyBuild, tiny_model_build

__all__ = ["tiny_model_build"]

NAME = "ftwizard-tuned"
MESSAGES: list[Any] = [
    {"role": "system", "content": "you answer questions about birds"},
    {"role": "user", "content": "which bird is number one"},
]


class Served:
    """A server on 127.0.0.1 in this process."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.httpd = OpenAIServer(("127.0.0.1", 0), make_handler(NAME, batcher, 1_700_000_000))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="unused", max_retries=0, timeout=120)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def loaded(tiny_model_build: TinyBuild) -> Any:
    return LocalChatProvider(device="cpu").load(str(tiny_model_build.model_dir))


@pytest.fixture(scope="module")
def served(loaded: Any) -> Iterator[Served]:
    server = Served(Batcher(loaded, batch_size=16, max_queue=64))
    yield server
    server.close()


def test_completion_matches_the_spec_and_n_gives_n_choices(served: Served) -> None:
    with httpx.Client(base_url=served.base_url, timeout=120) as http:
        reply = http.post(
            "/chat/completions",
            json={"model": NAME, "messages": MESSAGES, "n": 2, "max_completion_tokens": 6},
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert_matches_spec("CreateChatCompletionResponse", body)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["model"] == NAME
    assert 1 <= body["usage"]["completion_tokens"] <= 12
    assert body["usage"]["prompt_tokens"] > 5


def test_sdk_stream_yields_text_token_by_token_with_usage_last(served: Served) -> None:
    client = served.client()
    whole = client.chat.completions.create(
        model=NAME, messages=MESSAGES, max_completion_tokens=10, seed=1
    )
    text = whole.choices[0].message.content or ""
    chunks = list(
        client.chat.completions.create(
            model=NAME,
            messages=MESSAGES,
            max_completion_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        assert_matches_spec(
            "CreateChatCompletionStreamResponse", chunk.model_dump(mode="json", exclude_unset=True)
        )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 2, pieces  # token by token, not one blob
    assert "".join(pieces).strip() == text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert all(c.usage is None for c in chunks[:-1])
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in {"stop", "length"} and set(finishes[:-1]) == {None}


def test_stop_and_max_completion_tokens(served: Served) -> None:
    client = served.client()
    full = client.chat.completions.create(model=NAME, messages=MESSAGES, max_tokens=12)
    text = full.choices[0].message.content or ""
    assert len(text) >= 4, text
    stop = text[2:4]
    cut = client.chat.completions.create(model=NAME, messages=MESSAGES, max_tokens=12, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in (cut.choices[0].message.content or "")
    assert text.startswith(cut.choices[0].message.content or "")
    streamed = client.chat.completions.create(
        model=NAME, messages=MESSAGES, max_tokens=12, stop=stop, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).strip() == (
        cut.choices[0].message.content
    )
    short = client.chat.completions.create(model=NAME, messages=MESSAGES, max_completion_tokens=2)
    assert short.usage is not None and short.usage.completion_tokens <= 2


def _first_position_logprobs(loaded: Any, k: int) -> list[float]:
    """The model's own top-``k`` log-probabilities for the first answer token of MESSAGES."""
    import torch

    from ftwizard.providers.local.chat_format import render_prompt

    prompt = render_prompt(loaded.tokenizer, MESSAGES)
    ids = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = loaded.model(**ids).logits[0, -1].float()
    return [float(v) for v in torch.log_softmax(logits, dim=-1).topk(k).values]


def _answer_bytes(content: list[Any]) -> str:
    return bytes(b for entry in content for b in entry.bytes).decode("utf-8", "replace")


def test_logprobs_are_the_models_own_for_every_answer_token(served: Served, loaded: Any) -> None:
    raw = served.client().chat.completions.with_raw_response.create(
        model=NAME, messages=MESSAGES, max_completion_tokens=8, logprobs=True, top_logprobs=5
    )
    assert_matches_spec("CreateChatCompletionResponse", raw.http_response.json())
    reply = raw.parse()
    choice = reply.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    content = choice.logprobs.content
    assert reply.usage is not None and len(content) == reply.usage.completion_tokens
    # The tokens' bytes spell the answer.
    assert _answer_bytes(content).strip() == choice.message.content
    for entry in content:
        assert [t.logprob for t in entry.top_logprobs] == sorted(
            (t.logprob for t in entry.top_logprobs), reverse=True
        )
        assert len(entry.top_logprobs) == 5 and entry.logprob <= 0
        # Greedy decoding picked the most likely token, and says so.
        assert entry.token == entry.top_logprobs[0].token
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)
    own = _first_position_logprobs(loaded, 5)
    assert [t.logprob for t in content[0].top_logprobs] == pytest.approx(own, abs=1e-4)


def test_streamed_logprobs_arrive_with_their_text_and_match_the_whole_answer(
    served: Served,
) -> None:
    client = served.client()
    asked: dict[str, Any] = {"logprobs": True, "top_logprobs": 2, "max_completion_tokens": 10}
    whole = client.chat.completions.create(model=NAME, messages=MESSAGES, **asked)
    chunks = list(
        client.chat.completions.create(model=NAME, messages=MESSAGES, stream=True, **asked)
    )
    streamed: list[Any] = []
    for chunk in chunks:
        assert_matches_spec(
            "CreateChatCompletionStreamResponse", chunk.model_dump(mode="json", exclude_unset=True)
        )
        if not chunk.choices or chunk.choices[0].logprobs is None:
            continue
        delta = chunk.choices[0]
        entries = delta.logprobs.content or []  # type: ignore[union-attr]
        if delta.delta.content:  # the chunk's text is made of its tokens' bytes
            assert entries and _answer_bytes(entries).endswith(delta.delta.content)
        streamed.extend(entries)
    assert whole.choices[0].logprobs is not None
    expected = whole.choices[0].logprobs.content or []
    assert [(e.token, e.bytes) for e in streamed] == [(e.token, e.bytes) for e in expected]
    assert [e.logprob for e in streamed] == pytest.approx([e.logprob for e in expected], abs=1e-4)
    assert all(len(e.top_logprobs) == 2 for e in streamed)


def test_logprobs_need_logprobs_true_and_at_most_20_alternatives(served: Served) -> None:
    with httpx.Client(base_url=served.base_url) as http:
        for payload in ({"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 21}):
            reply = http.post(
                "/chat/completions", json={"model": NAME, "messages": MESSAGES, **payload}
            )
            assert reply.status_code == 400, payload
            assert_matches_spec("ErrorResponse", reply.json())
            assert reply.json()["error"]["param"] == "top_logprobs"
    plain = served.client().chat.completions.create(
        model=NAME, messages=MESSAGES, max_completion_tokens=3
    )
    assert plain.choices[0].logprobs is None  # not asked, not computed


def test_models_list_the_public_name(served: Served) -> None:
    with httpx.Client(base_url=served.base_url) as http:
        body = http.get("/models").json()
    assert_matches_spec("ListModelsResponse", body)
    assert [m["id"] for m in body["data"]] == [NAME]
    assert served.client().models.retrieve(NAME).owned_by == "ftwizard"


def test_unknown_model_and_bad_requests_answer_the_spec_error(served: Served) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        served.client().chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    with httpx.Client(base_url=served.base_url) as http:
        for payload, param in (
            ({"model": NAME, "messages": []}, "messages"),
            ({"model": NAME, "messages": MESSAGES, "n": 0}, "n"),
            ({"model": NAME, "messages": MESSAGES, "tools": [{"type": "function"}]}, "tools"),
            ({"messages": MESSAGES}, "model"),
        ):
            reply = http.post("/chat/completions", json=payload)
            assert reply.status_code == 400, payload
            assert_matches_spec("ErrorResponse", reply.json())
            assert reply.json()["error"]["param"] == param
        missing = http.get("/models/nope")
        assert missing.status_code == 404
        assert_matches_spec("ErrorResponse", missing.json())


def test_twenty_concurrent_requests_all_succeed_in_batches(served: Served) -> None:
    client = served.client()

    def call(i: int) -> tuple[str, int, int | None]:
        # Every other request asks for logprobs: they share batches with those that do not.
        reply = client.chat.completions.create(
            model=NAME,
            messages=[{"role": "user", "content": f"which bird is number {i}"}],
            max_completion_tokens=8,
            **({"logprobs": True, "top_logprobs": 3} if i % 2 else {}),
        )
        choice = reply.choices[0]
        content = choice.logprobs.content if choice.logprobs else None
        assert reply.usage is not None
        return (
            choice.finish_reason,
            reply.usage.completion_tokens,
            None if content is None else len(content),
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    assert all(reason in {"stop", "length"} for reason, _, _ in results)
    assert all(entries is None for _, _, entries in results[0::2])
    assert all(entries == tokens for _, tokens, entries in results[1::2])
    assert time.monotonic() - started < 60


def test_a_full_queue_answers_503_with_retry_after(loaded: Any) -> None:
    gate = threading.Event()
    batcher = Batcher(loaded, batch_size=1, max_queue=1)
    busy = threading.Event()

    def blocked(jobs: list[GenerationJob]) -> None:
        busy.set()
        gate.wait(30)

    batcher._generate = blocked  # type: ignore[method-assign]
    batcher.submit(GenerationJob(prompt="a"))
    assert busy.wait(10)
    batcher.submit(GenerationJob(prompt="b"))
    with pytest.raises(QueueFull):
        batcher.submit(GenerationJob(prompt="c"))
    server = Served(batcher)
    try:
        with httpx.Client(base_url=server.base_url) as http:
            reply = http.post("/chat/completions", json={"model": NAME, "messages": MESSAGES})
        assert reply.status_code == 503
        assert reply.headers["retry-after"] == "1"
        assert_matches_spec("ErrorResponse", reply.json())
    finally:
        gate.set()
        server.close()


def test_the_detached_server_streams_to_the_sdk(
    tiny_model_build: TinyBuild, tmp_path: Path
) -> None:
    from ftwizard.providers.local.serve import LocalServer
    from tests.tiny_local import worker_env

    server = LocalServer.start(
        str(tiny_model_build.model_dir),
        tmp_path / "serve",
        name=NAME,
        env=worker_env(tiny_model_build.home),
        timeout_s=180,
    )
    try:
        record = server.record()
        assert record is not None and record.host == "127.0.0.1" and record.name == NAME
        client = openai.OpenAI(base_url=record.base_url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == [NAME]
        stream = client.chat.completions.create(
            model=NAME, messages=MESSAGES, max_completion_tokens=8, stream=True
        )
        pieces = [c.choices[0].delta.content for c in stream if c.choices]
        assert len([p for p in pieces if p]) >= 2
    finally:
        server.stop()
    assert not server.is_alive()


def test_a_token_holding_part_of_a_character_shows_its_raw_bytes(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from ftwizard.providers.local.logprobs import TokenPieces
    from tests.local.families import build_family

    tokenizer = AutoTokenizer.from_pretrained(str(build_family("llama", tmp_path / "llama")))
    pieces = TokenPieces(tokenizer)
    ids = tokenizer.encode("é robin", add_special_tokens=False)
    shown = [pieces(i) for i in ids]
    # "é" is two bytes the tiny vocabulary never merged: each token is one of them.
    assert shown[:2] == [("bytes:\\xc3", (0xC3,)), ("bytes:\\xa9", (0xA9,))]
    assert bytes(b for _, raw in shown for b in raw or ()).decode("utf-8") == "é robin"
    assert all(not text.startswith("bytes:") for text, _ in shown[2:])


class _Scripted:
    """A model whose greedy reply is a fixed list of tokens, checked step by step as
    ``generate`` checks its stopping criteria."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens

    def generate(self, input_ids: Any, stopping_criteria: Any, **_: Any) -> Any:
        import torch

        for token in self.tokens:
            input_ids = torch.cat([input_ids, torch.tensor([[token]])], dim=1)
            if bool(stopping_criteria(input_ids, None).all()):
                break
        return input_ids


def test_a_streamed_reply_is_its_whole_decode_when_a_byte_run_turns_out_invalid(
    tmp_path: Path,
) -> None:
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from ftwizard.providers.local.batcher import Delta, Done
    from tests.local.families import build_family

    # A SentencePiece tokenizer (Phi-3's kind) decodes a run of byte tokens as a whole: "PB"
    # reads as text until the next bytes make the run invalid UTF-8, and then all of it is
    # U+FFFD. Random weights write such runs; what was streamed must not disagree with them.
    tokenizer = AutoTokenizer.from_pretrained(str(build_family("phi3", tmp_path / "phi3")))
    tokens = tokenizer.convert_tokens_to_ids(["<0x50>", "<0x42>", "<0xCF>", "<0x07>", "▁robin"])
    assert tokenizer.decode(tokens[:2]) == "PB" and not tokenizer.decode(tokens).startswith("P")
    loaded = SimpleNamespace(
        tokenizer=tokenizer,
        processor=None,
        model=_Scripted(tokens),
        end_ids=[tokenizer.convert_tokens_to_ids("<|end|>")],
        device="cpu",
    )
    job = Batcher(loaded, batch_size=1).submit(
        GenerationJob(prompt="<|user|>\nhi<|end|>\n<|assistant|>\n", max_tokens=len(tokens))
    )
    streamed: list[str] = []
    while not isinstance(event := job.events.get(timeout=30), Done):
        if isinstance(event, Delta):
            streamed.append(event.text)
    assert "".join(streamed) == tokenizer.decode(tokens, skip_special_tokens=True)
