"""The architecture matrix: every local step on tiny models of each family people fine-tune.

For each family of :mod:`tests.local.families`: token counting with its tokenizer, which tokens
carry the SFT loss, SFT / DPO / GRPO for a few steps through the worker's ``run``, a merged
export, generation from it, and the OpenAI-compatible server answering (streaming too).
Two families run in every quick pass; the others are marked slow (CI runs them).
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

from ftwizard.datasets.targets import TargetModel
from ftwizard.datasets.tokens import HFTokenizerCounter, count_messages, counter_for
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.local.batcher import Batcher
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.local.config import LocalHyperparameters, LocalTrainingConfig, RewardConfig
from ftwizard.providers.local.events import read_events
from ftwizard.providers.local.export import export_merged
from ftwizard.providers.local.serve_http import OpenAIServer, make_handler
from ftwizard.providers.local.sft_tokens import tokenize_for_sft
from ftwizard.providers.local.worker import EVENTS_FILE, _Events, run
from ftwizard.session import Backend, Method
from tests.local.families import FAMILIES, family_dirs
from tests.tiny_local import Tickets, TinyBuild, tickets, tiny_model_build

__all__ = ["family_dirs", "tickets", "tiny_model_build"]

QUICK = {"llama", "qwen3"}
PARAMS = [pytest.param(name, marks=() if name in QUICK else pytest.mark.slow) for name in FAMILIES]

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "you answer questions about birds"},
    {"role": "user", "content": "which bird is number one?"},
    {"role": "assistant", "content": "<think>reason</think>the robin."},
    {"role": "user", "content": "which bird sings last?"},
    {"role": "assistant", "content": "the owl."},
]


def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_loss_falls_on_every_assistant_turn_only(family: str, family_dirs: dict[str, Path]) -> None:
    tok = _tokenizer(family_dirs[family])
    out = tokenize_for_sft(tok, CONVERSATION)
    runs: list[list[int]] = []
    previous = 0
    for token, flag in zip(out["input_ids"], out["assistant_masks"], strict=True):
        if flag and not previous:
            runs.append([])
        if flag:
            runs[-1].append(token)
        previous = flag
    end = FAMILIES[family].end_of_turn
    # Qwen3's template drops the thinking block of earlier turns: what is trained is what
    # the template shows.
    first = "the robin." if family == "qwen3" else "<think>reason</think>the robin."
    assert [tok.decode(r) for r in runs] == [first + end, "the owl." + end]
    text = tok.decode(out["input_ids"])
    assert "which bird is number one?" in text and "you answer questions about birds" in text


@pytest.mark.parametrize("family", list(FAMILIES))
def test_tokens_are_counted_with_the_family_tokenizer(
    family: str, family_dirs: dict[str, Path]
) -> None:
    target = TargetModel(
        name=family,
        backend=Backend.local,
        methods=(Method.sft,),
        tokenizer_path=family_dirs[family],
    )
    counter = counter_for(target)
    assert isinstance(counter, HFTokenizerCounter)
    words = len(" ".join(m["content"] for m in CONVERSATION).split())
    assert count_messages(CONVERSATION, counter) >= words


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _train(method: str, model: Path, train: Path, run_dir: Path, **extra: Any) -> Path:
    config = LocalTrainingConfig(
        method=method,  # type: ignore[arg-type]
        base_model=str(model),
        train_file=train,
        run_dir=run_dir,
        hyperparameters=LocalHyperparameters(
            max_steps=2,
            batch_size=2,
            logging_steps=1,
            max_length=128,
            num_generations=2,
            max_completion_length=8,
            learning_rate=1e-3,
        ),
        device="cpu",
        **extra,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    run(config, _Events(run_dir / EVENTS_FILE), threading.Event())
    events = read_events(run_dir / EVENTS_FILE)[0]
    assert events[-1].event == "done", events[-1]
    losses = [e.metrics.get("loss") for e in events if e.event == "metrics"]
    assert any(loss is not None for loss in losses) or method == "rft"
    return run_dir / "adapter"


REWARD = "def reward(completions, **kw):\n    return [float(len(str(c))) for c in completions]\n"


@pytest.mark.parametrize("family", PARAMS)
def test_train_export_serve_generate(
    family: str, family_dirs: dict[str, Path], tmp_path: Path
) -> None:
    model = family_dirs[family]
    sft = _write(tmp_path / "sft.jsonl", [{"messages": CONVERSATION}] * 4)
    adapter = _train("sft", model, sft, tmp_path / "sft")
    prompt = CONVERSATION[:2]
    dpo = _write(
        tmp_path / "dpo.jsonl",
        [
            {
                "input": {"messages": prompt},
                "preferred_output": [{"role": "assistant", "content": "the robin."}],
                "non_preferred_output": [{"role": "assistant", "content": "the owl."}],
            }
        ]
        * 4,
    )
    _train("dpo", model, dpo, tmp_path / "dpo")
    rft = _write(tmp_path / "rft.jsonl", [{"messages": prompt}] * 4)
    (tmp_path / "reward.py").write_text(REWARD, encoding="utf-8")
    _train(
        "rft",
        model,
        rft,
        tmp_path / "rft",
        reward=RewardConfig(function=f"{tmp_path / 'reward.py'}:reward"),
    )

    merged = export_merged(adapter, tmp_path / "merged")
    provider = LocalChatProvider(device="cpu", max_new_tokens=6)
    request = GenerationRequest(
        model=str(merged), messages=[ChatMessage(**m) for m in prompt], max_tokens=6
    )
    reply = asyncio.run(provider.generate(request))
    assert reply.finish_reason in {"stop", "length"} and reply.input_tokens > 5

    batcher = Batcher(provider.load(str(merged)), batch_size=4)
    httpd = OpenAIServer(("127.0.0.1", 0), make_handler("tuned", batcher, 0))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", api_key="x", max_retries=0
        )
        whole = client.chat.completions.create(model="tuned", messages=prompt, max_tokens=6)
        stream = client.chat.completions.create(
            model="tuned", messages=prompt, max_tokens=6, stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed.strip() == (whole.choices[0].message.content or "")
        assert (whole.choices[0].message.content or "") == reply.text
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_masks_equal_the_generation_markers_where_a_template_has_them(
    tiny_model_build: TinyBuild, tickets: Tickets
) -> None:
    tok = _tokenizer(tiny_model_build.model_dir)
    for line in tickets.train.read_text().splitlines()[:5]:
        messages = json.loads(line)["messages"]
        ours = tokenize_for_sft(tok, messages)
        marked = tok.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        assert ours["input_ids"] == list(marked["input_ids"])
        assert ours["assistant_masks"] == list(marked["assistant_masks"])
