"""How long `ftwizard --help` takes (goal: under 1 s median on a 2-core machine).

Run: .venv/bin/python bench/cli_startup.py [RUNS]
Prints the median, min and max wall time of `python -m ftwizard --help` over RUNS runs, and the
same for bare `python -c pass` as the interpreter's floor.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _time(argv: list[str], runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    """Measure and print."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    for label, argv in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("ftwizard --help", [sys.executable, "-m", "ftwizard", "--help"]),
        ("ftwizard sessions --json", [sys.executable, "-m", "ftwizard", "sessions", "--json"]),
    ):
        timings = _time(argv, runs)
        print(
            f"{label:26} median {statistics.median(timings) * 1000:7.1f} ms   "
            f"min {min(timings) * 1000:7.1f} ms   max {max(timings) * 1000:7.1f} ms   "
            f"({runs} runs)"
        )


if __name__ == "__main__":
    main()
