"""Benchmark: validating image datasets, and what image support costs a text-only file.

Generates a chat file of N examples (default 5,000) whose user turns reference one of K
distinct PNG files (default 200, 256x256) beside it, then times ``validate_file`` for
``together:`` (every image opened and sniffed once, its tokens counted per example) and the
same examples without images. Prints wall and CPU time, images per second, and whether Pillow
was imported by the text-only run (it must not be).

    .venv/bin/python bench/bench_validate_images.py [--examples 5000] [--images 200]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path


def _png(rng: random.Random, size: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def generate(folder: Path, n: int, k: int, size: int) -> tuple[Path, Path]:
    """The image file and its text-only twin."""
    rng = random.Random(0)
    (folder / "img").mkdir()
    for i in range(k):
        (folder / "img" / f"{i}.png").write_bytes(_png(rng, size))
    images, text = folder / "images.jsonl", folder / "text.jsonl"
    with images.open("w") as fi, text.open("w") as ft:
        for i in range(n):
            question = f"Which colour is picture {i}?"
            answer = ["red", "green", "blue"][i % 3]
            part = {"type": "image_url", "image_url": {"url": f"img/{rng.randrange(k)}.png"}}
            fi.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": [{"type": "text", "text": question}, part]},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
                + "\n"
            )
            ft.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": answer},
                        ]
                    }
                )
                + "\n"
            )
    return images, text


_RUN = """
import json, sys, time, resource
from ftwizard.datasets.validation import validate_file
t0, c0 = time.perf_counter(), time.process_time()
r = validate_file(sys.argv[1], model=sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "images": r.images, "image_tokens": r.image_tokens, "errors": len(r.errors),
                  "pillow": "PIL" in sys.modules}))
"""


def run(path: Path, model: str) -> dict[str, object]:
    """``validate_file`` in a fresh process (imports counted as a user's run would)."""
    out = subprocess.run(
        [sys.executable, "-c", _RUN, str(path), model], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images, text = generate(Path(tmp), args.examples, args.images, args.size)
        model = "together:Qwen/Qwen3-VL-8B-Instruct"
        with_images = run(images, model)
        text_only = run(text, model)
    print(f"{args.examples:,} examples, {args.images} distinct {args.size}px PNGs, {model}")
    for label, r in (("with images", with_images), ("text only", text_only)):
        print(
            f"{label:12} {r['wall']:.2f} s (CPU {r['cpu']:.2f} s)  images {r['images']:,}  "
            f"image tokens {r['image_tokens']:,}  errors {r['errors']}  Pillow loaded: "
            f"{r['pillow']}"
        )
    per = float(with_images["cpu"]) / max(1, int(with_images["images"]))  # type: ignore[arg-type]
    print(f"CPU per image reference: {per * 1e6:.0f} us")


if __name__ == "__main__":
    main()
