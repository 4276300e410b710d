"""Image tokens per target, checked against the figures the providers publish."""

from __future__ import annotations

from ftwizard.datasets.image_tokens import (
    openai_image_tokens,
    qwen_image_tokens,
    qwen_resize,
    rule_for,
)


def test_openai_tile_formula_matches_the_guide_examples() -> None:
    # OpenAI vision guide: 1024x1024 high = 765; 2048x4096 high = 1105; low = 85.
    assert openai_image_tokens(1024, 1024) == 765
    assert openai_image_tokens(2048, 4096) == 1105
    assert openai_image_tokens(4096, 8192, "low") == 85


def test_qwen_resize_and_pixel_budget() -> None:
    assert qwen_resize(224, 224, factor=28, min_pixels=3136, max_pixels=1_003_520) == (224, 224)
    assert qwen_image_tokens(224, 224) == 64
    assert qwen_image_tokens(224, 224, patch=16) == 49  # Qwen3-VL: 32-px cells
    # a tiny image is scaled up to the minimum pixels
    assert qwen_image_tokens(8, 6) == 6
    assert qwen_image_tokens(2000, 2000, max_pixels=448 * 448) == 256


def test_rules_say_when_they_estimate(tmp_path) -> None:
    assert rule_for("openai", "gpt-4o-2024-08-06").exact
    assert rule_for("together", "Qwen/Qwen3-VL-8B-Instruct").patch == 16
    assert rule_for("together", "google/gemma-3-4b-it-VLM").count(999, 999) == 256
    unknown = rule_for("together", "meta-llama/Llama-4-Scout-17B-16E-Instruct-VLM")
    assert not unknown.exact and "estimated" in unknown.note
    assert rule_for("vertex", "gemini-2.5-flash").count(300, 300) == 258
    # a local model folder: the processor's own settings decide
    (tmp_path / "preprocessor_config.json").write_text(
        '{"patch_size": 14, "merge_size": 2, "min_pixels": 784, "max_pixels": 3136}'
    )
    local = rule_for("local", str(tmp_path))
    assert local.exact and local.max_pixels == 3136
    assert local.count(1000, 1000) == 4
    assert rule_for("local", str(tmp_path), max_pixels=784 * 4).max_pixels == 3136
