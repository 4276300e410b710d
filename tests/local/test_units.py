"""Fast tests of the local backend's pieces: tiny model, config, data, events, provider."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.base import (
    ChatMessage,
    ChatProvider,
    Generation,
    GenerationRequest,
    ProviderError,
)
from ftwizard.providers.local.chat import LocalChatProvider
from ftwizard.providers.local.config import (
    LocalHyperparameters,
    LocalTrainingConfig,
    default_hyperparameters,
    parse_training_config,
)
from ftwizard.providers.local.data import dpo_rows, read_jsonl, rft_rows, sft_rows
from ftwizard.providers.local.events import EventLog, TrainingEvent, read_events
from ftwizard.providers.local.job import CheckpointInfo, best_checkpoint, worker_command
from ftwizard.providers.local.models import resolve_local_model
from ftwizard.providers.local.process import pid_alive, visible_gpu_count
from ftwizard.providers.local.rewards import import_callable
from ftwizard.providers.local.tiny_model import TinyModelSpec, build_tiny_model, ensure_tiny_model
from tests.tiny_local import TICKETS_DIR, Tickets, accuracy


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- tiny model ----------------------------------------------------------------------------


def test_tiny_model_build_is_deterministic(tmp_path: Path) -> None:
    spec = TinyModelSpec(vocab_size=400, hidden_size=32, intermediate_size=64)
    a = build_tiny_model(tmp_path / "a", spec)
    b = build_tiny_model(tmp_path / "b", spec)
    for name in ("model.safetensors", "tokenizer.json"):
        assert _sha(a / name) == _sha(b / name)
    c = build_tiny_model(tmp_path / "c", spec.model_copy(update={"seed": 1}))
    assert _sha(c / "model.safetensors") != _sha(a / "model.safetensors")


def test_builtin_tiny_is_built_once_in_the_home(isolated_home: Path) -> None:
    first = resolve_local_model("local:builtin-tiny")
    assert first.is_relative_to(isolated_home)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model() == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_tiny_chat_template_marks_the_answer(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "bug"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == "<|user|>hi<|end|><|assistant|>bug<|end|>"
    out = tok.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(answer) == "bug<|end|>"


def test_uncached_hub_model_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        resolve_local_model("someorg/some-model")
    with pytest.raises(InputError, match="model folder not found"):
        resolve_local_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no config\.json"):
        resolve_local_model(str(tmp_path / "empty"))


# -- config --------------------------------------------------------------------------------


def _config(tmp_path: Path, **update: object) -> dict[str, object]:
    data: dict[str, object] = {
        "method": "sft",
        "base_model": "local:builtin-tiny",
        "train_file": str(TICKETS_DIR / "train.jsonl"),
        "run_dir": str(tmp_path / "run"),
    }
    data.update(update)
    return data


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="RFT needs a reward"):
        parse_training_config(_config(tmp_path, method="rft"))
    with pytest.raises(InputError) as err:
        parse_training_config(_config(tmp_path, hyperparameters={"learning_rate": -1}))
    assert err.value.field == "hyperparameters.learning_rate"
    with pytest.raises(InputError, match="multiple of num_generations"):
        parse_training_config(
            _config(
                tmp_path,
                method="rft",
                reward={"function": "mod:fn"},
                hyperparameters={"batch_size": 6, "num_generations": 4},
            )
        )
    with pytest.raises(InputError, match="exactly one"):
        parse_training_config(_config(tmp_path, method="rft", reward={}))
    with pytest.raises(InputError, match="module:function"):
        parse_training_config(_config(tmp_path, method="rft", reward={"function": "no colon"}))
    with pytest.raises(InputError, match="only used by RFT"):
        parse_training_config(_config(tmp_path, reward={"function": "m:f"}))


def test_default_hyperparameters_suit_the_model() -> None:
    tiny = default_hyperparameters("local:builtin-tiny")
    assert tiny.learning_rate > LocalHyperparameters().learning_rate
    assert default_hyperparameters("Qwen/Qwen3-0.6B") == LocalHyperparameters()
    rft = default_hyperparameters("builtin-tiny", "rft")
    assert (rft.batch_size * rft.grad_accumulation) % rft.num_generations == 0


def test_worker_command_uses_accelerate_for_many_processes(tmp_path: Path) -> None:
    config = LocalTrainingConfig.model_validate(_config(tmp_path, num_processes=2))
    command = worker_command(config, tmp_path / "c.json", "py")
    assert command[:4] == ["py", "-m", "accelerate.commands.launch", "--multi_gpu"]
    assert command[-3:] == ["-m", "ftwizard.providers.local.worker", str(tmp_path / "c.json")]
    cpu = LocalTrainingConfig.model_validate(_config(tmp_path, device="cpu"))
    assert worker_command(cpu, tmp_path / "c.json", "py")[1:3] == [
        "-m",
        "ftwizard.providers.local.worker",
    ]


def test_visible_gpu_count_reads_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,3")
    assert visible_gpu_count() == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpu_count() == 0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpu_count() == 0


# -- data ----------------------------------------------------------------------------------


def test_dataset_rows_for_each_method(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    chat = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ],
        "reference_answer": "a",
    }
    sft = sft_rows([chat], path)[0]
    assert sft["messages"][-1] == {"role": "assistant", "content": "a"}
    rft = rft_rows([chat], path)[0]
    assert [m["role"] for m in rft["prompt"]] == ["system", "user"]
    assert rft["reference_answer"] == "a"
    pref = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    dpo = dpo_rows([pref], path)[0]
    assert dpo["chosen"][0]["content"] == "good" and dpo["rejected"][0]["content"] == "bad"
    with pytest.raises(InputError) as err:
        sft_rows([chat, {"messages": [{"role": "user", "content": "no answer"}]}], path)
    assert err.value.line == 2


def test_read_jsonl_points_at_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(InputError) as err:
        read_jsonl(path)
    assert err.value.line == 2 and err.value.path == path


# -- events, checkpoints, processes ----------------------------------------------------------


def test_read_events_leaves_a_partial_line_for_later(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.write(TrainingEvent(event="start"))
    log.write(TrainingEvent(event="metrics", step=1, metrics={"loss": 2.0}))
    with path.open("a") as f:
        f.write('{"event": "metr')
    events, offset = read_events(path)
    assert [e.event for e in events] == ["start", "metrics"]
    assert events[1].metrics == {"loss": 2.0}
    with path.open("a") as f:
        f.write('ics", "step": 2, "metrics": {"loss": 1.5}}\n')
    more, offset2 = read_events(path, offset)
    assert [(e.step, e.metrics["loss"]) for e in more] == [(2, 1.5)]
    assert offset2 == path.stat().st_size
    assert read_events(path, offset2) == ([], offset2)


def test_best_checkpoint_by_eval_loss_or_reward() -> None:
    ckpts = [
        CheckpointInfo(step=10, path="c10", metrics={"eval_loss": 0.5, "reward": 0.2}),
        CheckpointInfo(step=20, path="c20", metrics={"eval_loss": 0.3, "reward": 0.9}),
        CheckpointInfo(step=30, path="c30", metrics={"eval_loss": 0.4, "reward": 0.6}),
    ]
    best = best_checkpoint(ckpts)
    assert best is not None and best.step == 20
    late = best_checkpoint(ckpts, "reward")
    assert late is not None and late.step == 20
    assert best_checkpoint(ckpts, "eval_loss", mode="max").step == 10  # type: ignore[union-attr]
    assert best_checkpoint([CheckpointInfo(step=1, path="p")]) is None


def test_pid_alive_tells_a_reused_pid_apart() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(proc.pid)
        assert not pid_alive(proc.pid, start_ticks=1)
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid)


def test_import_callable_from_module_and_file(tmp_path: Path) -> None:
    assert import_callable("os.path:join") is os.path.join
    script = tmp_path / "rewards.py"
    script.write_text(
        "def score(prompts, completions, **kw):\n    return [1.0] * len(completions)\n"
    )
    func = import_callable(f"{script}:score")
    assert func(prompts=["p"], completions=["c"]) == [1.0]
    with pytest.raises(InputError, match="not a function"):
        import_callable("os.path:nothing_here")
    with pytest.raises(InputError, match="cannot import"):
        import_callable("no_such_module_xyz:f")


# -- provider ------------------------------------------------------------------------------


def _request(text: str, **kw: object) -> GenerationRequest:
    return GenerationRequest(
        model="local:builtin-tiny", messages=[ChatMessage(role="user", content=text)], **kw
    )


class CountingProvider(LocalChatProvider):
    """Records the size of every batch handed to the model."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.batches: list[int] = []

    def _run_batch(
        self, model: str, requests: Sequence[GenerationRequest], max_tokens: int, temperature: float
    ) -> list[Generation]:
        self.batches.append(len(requests))
        return super()._run_batch(model, requests, max_tokens, temperature)


