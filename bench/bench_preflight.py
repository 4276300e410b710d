"""Preflight speed: how long a keyless cloud dry run takes to fail, start-up included.

Run: ``.venv/bin/python bench/bench_preflight.py [--runs N]``.

Issue 18's target: a call that cannot work (Together with no ``TOGETHER_API_KEY``, Vertex
without application-default credentials) fails in under 2 s, naming the variable, before any
cost question. This runs ``python -m ftwizard dryrun`` in a fresh process with the key unset
and prints the median wall time of ``--runs`` runs, the exit code and the first line of the
message, for each case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "together without TOGETHER_API_KEY": "together:Qwen/Qwen3.5-9B",
    "vertex without ADC": "vertex:gemini-2.5-flash",
    "anthropic without ANTHROPIC_API_KEY": "anthropic:claude-haiku-4-5",
}
GRADER = (
    'type: string_check\nname: exact\ninput: "{{sample.output_text}}"\n'
    'reference: "{{item.answer}}"\noperation: eq\n'
)


def _files(folder: Path) -> tuple[Path, Path]:
    data = folder / "data.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Q{i}"}], "answer": f"A{i}"} for i in range(2000)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    grader = folder / "grader.yaml"
    grader.write_text(GRADER, encoding="utf-8")
    return data, grader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith(("GOOGLE_", "TOGETHER_"))
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env["CLOUDSDK_CONFIG"] = str(folder / "gcloud")  # no ADC file
        env["GOOGLE_CLOUD_PROJECT"] = "bench-project"
        data, grader = _files(folder)
        for label, model in CASES.items():
            times: list[float] = []
            code, message = 0, ""
            for _ in range(args.runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "ftwizard",
                        "dryrun",
                        "--data",
                        str(data),
                        "--grader",
                        str(grader),
                        "--model",
                        model,
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                times.append(time.perf_counter() - started)
                code, message = done.returncode, done.stderr.strip().splitlines()[0][:160]
            print(
                f"{label}: median {statistics.median(times):.2f} s over {args.runs} runs "
                f"(target < 2 s), exit {code}\n  {message}"
            )


if __name__ == "__main__":
    main()
