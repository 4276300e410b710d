"""Continuous-ish batched generation for the local server: many requests, one model, one thread.

HTTP handler threads :meth:`Batcher.submit` a :class:`GenerationJob` (one prompt, ``n``
choices) and read its events. One generation thread takes every waiting job that shares the
sampling settings (up to ``batch_size`` rows), runs one left-padded ``model.generate`` and, at
every step, hands each row's new text to its job through a per-row stopping criterion, which
also ends a row on its end-of-turn token, its own token limit, a ``stop`` string, or a client
that went away. The queue is bounded: :class:`QueueFull` tells the caller to answer 503.

A SentencePiece tokenizer decodes a run of byte tokens as a whole, and when the run is not valid
UTF-8 every byte of it becomes U+FFFD, even one that read as a letter a token earlier. So the
text of a run still growing is held back until it ends: what was sent is never rewritten, and
a reply streamed or whole is the one-shot decode of its tokens.

A job that asks for ``logprobs`` gets each token's entry with the text that first shows it
(:class:`Delta`) or, for tokens whose text never shows (a stop string), with its
:class:`Finish`; a batch without such a job computes none (see :mod:`.logprobs`).

torch and transformers are imported in the generation thread only.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from ftwizard.providers.local.chat_format import strip_thinking
from ftwizard.providers.local.logprobs import (
    StepLogprobs,
    TokenLogprob,
    TokenPieces,
    byte_fallback_ids,
)
from ftwizard.providers.local.vision import encode_batch

FinishReason = Literal["stop", "length"]


class QueueFull(Exception):
    """The server has as many requests waiting as it accepts."""


@dataclass(frozen=True)
class Delta:
    """New text of choice ``index``."""

    index: int
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finish:
    """Choice ``index`` ended."""

    index: int
    reason: FinishReason
    completion_tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Done:
    """Every choice of the job ended; ``prompt_tokens`` is the prompt's length."""

    prompt_tokens: int


@dataclass(frozen=True)
class Failed:
    """Generation raised."""

    message: str


Event = Delta | Finish | Done | Failed


@dataclass
class GenerationJob:
    """One chat completion request as the batcher sees it."""

    prompt: str
    # Decoded images (PIL) for the prompt's image placeholders, in order; a VLM's only.
    images: list[Any] = field(default_factory=list)
    n: int = 1
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    # Return each token's log-probability, with this many of the most likely alternatives.
    logprobs: bool = False
    top_logprobs: int = 0
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def batch_key(self) -> tuple[float, float, int | None]:
        """Jobs with equal keys may share a ``generate`` call (sampling is per call)."""
        return (self.temperature, self.top_p if self.temperature > 0 else 1.0, self.seed)


@dataclass
class _Row:
    job: GenerationJob
    index: int
    tokens: list[int] = field(default_factory=list)
    sent: str = ""
    finished: bool = False
    # Log-probability entries of tokens whose text has not been sent yet.
    pending: list[TokenLogprob] = field(default_factory=list)

    def take_pending(self) -> tuple[TokenLogprob, ...]:
        taken = tuple(self.pending)
        self.pending.clear()
        return taken


def _visible(text: str, stop: list[str], *, final: bool = False) -> tuple[str, bool]:
    """The part of ``text`` a client may see now, and whether a stop string was reached.

    Until ``final``, text that could still grow into a stop string, an open thinking block
    and a half-decoded character are held back."""
    hit = False
    for s in stop:
        at = text.find(s)
        if at >= 0:
            text, hit = text[:at], True
    text = strip_thinking(text)
    if final or hit:
        return text, hit
    if "<think>" in text:
        text = text[: text.index("<think>")]
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                text = text[:-k]
                break
    return text.rstrip("\ufffd"), hit


def _settled(tokens: list[int], byte_ids: frozenset[int]) -> list[int]:
    """``tokens`` without a trailing run of byte tokens, whose text may still change."""
    end = len(tokens)
    while end and tokens[end - 1] in byte_ids:
        end -= 1
    return tokens[:end]


