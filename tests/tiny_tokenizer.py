"""Build a tiny Hugging Face tokenizer from scratch (no download), for tests that need a local
model's own tokenizer.

``build_tiny_tokenizer(folder)`` trains a word-level-ish BPE on a few sentences and saves it as a
folder that ``transformers.AutoTokenizer.from_pretrained(folder)`` loads offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "birds sing at dawn and the robin sings first",
    "you answer questions about birds",
    "which bird is number one",
    "system user assistant",
)

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_tokenizer(
    folder: str | Path, corpus: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 400
) -> Path:
    """Train a small BPE tokenizer on ``corpus``; save it with a chat template to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<pad>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(corpus), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="<|end|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return out
