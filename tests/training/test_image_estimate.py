"""The training estimate says how many of its tokens are images, on any backend."""

from __future__ import annotations

from pathlib import Path

from ftwizard.datasets.pipeline import prepare
from ftwizard.flow import start_session
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from ftwizard.training import plan as training_plan
from tests.fakes.image_datasets import chat_file


def test_image_tokens_appear_in_the_training_estimate(store: SessionStore, tmp_path: Path) -> None:
    data = chat_file(tmp_path / "data")
    # keep the valid lines only: 1, 2, 8 (together takes WEBP), 9
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[i - 1] for i in (1, 2, 8, 9)) + "\n")
    session = start_session(
        store,
        "images",
        backend=Backend.together,
        method=Method.sft,
    )
    session.task.base_model = "Qwen/Qwen3-VL-8B-Instruct"
    session.dataset.choice.train_path = str(data)
    session.dataset.result, report = prepare(
        session.dataset.choice,
        backend=Backend.together,
        method=Method.sft,
        model="together:Qwen/Qwen3-VL-8B-Instruct",
        out_dir=store.artifacts_dir(session.id) / "dataset",
    )
    assert report.errors == [] and report.images == 4
    assert session.dataset.result.image_tokens == report.image_tokens > 0
    estimate = training_plan.estimate_training(session)
    assert f"{report.image_tokens:,} of the tokens per epoch are 4 images" in estimate.basis
    assert "Qwen3-VL" in estimate.basis
