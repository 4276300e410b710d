"""Prices for training and inference, each with the date it was read and where from.

Prices change; every figure below names its source and ``as_of`` date so the UI can show how old
an estimate's basis is. A price we have no verified source for is ``None``: the estimate then says
"unknown" instead of guessing.
"""

from __future__ import annotations

from pydantic import BaseModel

_OPENAI_FT = (
    "OpenAI pricing page, fine-tuning table (copy of late 2025; "
    "help.openai.com/en/articles/11323177)"
)
_OPENAI_FT_DATE = "2025-11"
_OPENAI_API = "OpenAI API pricing page, standard tier (platform.openai.com/docs/pricing)"
_OPENAI_API_DATE = "2025-08"
_ANTHROPIC = "Anthropic pricing (docs.anthropic.com/en/docs/about-claude/pricing)"
_ANTHROPIC_NEW = "deploybase.ai Anthropic price list (third-party copy)"
_TOGETHER = (
    "Together fine-tuning pricing doc (docs.together.ai/docs/fine-tuning-pricing): billed per "
    "token, n_epochs x training tokens + n_evals x validation tokens, no minimum"
)
_TOGETHER_NOTE = (
    "Together publishes its per-token rates only on together.ai/pricing, which was not "
    "captured: unknown here. Together's own estimate (POST /fine-tunes/estimate-price) is shown "
    "on the confirmation screen before any job is created."
)
_GEMINI = "deploybase.ai Vertex AI price guide (third-party copy of the Vertex pricing page)"
_FIREWORKS = (
    "fireworks.ai/pricing (stored copy: $0.50/1M training tokens and $0.20/1M serverless tokens "
    "for models up to 16B); RFT free under 16B per docs.fireworks.ai/fine-tuning/"
    "managed-finetuning-intro (2026-12)"
)
_FIREWORKS_NOTE = (
    "SFT/DPO billed per training token (dataset tokens x epochs); RFT is free for models under "
    "16B parameters; a tuned LoRA is served at the base model's rate"
)


class ModelPrice(BaseModel):
    """What a model costs, in US dollars.

    ``training_per_1m`` is per million trained tokens (tokens in the file x epochs);
    ``training_per_hour`` is for RFT, billed by wall-clock hour of training. Inference prices are
    per million tokens for the base model and, when it differs, for the fine-tuned model.
    """

    backend: str
    model: str
    training_per_1m: float | None = None
    training_per_hour: float | None = None
    input_per_1m: float | None = None
    cached_input_per_1m: float | None = None
    output_per_1m: float | None = None
    tuned_input_per_1m: float | None = None
    tuned_cached_input_per_1m: float | None = None
    tuned_output_per_1m: float | None = None
    as_of: str
    source: str
    note: str | None = None


def _openai_ft(
    model: str,
    training: float | None,
    tuned: tuple[float, float | None, float],
    base: tuple[float, float | None, float] | None,
    *,
    per_hour: float | None = None,
    note: str | None = None,
) -> ModelPrice:
    return ModelPrice(
        backend="openai",
        model=model,
        training_per_1m=training,
        training_per_hour=per_hour,
        input_per_1m=base[0] if base else None,
        cached_input_per_1m=base[1] if base else None,
        output_per_1m=base[2] if base else None,
        tuned_input_per_1m=tuned[0],
        tuned_cached_input_per_1m=tuned[1],
        tuned_output_per_1m=tuned[2],
        as_of=_OPENAI_FT_DATE,
        source=f"training and tuned inference: {_OPENAI_FT}; base inference: {_OPENAI_API} "
        f"({_OPENAI_API_DATE})",
        note=note,
    )


