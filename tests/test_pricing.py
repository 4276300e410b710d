"""Prices carry a date and a source; estimates follow the billing rule of each backend."""

from __future__ import annotations

import pytest

from ftwizard.pricing import (
    PRICES,
    inference_cost_per_call,
    price_for,
    teacher_cost,
    training_cost,
)


def test_every_price_names_its_date_and_source() -> None:
    for price in PRICES.values():
        assert price.as_of[:4].isdigit() and len(price.as_of) >= 7, price.model
        assert price.source, price.model


def test_sft_cost_is_tokens_times_epochs_times_rate() -> None:
    cost = training_cost("openai", "gpt-4.1-mini-2025-04-14", 2_000_000, 3)
    # 6M trained tokens at $5 per 1M
    assert cost.usd == pytest.approx(30.0)
    assert cost.trained_tokens == 6_000_000
    assert "2,000,000 tokens x 3 epochs" in cost.basis


def test_snapshot_and_fine_tuned_names_find_their_price() -> None:
    assert price_for("gpt-4o-mini") is PRICES["gpt-4o-mini-2024-07-18"]
    assert (
        price_for("ft:gpt-4o-mini-2024-07-18:acme:birds:abc123") is PRICES["gpt-4o-mini-2024-07-18"]
    )
    assert price_for("gpt-3.5-turbo-0125") is PRICES["gpt-3.5-turbo"]
    assert price_for("no-such-model") is None


def test_rft_is_billed_by_the_hour() -> None:
    unknown = training_cost("openai", "o4-mini-2025-04-16", 1_000_000, 2)
    assert unknown.usd is None and "per training hour" in unknown.basis
    two_and_a_half = training_cost("openai", "o4-mini-2025-04-16", 1_000_000, 2, hours=2.5)
    assert two_and_a_half.usd == pytest.approx(250.0)


def test_local_training_has_no_provider_charge_and_unknown_models_say_so() -> None:
    assert training_cost("local", "/models/tiny", 10_000, 3).usd == 0.0
    unknown = training_cost("openai", "no-such-model", 10_000, 3)
    assert unknown.usd is None and "no price" in unknown.basis


def test_gemini_training_price_is_unknown_rather_than_guessed() -> None:
    cost = training_cost("vertex", "gemini-2.5-flash", 10_000, 3)
    assert cost.usd is None and cost.source


def test_inference_cost_base_vs_tuned() -> None:
    call = inference_cost_per_call("gpt-4.1-mini-2025-04-14", 1_000, 200)
    # base $0.40 / $1.60 per 1M; tuned $0.80 / $3.20 per 1M
    assert call.base_usd == pytest.approx((1_000 * 0.40 + 200 * 1.60) / 1e6)
    assert call.tuned_usd == pytest.approx((1_000 * 0.80 + 200 * 3.20) / 1e6)
    # a tuned model that no longer needs a 3,000-token few-shot prompt is cheaper per call
    few_shot = inference_cost_per_call("gpt-4.1-mini-2025-04-14", 3_000, 200)
    shorter = inference_cost_per_call("gpt-4.1-mini-2025-04-14", 200, 200)
    assert few_shot.base_usd is not None and shorter.tuned_usd is not None
    assert shorter.tuned_usd < few_shot.base_usd


def test_cached_input_is_cheaper() -> None:
    plain = inference_cost_per_call("gpt-4o-2024-08-06", 10_000, 0)
    cached = inference_cost_per_call("gpt-4o-2024-08-06", 10_000, 0, cached_input_tokens=8_000)
    assert cached.base_usd is not None and plain.base_usd is not None
    assert cached.base_usd < plain.base_usd


def test_teacher_batches_are_half_price() -> None:
    full = teacher_cost("claude-sonnet-4", 1_000_000, 100_000)
    half = teacher_cost("claude-sonnet-4", 1_000_000, 100_000, batch=True)
    assert full == pytest.approx(3.0 + 1.5)
    assert half == pytest.approx(full / 2)
