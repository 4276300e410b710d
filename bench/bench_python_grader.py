"""Python grader throughput: the sandboxed worker pool vs one subprocess per row.

Run: ``.venv/bin/python bench/bench_python_grader.py [--rows N] [--workers W]``.
Prints rows/s for a trivial exact-match grader: the pool cold (process start included), the
pool warm (reused, as the grader step and dry run use it), and the baseline that starts one
Python process per row, and what the sandbox enforced. Workers get one row at a time (so a
grader never holds another row it could answer for), checked JSON each way.
Target: pool >= 500 rows/s on 2 cores (stretch 2,000).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from ftwizard.graders.python_pool import PythonGraderPool

SOURCE = """
def grade(sample, item):
    return 1.0 if sample["output_text"].strip() == item["answer"] else 0.0
"""

ONE_ROW = (
    SOURCE
    + """
import json, sys
row = json.load(sys.stdin)
print(grade(row["sample"], row["item"]))
"""
)


def make_rows(n: int) -> list[tuple[dict[str, object], dict[str, object]]]:
    return [({"output_text": str(i % 7)}, {"answer": "3"}) for i in range(n)]


def bench_pool(
    rows: list[tuple[dict[str, object], dict[str, object]]], workers: int
) -> tuple[float, float, list[str]]:
    with PythonGraderPool(workers) as pool:
        start = time.perf_counter()
        outcomes = pool.grade(SOURCE, rows)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        pool.grade(SOURCE, rows)
        warm = time.perf_counter() - start
        enforced = pool.report.lines()[1:] if pool.report else ["sandbox: no report"]
    assert sum(o.score for o in outcomes) == sum(1 for s, _ in rows if s["output_text"] == "3")
    return len(rows) / cold, len(rows) / warm, enforced


def bench_subprocess(rows: list[tuple[dict[str, object], dict[str, object]]]) -> float:
    start = time.perf_counter()
    for sample, item in rows:
        subprocess.run(
            [sys.executable, "-c", ONE_ROW],
            input=json.dumps({"sample": sample, "item": item}),
            capture_output=True,
            text=True,
            check=True,
        )
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--baseline-rows", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cold, warm, enforced = bench_pool(make_rows(args.rows), args.workers)
    base = bench_subprocess(make_rows(args.baseline_rows))
    print(f"python grader, trivial exact match, {args.workers} workers")
    print(f"  pool, cold (incl. process start): {cold:10,.0f} rows/s  ({args.rows:,} rows)")
    print(f"  pool, warm (reused):              {warm:10,.0f} rows/s  ({args.rows:,} rows)")
    print(f"  one subprocess per row:           {base:10,.1f} rows/s  ({args.baseline_rows} rows)")
    print(f"  speed-up (warm pool vs baseline): {warm / base:10,.0f}x")
    for line in enforced:
        print(f"  sandbox: {line}")


if __name__ == "__main__":
    main()