PRICES: dict[str, ModelPrice] = {
    p.model: p
    for p in [
        _openai_ft("gpt-4.1-2025-04-14", 25.00, (3.00, 0.75, 12.00), (2.00, 0.50, 8.00)),
        _openai_ft("gpt-4.1-mini-2025-04-14", 5.00, (0.80, 0.20, 3.20), (0.40, 0.10, 1.60)),
        _openai_ft("gpt-4.1-nano-2025-04-14", 1.50, (0.20, 0.05, 0.80), (0.10, 0.025, 0.40)),
        _openai_ft("gpt-4o-2024-08-06", 25.00, (3.75, 1.875, 15.00), (2.50, 1.25, 10.00)),
        _openai_ft("gpt-4o-mini-2024-07-18", 3.00, (0.30, 0.15, 1.20), (0.15, 0.075, 0.60)),
        _openai_ft("gpt-3.5-turbo", 8.00, (3.00, None, 6.00), (0.50, None, 1.50)),
        _openai_ft(
            "o4-mini-2025-04-16",
            None,
            (4.00, 1.00, 16.00),
            (1.10, 0.275, 4.40),
            per_hour=100.00,
            note="RFT is billed per wall-clock hour of the training loop, prorated per second; "
            "model-grader tokens are billed separately. With data sharing, tuned inference is "
            "half price.",
        ),
        ModelPrice(
            backend="vertex",
            model="gemini-2.5-flash",
            input_per_1m=0.30,
            output_per_1m=2.50,
            tuned_input_per_1m=0.30,
            tuned_output_per_1m=2.50,
            as_of="2026-03",
            source=_GEMINI,
            note="training price per token not verified; see "
            "cloud.google.com/vertex-ai/generative-ai/pricing. Tuned models are assumed to "
            "serve at the base model's price.",
        ),
        ModelPrice(
            backend="vertex",
            model="gemini-2.5-pro",
            input_per_1m=1.25,
            output_per_1m=10.00,
            tuned_input_per_1m=1.25,
            tuned_output_per_1m=10.00,
            as_of="2026-03",
            source=_GEMINI,
            note="prompts over 200k tokens cost double; training price not verified.",
        ),
        *(
            ModelPrice(
                backend="together",
                model=name,
                as_of="2026-12",
                source=_TOGETHER,
                note=_TOGETHER_NOTE,
            )
            for name in ("Qwen/Qwen3.5-9B", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-opus-4-1",
            input_per_1m=15.0,
            output_per_1m=75.0,
            as_of="2025-11",
            source=_ANTHROPIC,
            note="Message Batches: half price",
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-sonnet-4",
            input_per_1m=3.0,
            output_per_1m=15.0,
            as_of="2025-11",
            source=_ANTHROPIC,
            note="Message Batches: half price",
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-3-5-haiku",
            input_per_1m=0.80,
            output_per_1m=4.0,
            as_of="2025-11",
            source=_ANTHROPIC,
            note="Message Batches: half price",
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-opus-4-6",
            input_per_1m=5.0,
            output_per_1m=25.0,
            as_of="2026-03",
            source=_ANTHROPIC_NEW,
            note="also Opus 4.5",
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-sonnet-4-6",
            input_per_1m=3.0,
            output_per_1m=15.0,
            as_of="2026-03",
            source=_ANTHROPIC_NEW,
            note="also Sonnet 4.5",
        ),
        ModelPrice(
            backend="anthropic",
            model="claude-haiku-4-5",
            input_per_1m=1.0,
            output_per_1m=5.0,
            as_of="2026-03",
            source=_ANTHROPIC_NEW,
        ),
        ModelPrice(
            backend="fireworks",
            model="accounts/fireworks/models/qwen3-8b",
            training_per_1m=0.50,
            input_per_1m=0.20,
            output_per_1m=0.20,
            tuned_input_per_1m=0.20,
            tuned_output_per_1m=0.20,
            as_of="2026-12",
            source=_FIREWORKS,
            note=_FIREWORKS_NOTE,
        ),
        ModelPrice(
            backend="fireworks",
            model="accounts/fireworks/models/llama-v3p1-8b-instruct",
            training_per_1m=0.50,
            input_per_1m=0.20,
            output_per_1m=0.20,
            tuned_input_per_1m=0.20,
            tuned_output_per_1m=0.20,
            as_of="2026-12",
            source=_FIREWORKS,
            note=_FIREWORKS_NOTE,
        ),
    ]
}


class CostEstimate(BaseModel):
    """The estimated training cost on one backend and model; ``usd`` is None when unknown."""

    backend: str
    model: str
    epochs: int
    usd: float | None
    trained_tokens: int = 0
    basis: str = ""
    as_of: str | None = None
    source: str | None = None

    def to_json(self) -> dict[str, object]:
        """The CLI's ``cost`` entry."""
        return {
            "backend": self.backend,
            "model": self.model,
            "epochs": self.epochs,
            "usd": self.usd,
        }


def price_for(model: str) -> ModelPrice | None:
    """The price row for ``model``: exact name, a dated snapshot of it, or a fine-tuned id."""
    if model in PRICES:
        return PRICES[model]
    bare = model.removeprefix("ft:").split(":", 1)[0]
    for name, price in PRICES.items():
        if name.startswith(bare + "-") or bare.startswith(name):
            return price
    return None


def training_cost(
    backend: str, model: str, tokens_per_epoch: int, epochs: int, *, hours: float | None = None
) -> CostEstimate:
    """Estimate what training ``model`` costs.

    Token-billed training (OpenAI SFT/DPO, Vertex) costs tokens x epochs x price; RFT costs its
    hourly rate x ``hours`` (unknown without an estimate of hours). Local training is free of
    provider charges.
    """
    trained = tokens_per_epoch * epochs
    if backend == "local":
        return CostEstimate(
            backend=backend,
            model=model,
            epochs=epochs,
            usd=0.0,
            trained_tokens=trained,
            basis="local training: your own hardware, no provider charge",
        )
    price = price_for(model)
    if price is None:
        return CostEstimate(
            backend=backend,
            model=model,
            epochs=epochs,
            usd=None,
            trained_tokens=trained,
            basis="no price known for this model",
        )
    common = {"as_of": price.as_of, "source": price.source}
    if price.training_per_hour is not None:
        usd = round(price.training_per_hour * hours, 2) if hours is not None else None
        return CostEstimate(
            backend=backend,
            model=model,
            epochs=epochs,
            usd=usd,
            trained_tokens=trained,
            basis=f"${price.training_per_hour:.2f} per training hour"
            + ("" if hours is not None else "; hours unknown until a dry run"),
            **common,
        )
    if price.training_per_1m is None:
        return CostEstimate(
            backend=backend,
            model=model,
            epochs=epochs,
            usd=None,
            trained_tokens=trained,
            basis=price.note or "training price unknown",
            **common,
        )
    usd = round(trained / 1_000_000 * price.training_per_1m, 4)
    return CostEstimate(
        backend=backend,
        model=model,
        epochs=epochs,
        usd=usd,
        trained_tokens=trained,
        basis=f"{tokens_per_epoch:,} tokens x {epochs} epochs x ${price.training_per_1m:.2f}/1M",
        **common,
    )


# Fireworks base models under 16B parameters, whose managed RFT is free (docs, 2026-12).
FIREWORKS_RFT_FREE = frozenset(
    {"accounts/fireworks/models/qwen3-8b", "accounts/fireworks/models/llama-v3p1-8b-instruct"}
)


def fireworks_rft_cost(model: str, tokens_per_epoch: int, epochs: int) -> CostEstimate:
    """Fireworks RFT: free for models under 16B parameters; "unknown" for the others, whose
    RFT price Fireworks does not publish (its RL estimator says "contact sales")."""
    trained = tokens_per_epoch * epochs
    if model in FIREWORKS_RFT_FREE:
        return CostEstimate(
            backend="fireworks",
            model=model,
            epochs=epochs,
            usd=0.0,
            trained_tokens=trained,
            basis="Fireworks RFT is free for models under 16B parameters",
            as_of="2026-12",
            source="docs.fireworks.ai/fine-tuning/managed-finetuning-intro",
        )
    return CostEstimate(
        backend="fireworks",
        model=model,
        epochs=epochs,
        usd=None,
        trained_tokens=trained,
        basis="Fireworks publishes no RFT price for models of 16B parameters or more: unknown",
    )


class InferenceCost(BaseModel):
    """Cost of one call with the base model and with the fine-tuned model."""

    model: str
    input_tokens: int
    output_tokens: int
    base_usd: float | None
    tuned_usd: float | None
    as_of: str | None = None
    source: str | None = None


def inference_cost_per_call(
    model: str, input_tokens: int, output_tokens: int, *, cached_input_tokens: int = 0
) -> InferenceCost:
    """Price one call of ``input_tokens`` in and ``output_tokens`` out, base vs fine-tuned.

    A fine-tuned model usually needs a shorter prompt; call this twice with each prompt length
    to compare what the same data costs to serve.
    """
    price = price_for(model)
    if price is None:
        return InferenceCost(
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            base_usd=None,
            tuned_usd=None,
        )
    fresh = input_tokens - cached_input_tokens

    def cost(inp: float | None, cached: float | None, out: float | None) -> float | None:
        if inp is None or out is None:
            return None
        cached_rate = cached if cached is not None else inp
        return (fresh * inp + cached_input_tokens * cached_rate + output_tokens * out) / 1e6

    return InferenceCost(
        model=model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        base_usd=cost(price.input_per_1m, price.cached_input_per_1m, price.output_per_1m),
        tuned_usd=cost(
            price.tuned_input_per_1m, price.tuned_cached_input_per_1m, price.tuned_output_per_1m
        ),
        as_of=price.as_of,
        source=price.source,
    )


def teacher_cost(
    model: str, input_tokens: int, output_tokens: int, *, batch: bool = False
) -> float | None:
    """What generating data with teacher ``model`` costs.

    Batch APIs are half price: Anthropic Message Batches and OpenAI's Batch API (both
    providers' pricing pages; see the research notes).
    """
    price = price_for(model)
    if price is None or price.input_per_1m is None or price.output_per_1m is None:
        return None
    usd = (input_tokens * price.input_per_1m + output_tokens * price.output_per_1m) / 1e6
    return usd / 2 if batch and price.backend in ("anthropic", "openai") else usd
