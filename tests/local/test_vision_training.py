"""Vision-language LoRA training on the local backend, across the Qwen-VL shapes.

Each family is a tiny random model built offline (no download); training runs through the
worker's own code in this process, a couple of steps each, so the matrix stays fast.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ftwizard.errors import InputError
from ftwizard.providers.local.config import LocalHyperparameters, LocalTrainingConfig
from ftwizard.providers.local.vision import load_processor
from ftwizard.providers.local.vision_data import vision_dpo_rows, vision_sft_rows
from ftwizard.providers.local.vision_train import build_vision_trainer, fit_rows, row_length
from ftwizard.providers.local.worker import EVENTS_FILE, _Events, run
from ftwizard.providers.media import data_uri
from tests.fakes.images import png
from tests.tiny_vision import (
    FAMILIES,
    SHAPES_DIR,
    Shapes,
    family_vlm,
    shapes,
    tiny_vlm,
    tiny_vlm_build,
)

__all__ = ["family_vlm", "shapes", "tiny_vlm", "tiny_vlm_build"]


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / EVENTS_FILE).read_text().splitlines()]


def _train(
    model_dir: Path, train: Path, run_dir: Path, method: str = "sft", **hp: Any
) -> list[dict[str, Any]]:
    config = LocalTrainingConfig(
        method=method,  # type: ignore[arg-type]
        base_model=str(model_dir),
        train_file=train,
        run_dir=run_dir,
        hyperparameters=LocalHyperparameters(
            max_steps=2, batch_size=2, learning_rate=1e-3, logging_steps=1, **hp
        ),
        device="cpu",
    )
    run(config, _Events(run_dir / EVENTS_FILE), threading.Event())
    return _events(run_dir)


def _first_rows(path: Path, n: int, out: Path) -> Path:
    """The first ``n`` shapes rows with their images as data URIs (a self-contained file)."""
    lines = []
    for line in path.read_text().splitlines()[:n]:
        row = json.loads(line)
        for part in row["messages"][0]["content"]:
            if part["type"] == "image_url":
                ref = part["image_url"]["url"]
                part["image_url"]["url"] = data_uri((SHAPES_DIR / ref).read_bytes())
        lines.append(json.dumps(row))
    out.write_text("\n".join(lines) + "\n")
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_sft_lora_trains_each_qwen_vl_shape_and_saves_an_adapter(
    family: str, family_vlm: Any, shapes: Shapes, tmp_path: Path
) -> None:
    train = _first_rows(shapes.train, 6, tmp_path / "train.jsonl")
    events = _train(family_vlm(family), train, tmp_path / "run")
    start = next(e for e in events if e["event"] == "start")
    done = events[-1]
    assert done["event"] == "done", done
    assert (Path(done["path"]) / "adapter_config.json").is_file()
    # LoRA on the language model only: a small share of the weights train.
    assert 0 < start["trainable_parameters"] < start["total_parameters"] / 2
    adapter = json.loads((Path(done["path"]) / "adapter_config.json").read_text())
    assert "language_model" in adapter["target_modules"]
    assert "visual" not in adapter["target_modules"]


@pytest.mark.slow
def test_the_vision_tower_is_adapted_only_when_asked(
    family_vlm: Any, shapes: Shapes, tmp_path: Path
) -> None:
    train = _first_rows(shapes.train, 4, tmp_path / "train.jsonl")
    plain = _train(family_vlm("qwen2_vl"), train, tmp_path / "a")
    both = _train(family_vlm("qwen2_vl"), train, tmp_path / "b", train_vision=True)
    trainable = [
        next(e for e in events if e["event"] == "start")["trainable_parameters"]
        for events in (plain, both)
    ]
    assert trainable[1] > trainable[0]
    adapter = json.loads((Path(both[-1]["path"]) / "adapter_config.json").read_text())
    assert "visual" in adapter["target_modules"]


def test_dpo_lora_trains_on_image_preference_rows(family_vlm: Any, tmp_path: Path) -> None:
    image = data_uri(png(color=(200, 30, 30)))
    row = {
        "input": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image}},
                        {"type": "text", "text": "What colour is it?"},
                    ],
                }
            ]
        },
        "preferred_output": [{"role": "assistant", "content": "red"}],
        "non_preferred_output": [{"role": "assistant", "content": "blue"}],
    }
    train = tmp_path / "prefs.jsonl"
    train.write_text("\n".join(json.dumps(row) for _ in range(4)) + "\n")
    events = _train(family_vlm("qwen2_vl"), train, tmp_path / "run", method="dpo")
    assert events[-1]["event"] == "done", events[-1]


def test_the_loss_covers_the_answer_only(family_vlm: Any, shapes: Shapes, tmp_path: Path) -> None:
    """The trainer's own collator on our rows: labels on the answer, none on the image."""
    train = _first_rows(shapes.train, 2, tmp_path / "train.jsonl")
    config = LocalTrainingConfig(
        base_model=str(family_vlm("qwen2_vl")), train_file=train, run_dir=tmp_path / "run"
    )
    trainer, _ = build_vision_trainer(config, family_vlm("qwen2_vl"), "cpu", [])
    row = trainer.train_dataset[0]
    assert {"images", "prompt", "completion"} <= set(row)
    answer = row["completion"][0]["content"]
    batch = trainer.data_collator([row])
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    tokenizer = trainer.processing_class.tokenizer
    assert tokenizer.decode(labelled).strip() == f"{answer}<|im_end|>"
    image_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert image_id in batch["input_ids"][0].tolist()
    assert image_id not in labelled


