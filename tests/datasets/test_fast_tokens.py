"""The fast counter (bpe-openai) gives tiktoken's counts exactly, and validation gives the same
report with it or without it."""

from __future__ import annotations

import random

import pytest

from ftwizard.datasets import tokens
from ftwizard.datasets.targets import resolve_target
from ftwizard.datasets.tokens import (
    FastTiktokenCounter,
    TiktokenCounter,
    counter_for,
    load_fast_count,
    load_tiktoken_encoding,
)
from ftwizard.datasets.validation import validate_file

PIECES = [
    "a", " ", "  ", "\n", "\r\n", "\t", "   \n  ", "123", "12345", "'s", "'LL", "don't", "é",
    "日本語", "😀", "\u200b", "<|endoftext|>", "<|fim_prefix|>", "  x", "!!!", "...", "\u00a0",
    "\n\n\n", "Ω", "ǅ", "x" * 50, "١٢٣", ".\n", " \t ", "\u0301", "🏳️‍🌈", "https://a.b/c?d=e",
    "def f(x):\n    return x\n",
]  # fmt: skip


def awkward_texts(n: int, seed: int = 7) -> list[str]:
    """Seeded strings of whitespace runs, digits, contractions, scripts, emoji, special-token
    text and random code points: where pre-tokenizers differ if they differ at all."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.2:
            out.append("".join(chr(rng.randint(32, 0x2FFFF)) for _ in range(rng.randint(1, 20))))
        else:
            out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12))))
    return out


@pytest.fixture(scope="module")
def cl100k():
    encoding, reason = load_tiktoken_encoding("cl100k_base")
    assert encoding is not None, reason
    return encoding


def test_fast_counts_equal_tiktoken_counts(cl100k) -> None:
    fast = load_fast_count("cl100k_base")
    if fast is None:
        pytest.skip("bpe-openai is not installed")
    counter = FastTiktokenCounter(cl100k, "cl100k_base", fast)
    texts = [*awkward_texts(4000), "lone \ud800 surrogate", "\udfff", ""]
    assert counter.count_many(texts) == [len(cl100k.encode_ordinary(t)) for t in texts]


def test_validation_is_the_same_with_or_without_the_fast_counter(
    tmp_path, monkeypatch, cl100k
) -> None:
    import json

    texts = awkward_texts(300, seed=11)
    path = tmp_path / "train.jsonl"
    rows = [
        {
            "messages": [
                {"role": "system", "content": texts[i] or "s"},
                {"role": "user", "content": texts[i + 1] or "u"},
                {"role": "assistant", "content": texts[i + 2] or "a"},
            ]
        }
        for i in range(0, 297, 3)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with_fast = validate_file(path, model="gpt-3.5-turbo")

    load_fast_count.cache_clear()
    monkeypatch.setattr(tokens, "_bpe_native", lambda: None)
    try:
        assert type(counter_for(resolve_target("gpt-3.5-turbo"))) is TiktokenCounter
        plain = validate_file(path, model="gpt-3.5-turbo")
    finally:
        load_fast_count.cache_clear()
    assert plain.tokens.exact and plain.tokens.total > 0
    assert with_fast.model_dump() == plain.model_dump()
