"""The local backend's chat provider: batched transformers generation on this machine.

``LocalChatProvider`` implements :class:`~ftwizard.providers.base.ChatProvider`. Concurrent
``generate`` calls are gathered into batches (left-padded, one ``model.generate`` per batch) and
run on a worker thread, so the event loop and the UI stay responsive. Decoding is greedy unless
a request sets a temperature above 0.

The model of a request is ``builtin-tiny``, a model folder, a Hugging Face name already in the
local cache (see :mod:`ftwizard.providers.local.models`), or an adapter folder written by
training (its ``adapter_config.json`` names the base model). An ``adapter`` given to the
constructor is applied to every base model it loads.

torch and transformers are imported on the first generation, never at import time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ftwizard.errors import InputError
from ftwizard.providers.base import Generation, GenerationRequest, ProviderError
from ftwizard.providers.local.chat_format import (
    end_of_turn_ids,
    ensure_pad_token,
    render_prompt,
    strip_thinking,
)
from ftwizard.providers.local.vision import (
    encode_batch,
    image_messages,
    is_vision_model,
    load_images,
    load_processor,
)

DEFAULT_MAX_NEW_TOKENS = 256


@dataclass
class LoadedModel:
    """A model ready to generate: network, tokenizer, device and the ids that end a turn."""

    model: Any
    tokenizer: Any
    device: str
    end_ids: list[int] = field(default_factory=list)
    # A vision-language model's processor (tokenizer + image processor); None for text models.
    processor: Any = None


def adapter_base_model(adapter_dir: Path) -> str | None:
    """The base model an adapter folder was trained on, from its ``adapter_config.json``."""
    config = adapter_dir / "adapter_config.json"
    try:
        if not config.is_file():  # a FIFO or device would hang or never end
            return None
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    return base if isinstance(base, str) and base else None


class LocalChatProvider:
    """Generates with a local transformers model (optionally with a LoRA adapter)."""

    name = "local"

    def __init__(
        self,
        *,
        adapter: str | Path | None = None,
        device: Literal["auto", "cpu", "cuda"] = "auto",
        batch_size: int = 32,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        batch_wait_s: float = 0.005,
    ) -> None:
        if batch_size < 1:
            raise InputError("batch_size must be at least 1", field="batch_size")
        self.adapter = Path(adapter) if adapter is not None else None
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.batch_wait_s = batch_wait_s
        self._models: dict[str, LoadedModel] = {}
        # One generation at a time: a CPU model gains nothing from parallel calls, and
        # loading a model twice would waste memory.
        self._lock = threading.Lock()
        self._pending: list[tuple[GenerationRequest, asyncio.Future[Generation]]] = []
        self._drainer: asyncio.Task[None] | None = None

    # -- async API -------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate one reply; concurrent calls are batched together."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Generation] = loop.create_future()
        self._pending.append((request, future))
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Generate replies for ``requests`` (in order), batched."""
        return list(await asyncio.gather(*(self.generate(r) for r in requests)))

    async def _drain(self) -> None:
        while self._pending:
            # Let the other callers of this tick enqueue, so they share the batch.
            await asyncio.sleep(self.batch_wait_s)
            batch, self._pending = (
                self._pending[: self.batch_size],
                self._pending[self.batch_size :],
            )
            live = [(r, f) for r, f in batch if not f.done()]
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self.generate_sync, [r for r, _ in live])
            except Exception as exc:
                error = exc if isinstance(exc, InputError | ProviderError) else self._wrap(exc)
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    def _wrap(self, exc: Exception) -> ProviderError:
        return ProviderError(f"generation failed: {type(exc).__name__}: {exc}", provider="local")

    # -- sync API (runs on the caller's thread) ----------------------------------------------

    def generate_sync(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Generate replies for ``requests`` on this thread, grouping compatible ones."""
        for request in requests:
            if request.json_schema is not None:
                raise ProviderError(
                    "structured output (json_schema) is not supported by local models",
                    provider="local",
                    model=request.model,
                    hint="use an OpenAI or Anthropic judge for model graders",
                )
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple[str, int, float], list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.model, r.max_tokens or self.max_new_tokens, r.temperature or 0.0)
            groups.setdefault(key, []).append(i)
        with self._lock:
            for (model, max_tokens, temperature), indices in groups.items():
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    out = self._run_batch(
                        model, [requests[i] for i in chunk], max_tokens, temperature
                    )
                    for i, generation in zip(chunk, out, strict=True):
                        results[i] = generation
        return [r for r in results if r is not None]

    def preload(self, model: str) -> None:
        """Load ``model`` now (blocking), so the first request does not pay for it."""
        with self._lock:
            self.load(model)

    def load(self, model: str) -> LoadedModel:
        """``model`` loaded (once; later calls return the same). Callers hold no lock: the
        server's batcher calls it from its one generation thread."""
        loaded = self._models.get(model)
        if loaded is not None:
            return loaded
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from ftwizard.providers.local.models import resolve_local_model

        # tqdm bars on stderr would draw over the terminal UI.
        hf_logging.disable_progress_bar()
        bare = model.removeprefix("local:")
        adapter = self.adapter
        candidate = Path(bare).expanduser()
        if (candidate / "adapter_config.json").is_file():
            base = adapter_base_model(candidate)
            if base is None:
                raise InputError("the adapter does not name its base model", path=candidate)
            adapter, bare = candidate, base
        base_dir = resolve_local_model(bare)
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        processor = None
        if is_vision_model(base_dir):
            processor = load_processor(base_dir)
            tokenizer = processor.tokenizer
            tokenizer.chat_template = tokenizer.chat_template or processor.chat_template
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
        if tokenizer.chat_template is None:
            raise InputError(
                f"model '{bare}' has no chat template; choose an instruct/chat model",
                field="model",
            )
        ensure_pad_token(tokenizer)
        # Decoder-only batches are padded on the left so every row ends where generation starts.
        tokenizer.padding_side = "left"
        if processor is not None:
            from transformers import AutoModelForImageTextToText

            net = AutoModelForImageTextToText.from_pretrained(str(base_dir))
        else:
            net = AutoModelForCausalLM.from_pretrained(str(base_dir))
        if adapter is not None:
            if not (adapter / "adapter_config.json").is_file():
                raise InputError("not a LoRA adapter folder (no adapter_config.json)", path=adapter)
            net = load_adapter(net, adapter)
        net.to(device).eval()
        end_ids = end_of_turn_ids(tokenizer, net.generation_config)
        loaded = LoadedModel(
            model=net, tokenizer=tokenizer, device=device, end_ids=end_ids, processor=processor
        )
        self._models[model] = loaded
        return loaded

    def _run_batch(
        self,
        model: str,
        requests: Sequence[GenerationRequest],
        max_tokens: int,
        temperature: float,
    ) -> list[Generation]:
        import torch

        loaded = self.load(model)
        tok = loaded.tokenizer
        texts: list[str] = []
        refs: list[str] = []
        for r in requests:
            messages, images = image_messages([m.model_dump() for m in r.messages])
            texts.append(render_prompt(tok, messages))
            refs.extend(images)
        enc = encode_batch(loaded, texts, load_images(refs))
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature}
        with torch.inference_mode():
            out = loaded.model.generate(
                **enc,
                max_new_tokens=max_tokens,
                pad_token_id=tok.pad_token_id,
                eos_token_id=loaded.end_ids or None,
                **sampling,
            )
        prompt_len = enc["input_ids"].shape[1]
        label = model.removeprefix("local:")
        results: list[Generation] = []
        for row, mask in zip(out, enc["attention_mask"], strict=True):
            new = row[prompt_len:].tolist()
            stopped = False
            for j, token in enumerate(new):
                if token in loaded.end_ids:
                    new, stopped = new[: j + 1], True
                    break
            text = tok.decode(
                [t for t in new if t not in loaded.end_ids and t != tok.pad_token_id],
                skip_special_tokens=True,
            )
            results.append(
                Generation(
                    text=strip_thinking(text).strip(),
                    model=label,
                    input_tokens=int(mask.sum()),
                    output_tokens=len(new),
                    finish_reason="stop" if stopped else "length",
                )
            )
        return results

    def close(self) -> None:
        """Forget the loaded models (their memory is freed when nothing else holds them)."""
        with self._lock:
            self._models.clear()


def load_adapter(model: Any, adapter_dir: Path) -> Any:
    """``model`` wrapped with the LoRA adapter in ``adapter_dir`` (a peft ``PeftModel``)."""
    from peft import PeftModel

    with warnings.catch_warnings():
        # peft reads a transformers attribute deprecated in 5.x; the warning is theirs to fix
        # and would otherwise land on the user's terminal.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        return PeftModel.from_pretrained(model, str(adapter_dir))


__all__ = ["LoadedModel", "LocalChatProvider", "adapter_base_model", "load_adapter"]
