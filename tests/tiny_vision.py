"""Shared fixtures for tests that need a tiny vision-language model and image data.

- ``tiny_vlm_build`` (session): ``builtin-tiny-vl`` built once per run into a session home
  (``.home``, ``.model_dir``).
- ``tiny_vlm`` (function): that build linked into the test's own ftwizard home, so
  ``builtin-tiny-vl`` resolves without rebuilding; returns its folder.
- ``family_vlm(family)``: a tiny random model of the Qwen2-VL, Qwen2.5-VL or Qwen3-VL shape,
  built once per run per family.
- ``shapes``: the coloured-shapes example in examples/data/shapes (train, valid, grader).
- ``image_request(row, model)``: the request a chat provider gets for a shapes row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.local.tiny_vlm import (
    TinyVisionSpec,
    build_tiny_vlm,
    ensure_tiny_vlm,
    tiny_vlm_dir,
)
from ftwizard.providers.media import data_uri

REPO_ROOT = Path(__file__).resolve().parent.parent
SHAPES_DIR = REPO_ROOT / "examples" / "data" / "shapes"
FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


@dataclass(frozen=True)
class VisionBuild:
    """The session's built tiny VLM and the home it lives in."""

    home: Path
    model_dir: Path


@dataclass(frozen=True)
class Shapes:
    """The shapes example files."""

    train: Path
    valid: Path
    grader: Path

    def valid_rows(self) -> list[dict[str, Any]]:
        """The validation examples as parsed JSON."""
        return [json.loads(line) for line in self.valid.read_text().splitlines() if line]


@pytest.fixture(scope="session")
def tiny_vlm_build(tmp_path_factory: pytest.TempPathFactory) -> VisionBuild:
    """builtin-tiny-vl, built once for the whole test run."""
    home = tmp_path_factory.mktemp("tiny-vl-home")
    return VisionBuild(home=home, model_dir=ensure_tiny_vlm(home=home))


@pytest.fixture
def tiny_vlm(tiny_vlm_build: VisionBuild, isolated_home: Path) -> Path:
    """The session's tiny VLM, linked into this test's ftwizard home."""
    target = tiny_vlm_dir(home=isolated_home)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(tiny_vlm_build.model_dir, target_is_directory=True)
    return target


_FAMILY_DIRS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def family_vlm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``family_vlm(family)``: the folder of a tiny random VLM of that Qwen-VL shape."""

    def build(family: str) -> Path:
        if family not in _FAMILY_DIRS:
            folder = tmp_path_factory.mktemp(f"vlm-{family}")
            _FAMILY_DIRS[family] = build_tiny_vlm(folder, TinyVisionSpec(family=family))  # type: ignore[arg-type]
        return _FAMILY_DIRS[family]

    return build


@pytest.fixture(scope="session")
def shapes() -> Shapes:
    """The shapes example shipped in examples/data/shapes."""
    return Shapes(
        train=SHAPES_DIR / "train.jsonl",
        valid=SHAPES_DIR / "valid.jsonl",
        grader=SHAPES_DIR / "grader.yaml",
    )


def image_request(
    row: dict[str, Any], model: str, base_dir: Path = SHAPES_DIR
) -> GenerationRequest:
    """The greedy request for a shapes row: its image as a data URI, then its question."""
    parts = row["messages"][0]["content"]
    url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
    text = next(p["text"] for p in parts if p["type"] == "text")
    image = data_uri((base_dir / url).read_bytes())
    return GenerationRequest(
        model=model,
        messages=[ChatMessage(role="user", content=text, images=[image])],
        max_tokens=8,
    )


__all__ = [
    "FAMILIES",
    "SHAPES_DIR",
    "Shapes",
    "VisionBuild",
    "family_vlm",
    "image_request",
    "shapes",
    "tiny_vlm",
    "tiny_vlm_build",
]
