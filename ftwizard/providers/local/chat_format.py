"""Model-family quirks of chat templates and tokenizers, handled in this one place.

Real instruct models differ in ways that break naive code (see docs/local-training.md):

- **No system role** (Gemma's templates raise on ``system``): the system text is put in front
  of the first user turn, which is what those families' own docs recommend.
- **eos ≠ end of turn** (Qwen's ``<|im_end|>`` vs ``<|endoftext|>``, Llama 3's ``<|eot_id|>``,
  Gemma's ``<end_of_turn>``, Phi-3's ``<|end|>``): generation stops on any of them.
- **No pad token** (Llama, Gemma): the end-of-turn (or eos) token pads, left-padded batches.
- **Thinking blocks** (Qwen3, SmolLM3): ``<think>…</think>`` in a reply is removed from the
  text a client receives.

Imports neither torch nor transformers: it works on the objects they return.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# Tokens that end an assistant turn in the families ftwizard knows; only those in a model's
# vocabulary are used.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|eom_id|>")
_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


def _template_rejects_system(tokenizer: Any) -> bool:
    probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    try:
        tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception:  # jinja raises TemplateError (via raise_exception) or others
        return True
    return False


def normalize_messages(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` in a shape the tokenizer's template accepts: ``developer`` becomes
    ``system``, and system turns fold into the first user turn when the template has no
    system role."""
    out = [
        {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
        for m in messages
    ]
    if not any(m["role"] == "system" for m in out) or not _template_rejects_system(tokenizer):
        return out
    system = "\n\n".join(m["content"] for m in out if m["role"] == "system")
    rest = [m for m in out if m["role"] != "system"]
    for m in rest:
        if m["role"] == "user":
            if isinstance(m["content"], list):  # image parts: the system text goes first
                m["content"] = [{"type": "text", "text": f"{system}\n\n"}, *m["content"]]
            else:
                m["content"] = f"{system}\n\n{m['content']}"
            break
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest


def render_prompt(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> str:
    """The prompt text for generating the next assistant turn of ``messages``."""
    return str(
        tokenizer.apply_chat_template(
            normalize_messages(tokenizer, messages), tokenize=False, add_generation_prompt=True
        )
    )


def end_of_turn_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """Every token id that ends a reply: eos, the generation config's eos list and the
    family's end-of-turn token when the vocabulary has it."""
    ids: set[int] = set()
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list):
        ids.update(i for i in configured if isinstance(i, int))
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in END_OF_TURN_TOKENS if token in vocab)
    return sorted(ids)


def ensure_pad_token(tokenizer: Any) -> None:
    """Give a tokenizer without a pad token one (its end-of-turn or eos token)."""
    if tokenizer.pad_token is not None:
        return
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab:
            tokenizer.pad_token = token
            return
    tokenizer.pad_token = tokenizer.eos_token


def strip_thinking(text: str) -> str:
    """``text`` without ``<think>…</think>`` blocks (an unclosed one is kept: it is the reply)."""
    return _THINK.sub("", text)


__all__ = [
    "END_OF_TURN_TOKENS",
    "end_of_turn_ids",
    "ensure_pad_token",
    "normalize_messages",
    "render_prompt",
    "strip_thinking",
]