def test_local_provider_generates_a_batch(tiny_model: Path) -> None:
    provider = CountingProvider(device="cpu", batch_size=4)
    assert isinstance(provider, ChatProvider)
    prompts = [f"ticket number {i}" for i in range(6)]

    async def run() -> list[list[str]]:
        first = await provider.generate_batch([_request(p, max_tokens=5) for p in prompts])
        again = await asyncio.gather(
            *(provider.generate(_request(p, max_tokens=5)) for p in prompts)
        )
        return [[g.text for g in first], [g.text for g in again], [g.output_tokens for g in first]]

    texts, again, out_tokens = asyncio.run(run())
    # Six concurrent calls share batches of at most four, whichever API they came through.
    assert provider.batches == [4, 2, 4, 2]
    assert len(texts) == 6
    # Greedy decoding does not depend on which batch a request landed in.
    assert texts == again
    assert all(0 < n <= 5 for n in out_tokens)
    assert len(set(texts)) > 1


def test_local_provider_rejects_structured_output(tiny_model: Path) -> None:
    provider = LocalChatProvider(device="cpu")
    with pytest.raises(ProviderError, match="json_schema"):
        asyncio.run(provider.generate(_request("hi", json_schema={"type": "object"})))


def test_local_provider_unknown_model_is_an_input_error(isolated_home: Path) -> None:
    provider = LocalChatProvider(device="cpu")
    request = _request("hi").model_copy(update={"model": str(isolated_home / "nope")})
    with pytest.raises(InputError, match="model folder not found"):
        asyncio.run(provider.generate(request))