def test_max_length_never_cuts_image_tokens(family_vlm: Any, shapes: Shapes) -> None:
    processor = load_processor(family_vlm("qwen2_vl"))
    rows = vision_sft_rows(
        [json.loads(line) for line in shapes.train.read_text().splitlines()[:3]], shapes.train
    )
    longest = max(row_length(processor, row) for row in rows)
    kept, skipped = fit_rows(processor, rows, longest, shapes.train)
    assert (len(kept), skipped) == (3, 0)
    with pytest.raises(InputError, match="max_length") as caught:
        fit_rows(processor, rows, longest - 10, shapes.train)
    assert "max_pixels" in str(caught.value)


def test_max_pixels_caps_the_image_tokens(family_vlm: Any, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png(size=(224, 224), color=(10, 200, 10)))
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "big.png"}}]},
            {"role": "assistant", "content": "green"},
        ]
    }
    rows = vision_sft_rows([row], tmp_path / "data.jsonl")
    small = row_length(load_processor(family_vlm("qwen2_vl"), max_pixels=56 * 56), rows[0])
    large = row_length(load_processor(family_vlm("qwen2_vl"), max_pixels=224 * 224), rows[0])
    # 28x28 px per image token after the 2x2 merge: 4 tokens against 64.
    assert large - small == 64 - 4


def test_bad_image_rows_name_the_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    good = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
        ]
    }
    in_answer = {
        "messages": [
            {"role": "user", "content": "what is it?"},
            {
                "role": "assistant",
                "content": [{"type": "image_url", "image_url": {"url": "x.png"}}],
            },
        ]
    }
    with pytest.raises(InputError) as caught:
        vision_sft_rows([good, in_answer], data)
    assert caught.value.line == 2
    assert caught.value.field == "messages[1].content[0]"
    missing = {
        "input": {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "no.png"}}]}
            ]
        },
        "preferred_output": "a",
        "non_preferred_output": "b",
    }
    with pytest.raises(InputError, match="does not exist") as caught:
        vision_dpo_rows([missing], data)
    assert caught.value.line == 1


def test_builtin_tiny_vl_is_a_named_offline_base(tiny_vlm: Path) -> None:
    from ftwizard.catalog import check_base_model
    from ftwizard.providers.local.config import default_hyperparameters
    from ftwizard.providers.local.models import resolve_local_model
    from ftwizard.providers.local.vision import is_vision_model
    from ftwizard.session import Backend, Method

    assert resolve_local_model("local:builtin-tiny-vl") == tiny_vlm
    assert is_vision_model(tiny_vlm)
    assert check_base_model(Backend.local, Method.sft, "builtin-tiny-vl") is None
    assert default_hyperparameters("builtin-tiny-vl").learning_rate == 1e-2
