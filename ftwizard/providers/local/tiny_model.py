"""``builtin-tiny``: a tiny Llama-style causal LM built from scratch, with no download.

It serves the offline default, the quickstart and the tests: a 2-layer model with a byte-level
BPE tokenizer trained on a small built-in English corpus, and a chat template (with
``{% generation %}`` markers, so TRL's assistant-only loss works). Its weights are random but
deterministic given the seed; it knows nothing until it is fine-tuned, which is the point: the
improvement a fine-tune brings is plain to see.

The built model is cached under ``<ftwizard home>/models/`` in a folder named after a hash of
its spec, and reused; building takes about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ftwizard.store import ftwizard_home

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BUILD_VERSION = 2
"""Bumped whenever :func:`build_tiny_model` changes what it builds, so caches are rebuilt."""

TINY_MODEL_NAME = "builtin-tiny"
"""The local backend's name for this model (``local:builtin-tiny`` with the provider prefix)."""

SPECIAL_TOKENS = ("<unk>", "<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% else %}"
    "<|{{ 'system' if message['role'] == 'developer' else message['role'] }}|>"
    "{{ message['content'] }}<|end|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# Plain English the tokenizer learns its merges from: common words and support-desk phrasing,
# so that ordinary prompts cost a few tokens per word instead of one per byte.
CORPUS = """
the of and to a in is it you that he was for on are with as I his they be at one have this
from or had by hot word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no
most people my over know water than call first who may down side been now find any new work
part take get place made live where after back little only round man year came show every
good me give our under name very through just form sentence great think say help low line
differ turn cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here must big
high such follow act why ask men change went light kind off need house picture try us again
animal point mother world near build self earth father head stand own page should country
found answer school grow study still learn plant cover food sun four between state keep eye
never last let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next white children begin
got walk example ease paper group always music those both mark often letter until mile river
car feet care second book carry took science eat room friend began idea fish mountain stop
once base hear horse cut sure watch color face wood main enough plain girl usual young ready
above ever red list though feel talk bird soon body dog family direct pose leave song measure
door product black short numeral class wind question happen complete ship area half rock
order fire south problem piece told knew pass since top whole king space heard best hour
better true during hundred five remember step early hold west ground interest reach fast verb
sing listen six table travel less morning ten simple several vowel toward war lay against
pattern slow center love person money serve appear road map rain rule govern pull cold
notice voice unit power town fine certain fly fall lead cry dark machine note wait plan
figure star box noun field rest correct able pound done beauty drive stood contain front
teach week final gave green oh quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel full force blue
object decide surface deep moon island foot system busy test record boat common gold
possible plane stead dry wonder laugh thousand ago ran check game shape equate miss brought
heat snow tire bring yes distant fill east paint language among grand ball yet wave drop
heart am present heavy dance engine position arm wide sail material size vary settle speak
weight general ice matter circle pair include divide syllable felt perhaps pick sudden count
square reason length represent art subject region energy hunt probable bed brother egg ride
cell believe fraction forest sit race window store summer train sleep prove lone leg exercise
wall catch mount wish sky board joy winter sat written wild instrument kept glass grass cow
job edge sign visit past soft fun bright gas weather month million bear finish happy hope
flower clothe strange gone jump baby eight village meet root buy raise solve metal whether
push seven paragraph third shall held hair describe cook floor either result burn hill safe
cat century consider type law bit coast copy phrase silent tall sand soil roll temperature
hello hi thanks thank please sorry customer support ticket account password login email
payment charge charged refund invoice bill billing card subscription plan price cost error
crash bug broken fix issue problem app website page button screen feature request add
option setting settings update upgrade cancel user assistant system label classify answer
"""


class TinyModelSpec(BaseModel):
    """The shape of the built-in model; every field goes into the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: int = Field(default=2, ge=1, le=8)
    hidden_size: int = Field(default=64, ge=16, le=512)
    intermediate_size: int = Field(default=256, ge=16, le=2048)
    heads: int = Field(default=4, ge=1, le=16)
    vocab_size: int = Field(default=1024, ge=300, le=4096)
    max_positions: int = Field(default=512, ge=64, le=4096)
    seed: int = 0

    def cache_key(self) -> str:
        """A short hash of the spec and the tokenizer corpus and template."""
        text = json.dumps(self.model_dump(), sort_keys=True) + CORPUS + CHAT_TEMPLATE
        text += str(BUILD_VERSION)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def is_tiny_model_name(name: str) -> bool:
    """Whether ``name`` (with or without the ``local:`` prefix) means the built-in tiny model."""
    return name.removeprefix("local:").strip() == TINY_MODEL_NAME


def tiny_model_dir(spec: TinyModelSpec | None = None, *, home: Path | None = None) -> Path:
    """Where the model for ``spec`` is cached under ``home`` (default: the ftwizard home);
    it may not be built yet."""
    spec = spec or TinyModelSpec()
    home = home if home is not None else ftwizard_home()
    return home / "models" / f"{TINY_MODEL_NAME}-{spec.cache_key()}"


def ensure_tiny_model(spec: TinyModelSpec | None = None, *, home: Path | None = None) -> Path:
    """The folder of the built tiny model, building it first when it is not cached yet.

    Safe against concurrent builders: each builds in its own temporary folder and the first
    rename wins.
    """
    spec = spec or TinyModelSpec()
    chosen = spec
    return build_once(
        tiny_model_dir(spec, home=home), lambda folder: build_tiny_model(folder, chosen)
    )


def build_once(target: Path, build: Callable[[Path], object]) -> Path:
    """``target``, built by ``build(scratch folder)`` first when it holds no weights yet.

    Each builder builds in its own temporary folder and the first rename wins, so concurrent
    builders (tests, a server and a worker) never see a half-written model.
    """
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        build(scratch)
        try:
            os.replace(scratch, target)
        except OSError:
            # Another process finished first (the target is a non-empty folder now).
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def build_tiny_tokenizer(spec: TinyModelSpec | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on :data:`CORPUS`, with the chat template set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    spec = spec or TinyModelSpec()
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in CORPUS.splitlines() if line.strip()]
    # Phrases as well as words, so merges across spaces (" the", " to") are learned.
    tokenizer.train_from_iterator(lines * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|end|>",
        bos_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = spec.max_positions
    return fast


def build_tiny_model(folder: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Build the tokenizer and the randomly initialised model for ``spec`` into ``folder``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    # tqdm bars on stderr would draw over the terminal UI.
    hf_logging.disable_progress_bar()
    spec = spec or TinyModelSpec()
    tokenizer = build_tiny_tokenizer(spec)
    end_id = tokenizer.convert_tokens_to_ids("<|end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<pad>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        # With the usual 0.02 the tied output logits are so small that LoRA alone cannot make
        # the model confident (loss stays near log(vocab)); 0.2 lets it learn in seconds.
        initializer_range=0.2,
        bos_token_id=None,
        eos_token_id=end_id,
        pad_token_id=pad_id,
    )
    # Seeded here, on a private generator state, so the weights depend on the spec alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=end_id, pad_token_id=pad_id, do_sample=False, max_new_tokens=32
    )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "ftwizard-tiny.json").write_text(
        json.dumps({"name": TINY_MODEL_NAME, "spec": spec.model_dump()}, indent=2) + "\n"
    )
    return out


__all__ = [
    "CHAT_TEMPLATE",
    "TINY_MODEL_NAME",
    "TinyModelSpec",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "ensure_tiny_model",
    "is_tiny_model_name",
    "tiny_model_dir",
]