def test_untrained_tiny_model_does_not_know_the_labels(tiny_model: Path, tickets: Tickets) -> None:
    rows = tickets.valid_rows()[:24]
    assert accuracy("builtin-tiny", rows) <= 0.25


def test_tickets_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(TICKETS_DIR / "generate.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "480 train and 120 valid" in out.stdout
    for name in ("train.jsonl", "valid.jsonl"):
        assert _sha(tmp_path / name) == _sha(TICKETS_DIR / name)
    train = [json.loads(line) for line in (TICKETS_DIR / "train.jsonl").read_text().splitlines()]
    valid = [json.loads(line) for line in (TICKETS_DIR / "valid.jsonl").read_text().splitlines()]
    labels = [row["messages"][-1]["content"] for row in train]
    assert {labels.count(label) for label in set(labels)} == {120}
    assert {json.dumps(r["messages"]) for r in valid}.isdisjoint(
        json.dumps(r["messages"]) for r in train
    )


def test_local_backend_imports_no_heavy_library() -> None:
    code = (
        "import sys, ftwizard.providers.local.chat, ftwizard.providers.local.job, "
        "ftwizard.providers.local.export, ftwizard.providers.local.rewards; "
        "print([m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reward_from_grader_file_or_function(tmp_path: Path) -> None:
    from ftwizard.providers.local.config import RewardConfig
    from ftwizard.providers.local.rewards import load_reward_function

    graded = load_reward_function(RewardConfig(grader_file=TICKETS_DIR / "grader.yaml"))
    scores = graded(
        prompts=["p1", "p2"],
        completions=[[{"role": "assistant", "content": "bug"}], "billing"],
        reference_answer=["bug", "account"],
        completion_ids=[[1], [2]],
    )
    assert scores == [1.0, 0.0]
    script = tmp_path / "length_reward.py"
    script.write_text(
        "def shortness(prompts, completions, **kw):\n"
        "    return [1.0 / (1 + len(c)) for c in completions]\n"
    )
    func = load_reward_function(RewardConfig(function=f"{script}:shortness"))
    assert func(prompts=["p"], completions=["abc"]) == [0.25]


def test_model_without_chat_template_is_an_input_error(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model, plain)
    (plain / "chat_template.jinja").unlink()
    provider = LocalChatProvider(device="cpu")
    request = _request("hi").model_copy(update={"model": str(plain)})
    with pytest.raises(InputError, match="no chat template"):
        asyncio.run(provider.generate(request))
