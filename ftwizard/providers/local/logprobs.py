"""Per-token log-probabilities for the local server's ``logprobs`` / ``top_logprobs``.

:class:`StepLogprobs` is a logits processor that ``generate`` calls last, once per step: it
keeps the log-softmax of the scores the next token is drawn from (the model's own distribution
at temperature 0; scaled and truncated by ``temperature`` / ``top_p`` otherwise), for one step
only. ``output_scores`` would keep every step's full-vocabulary scores for every row until
``generate`` returns (16 rows x 256 steps x 152k vocabulary is 2.5 GB of floats) and hand them
over only at the end, too late for a stream.

:class:`TokenPieces` turns a token id into the text and UTF-8 bytes the API shows; a token that
holds only part of a character shows as ``bytes:\\xe2\\x80`` with its raw bytes, as OpenAI's do.

torch is imported when a step is captured, never at import time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

UNLIKELY = -9999.0
"""The spec's logprob for a token with no chance at all (``-inf`` is not JSON)."""

MAX_TOP_LOGPROBS = 20

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


@dataclass(frozen=True)
class TopLogprob:
    """One of the most likely tokens at a position."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token, its log-probability and the most likely tokens at its position."""

    token: str
    logprob: float
    bytes: tuple[int, ...] | None
    top: tuple[TopLogprob, ...] = ()


def finite(logprob: float) -> float:
    """``logprob``, with ``-inf`` (a token ``top_p`` cut away) as the spec's ``-9999.0``."""
    return logprob if math.isfinite(logprob) else UNLIKELY


def _byte_level_decoder() -> dict[str, int]:
    # GPT-2's byte-to-unicode table, inverted: byte-level BPE (Llama 3, Qwen, Phi) writes each
    # byte as one printable character.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


_BYTE_LEVEL = _byte_level_decoder()


def byte_fallback_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of a SentencePiece tokenizer's byte tokens (``<0x00>`` to ``<0xFF>``); empty
    for a byte-level BPE tokenizer, which has none."""
    return frozenset(
        token_id for piece, token_id in tokenizer.get_vocab().items() if _BYTE_TOKEN.match(piece)
    )


class TokenPieces:
    """Token id -> (text, UTF-8 bytes) as the API shows it, cached per id."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._cache: dict[int, tuple[str, tuple[int, ...] | None]] = {}

    def __call__(self, token_id: int) -> tuple[str, tuple[int, ...] | None]:
        """The token's text and bytes; ``bytes:\\xNN...`` text for part of a character."""
        found = self._cache.get(token_id)
        if found is None:
            found = self._cache[token_id] = self._piece(token_id)
        return found

    def _piece(self, token_id: int) -> tuple[str, tuple[int, ...] | None]:
        text = self._tokenizer.decode([token_id], skip_special_tokens=False)
        if "\ufffd" not in text:
            return text, tuple(text.encode("utf-8"))
        raw = self._raw_bytes(str(self._tokenizer.convert_ids_to_tokens(token_id)))
        if raw is None:
            return text, None
        return "bytes:" + "".join(f"\\x{b:02x}" for b in raw), raw

    @staticmethod
    def _raw_bytes(piece: str) -> tuple[int, ...] | None:
        byte_token = _BYTE_TOKEN.match(piece)  # SentencePiece byte fallback: <0xE2>
        if byte_token:
            return (int(byte_token.group(1), 16),)
        if piece and all(ch in _BYTE_LEVEL for ch in piece):
            return tuple(_BYTE_LEVEL[ch] for ch in piece)
        return None


class StepLogprobs:
    """A logits processor that keeps the current step's log-probabilities (see the module
    docstring); it returns the scores unchanged."""

    def __init__(self, top: int) -> None:
        self.top = top
        self._logprobs: Any = None
        self._top: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self._logprobs = torch.log_softmax(scores.float(), dim=-1)
        k = min(self.top, scores.shape[-1])  # a test model's vocabulary may be under 20
        self._top = self._logprobs.topk(k, dim=-1) if k else None
        return scores

    def entries(
        self, chosen: Any, rows: list[int | None], pieces: TokenPieces
    ) -> list[TokenLogprob | None]:
        """For each batch row, the entry of its ``chosen`` token (a 1-D tensor) with up to
        ``rows[i]`` alternatives, or ``None`` where ``rows[i]`` is ``None`` (not asked)."""
        if self._logprobs is None:
            return [None] * len(rows)
        chosen_lp = self._logprobs.gather(1, chosen[:, None].to(self._logprobs.device))
        chosen_lp = chosen_lp[:, 0].tolist()
        ids = chosen.tolist()
        top_values = top_ids = None
        if self._top is not None:
            top_values, top_ids = self._top.values.tolist(), self._top.indices.tolist()
        out: list[TokenLogprob | None] = []
        for i, want in enumerate(rows):
            if want is None:
                out.append(None)
                continue
            alternatives: tuple[TopLogprob, ...] = ()
            if want and top_values is not None and top_ids is not None:
                alternatives = tuple(
                    TopLogprob(*_shown(pieces, tid, lp))
                    for tid, lp in zip(top_ids[i][:want], top_values[i][:want], strict=True)
                )
            text, raw = pieces(int(ids[i]))
            out.append(TokenLogprob(text, finite(float(chosen_lp[i])), raw, alternatives))
        return out


def _shown(
    pieces: TokenPieces, token_id: int, logprob: float
) -> tuple[str, float, tuple[int, ...] | None]:
    text, raw = pieces(int(token_id))
    return text, finite(float(logprob)), raw


__all__ = [
    "MAX_TOP_LOGPROBS",
    "UNLIKELY",
    "StepLogprobs",
    "TokenLogprob",
    "TokenPieces",
    "TopLogprob",
    "byte_fallback_ids",
    "finite",
]
