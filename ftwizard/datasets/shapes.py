"""The shapes example: small pictures of coloured shapes, with the colour and shape as the answer.

:func:`write_shapes_dataset` draws them (Pillow, deterministic given the seed) as PNG files and
writes OpenAI chat SFT files whose user turns hold an ``image_url`` part naming the PNG by a
path relative to the JSONL file. ``examples/data/shapes/`` was written by it
(``python -m ftwizard.datasets.shapes examples/data/shapes``); the images quickstart trains the
built-in tiny vision model on it.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (235, 205, 30),
}
SHAPES = ("circle", "square", "triangle")
QUESTION = "What colour and shape is this? Answer with the colour and the shape."
SIZE = 56


def draw_shape(colour: str, shape: str, rng: random.Random) -> bytes:
    """A PNG of one ``colour`` ``shape`` on a light background, jittered in place and size."""
    import io

    from PIL import Image, ImageDraw

    shade = rng.randint(230, 255)
    image = Image.new("RGB", (SIZE, SIZE), (shade, shade, shade))
    draw = ImageDraw.Draw(image)
    half = rng.randint(16, 22)
    cx = SIZE // 2 + rng.randint(-4, 4)
    cy = SIZE // 2 + rng.randint(-4, 4)
    box = (cx - half, cy - half, cx + half, cy + half)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _example(image_ref: str, answer: str) -> dict[str, object]:
    return {
        "messages": [
            {
                "role": "user",
                # Image first, as Anthropic's vision guide advises and as ftwizard's chat
                # providers send a turn's images, so training and serving see one layout.
                "content": [
                    {"type": "image_url", "image_url": {"url": image_ref}},
                    {"type": "text", "text": QUESTION},
                ],
            },
            {"role": "assistant", "content": answer},
        ]
    }


def write_shapes_dataset(
    folder: Path, *, train: int = 192, valid: int = 48, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``train.jsonl``, ``valid.jsonl`` and ``images/*.png`` into ``folder``.

    Every colour-shape pair appears equally often in each split. Returns the two JSONL paths.
    """
    rng = random.Random(seed)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    paths = []
    for split, count in (("train", train), ("valid", valid)):
        lines = []
        order = [pairs[i % len(pairs)] for i in range(count)]
        rng.shuffle(order)
        for i, (colour, shape) in enumerate(order):
            name = f"images/{split}-{i:03d}.png"
            (folder / name).write_bytes(draw_shape(colour, shape, rng))
            lines.append(json.dumps(_example(name, f"{colour} {shape}")))
        path = folder / f"{split}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "examples/data/shapes")
    print(*write_shapes_dataset(target), sep="\n")