class Batcher:
    """Runs :class:`GenerationJob` s on one loaded model, batched, on its own thread."""

    def __init__(self, loaded: Any, *, batch_size: int = 16, max_queue: int = 64) -> None:
        self.loaded = loaded
        self.batch_size = batch_size
        self._queue: queue.Queue[GenerationJob] = queue.Queue(maxsize=max_queue)
        self._held: list[GenerationJob] = []
        self._pieces: TokenPieces | None = None
        self._byte_ids: frozenset[int] | None = None
        self._thread = threading.Thread(target=self._run, name="ftwizard-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: GenerationJob) -> GenerationJob:
        """Queue ``job``; raises :class:`QueueFull` when the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None
        return job

    def _next_batch(self) -> list[GenerationJob]:
        first = self._held.pop(0) if self._held else self._queue.get()
        batch, rows = [first], first.n
        key = first.batch_key()
        keep: list[GenerationJob] = []
        candidates = self._held
        self._held = []
        while True:
            try:
                candidates.append(self._queue.get_nowait())
            except queue.Empty:
                break
        for job in candidates:
            if job.batch_key() == key and rows + job.n <= self.batch_size and key[2] is None:
                batch.append(job)
                rows += job.n
            else:
                keep.append(job)
        self._held = keep
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            live = [job for job in batch if not job.cancelled.is_set()]
            if not live:
                continue
            try:
                self._generate(live)
            except Exception as exc:  # report to the callers; the server keeps serving
                for job in live:
                    job.events.put(Failed(f"generation failed: {type(exc).__name__}: {exc}"))

    def _generate(self, jobs: list[GenerationJob]) -> None:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        loaded = self.loaded
        tok = loaded.tokenizer
        rows = [_Row(job, i) for job in jobs for i in range(job.n)]
        enc = encode_batch(
            loaded,
            [row.job.prompt for row in rows],
            [image for row in rows for image in row.job.images],
        )
        enc = {k: v.to(loaded.device) for k, v in enc.items()}
        end_ids = set(loaded.end_ids)
        wanted: list[int | None] = [
            row.job.top_logprobs if row.job.logprobs else None for row in rows
        ]
        capture: StepLogprobs | None = None
        if any(want is not None for want in wanted):
            capture = StepLogprobs(max(want or 0 for want in wanted))
            if self._pieces is None:
                self._pieces = TokenPieces(tok)
        pieces = self._pieces
        if self._byte_ids is None:
            self._byte_ids = byte_fallback_ids(tok)
        byte_ids = self._byte_ids

        def finish(row: _Row, reason: FinishReason) -> None:
            row.finished = True
            row.job.events.put(Finish(row.index, reason, len(row.tokens), row.take_pending()))

        class PerRow(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                last = input_ids[:, -1].tolist()
                entries = (
                    capture.entries(input_ids[:, -1], wanted, pieces)
                    if capture is not None and pieces is not None
                    else None
                )
                for i, row in enumerate(rows):
                    if row.finished:
                        done[i] = True
                        continue
                    if row.job.cancelled.is_set():
                        row.finished = done[i] = True
                        continue
                    token = int(last[i])
                    ended = token in end_ids
                    if not ended:
                        row.tokens.append(token)
                        entry = entries[i] if entries is not None else None
                        if entry is not None:
                            row.pending.append(entry)
                    final = ended or len(row.tokens) >= row.job.max_tokens
                    shown = row.tokens if final else _settled(row.tokens, byte_ids)
                    text, hit = _visible(
                        tok.decode(shown, skip_special_tokens=True),
                        row.job.stop,
                        final=final,
                    )
                    self._send(row, text)
                    if ended or hit or final:
                        finish(row, "stop" if ended or hit else "length")
                        done[i] = True
                return done

            @staticmethod
            def _send(row: _Row, text: str) -> None:
                if text.startswith(row.sent) and len(text) > len(row.sent):
                    row.job.events.put(Delta(row.index, text[len(row.sent) :], row.take_pending()))
                    row.sent = text

        key = jobs[0].batch_key()
        sampling: dict[str, Any] = {"do_sample": False}
        if key[0] > 0:
            sampling = {"do_sample": True, "temperature": key[0], "top_p": key[1]}
        if key[2] is not None:
            torch.manual_seed(key[2])
        with torch.inference_mode():
            loaded.model.generate(
                **enc,
                max_new_tokens=max(job.max_tokens for job in jobs),
                pad_token_id=tok.pad_token_id,
                eos_token_id=loaded.end_ids or None,
                stopping_criteria=StoppingCriteriaList([PerRow()]),
                logits_processor=LogitsProcessorList([capture] if capture else []),
                **sampling,
            )
        for row in rows:
            if not row.finished:
                finish(row, "length")
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        start = 0
        for job in jobs:
            job.events.put(Done(int(prompt_lengths[start])))
            start += job.n


__all__ = [
    "Batcher",
    "Delta",
    "Done",
    "Event",
    "Failed",
    "Finish",
    "GenerationJob",
    "QueueFull",
]
