"""Benchmark: ftwizard's validation with token counting vs the OpenAI cookbook's plain loop.

Generates chat examples on the fly (default 60,000), then runs, each in a fresh process:

* baseline: the loop of the cookbook notebook Chat_finetuning_data_prep.ipynb (load the whole
  file with ``json.loads`` per line, the format-error loop, then the token-counting loop with
  ``encoding.encode`` for every message and again for assistant messages);
* ftwizard: ``validate_file`` (streamed, every check, cookbook-style counts).

Prints wall time and peak resident memory for each, and ftwizard's memory on a file four
times larger to show that memory does not grow with the file. Then the figure that counts, the
whole process the way a user runs it: ``python -m ftwizard validate FILE --model gpt-3.5-turbo
--json`` from start to exit (interpreter start, imports, encoding load, validation, output)
against the cookbook loop as a script, also from start to exit, with each run's CPU time (user +
sys), the figure to compare on a loaded machine. Both a file whose system prompt repeats and one
whose texts are all distinct (``--texts``).

    .venv/bin/python bench/bench_validate.py [--examples 60000] [--scale 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_VOCABULARY = (
    "bird robin wren feather nest song dawn migrate flock wing beak egg sparrow owl hawk "
    "forest river meadow winter summer north south seed insect branch sky cloud wind call "
    "colour small large bright dull quickly slowly often rarely because although however"
)
WORDS = _VOCABULARY.split(" ")
SYSTEM = "You are an ornithology assistant. Answer precisely and cite field marks when useful."


def generate(path: Path, n: int, seed: int = 0, *, distinct: bool = False) -> None:
    """Write ``n`` chat examples of varied length: one system prompt shared by all, or with
    ``distinct`` a different one per example (so no text repeats and no cache can help)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            question = " ".join(rng.choices(WORDS, k=rng.randint(8, 40))) + f" #{i}?"
            answer = " ".join(rng.choices(WORDS, k=rng.randint(20, 250))) + "."
            system = SYSTEM
            if distinct:
                system = f"{SYSTEM} Case {i}: " + " ".join(rng.choices(WORDS, k=8)) + "."
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
            if i % 4 == 0:
                messages += [
                    {"role": "user", "content": "And " + " ".join(rng.choices(WORDS, k=12))},
                    {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=60))},
                ]
            fh.write(json.dumps({"messages": messages}) + "\n")


def baseline(path: str) -> dict[str, object]:
    """The cookbook notebook's loop, as written there (cl100k_base)."""
    from collections import defaultdict

    import tiktoken

    with open(path, encoding="utf-8") as f:
        dataset = [json.loads(line) for line in f]

    format_errors: defaultdict[str, int] = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(
                k not in ("role", "content", "name", "function_call", "weight") for k in message
            ):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1

    encoding = _cl100k()

    def num_tokens_from_messages(messages, tokens_per_message=3, tokens_per_name=1):
        num_tokens = 0
        for message in messages:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def num_assistant_tokens_from_messages(messages):
        num_tokens = 0
        for message in messages:
            if message["role"] == "assistant":
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    n_missing_system = 0
    n_missing_user = 0
    n_messages = []
    convo_lens = []
    assistant_message_lens = []
    for ex in dataset:
        messages = ex["messages"]
        if not any(message["role"] == "system" for message in messages):
            n_missing_system += 1
        if not any(message["role"] == "user" for message in messages):
            n_missing_user += 1
        n_messages.append(len(messages))
        convo_lens.append(num_tokens_from_messages(messages))
        assistant_message_lens.append(num_assistant_tokens_from_messages(messages))
    max_tokens = 16385
    n_too_long = sum(length > max_tokens for length in convo_lens)
    n_billing = sum(min(max_tokens, length) for length in convo_lens)
    del tiktoken
    return {
        "examples": len(dataset),
        "tokens": sum(convo_lens),
        "too_long": n_too_long,
        "billing": n_billing,
        "errors": sum(format_errors.values()),
    }


def _cl100k():
    from ftwizard.datasets.tokens import load_tiktoken_encoding

    encoding, reason = load_tiktoken_encoding("cl100k_base")
    if encoding is None:
        raise SystemExit(f"cl100k_base unavailable: {reason}")
    return encoding


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _counter_kind() -> str:
    from ftwizard.datasets.targets import resolve_target
    from ftwizard.datasets.tokens import counter_for

    return type(counter_for(resolve_target("gpt-3.5-turbo"))).__name__


def ours(path: str) -> dict[str, object]:
    """ftwizard's validation (cl100k_base via gpt-3.5-turbo, the cookbook's encoding)."""
    from ftwizard.datasets.validation import validate_file

    report = validate_file(path, model="gpt-3.5-turbo")
    return {
        "examples": report.examples,
        "tokens": report.tokens.total,
        "too_long": report.tokens.over_limit,
        "billing": report.billed_tokens_per_epoch,
        "errors": len(report.errors),
    }


def child(which: str, path: str) -> None:
    """Run one contender and print its figures as JSON (called in a fresh process)."""
    _cl100k()  # load the encoding before timing: both contenders share this one-off cost
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    start = time.perf_counter()
    result = baseline(path) if which == "baseline" else ours(path)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    peak_mib = usage.ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mib": peak_mib, **result}))


def whole_process(which: str, path: Path) -> tuple[float, float, int]:
    """Wall and CPU (user + sys) seconds of one whole process, start to exit, and the token
    total it printed. CPU time is what to compare on a loaded machine: wall time there moves
    with the other work."""
    if which == "baseline":
        argv = [sys.executable, __file__, "--child", "baseline", str(path)]
    else:
        argv = [sys.executable, "-m", "ftwizard", "validate", str(path)]
        argv += ["--model", "gpt-3.5-turbo", "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if out.returncode not in (0, 1):  # 1: the file has problems, still a full run
        raise SystemExit(f"{which} failed ({out.returncode}): {out.stderr[-2000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    tokens = data["tokens"] if which == "baseline" else data["tokens"]["total"]
    return seconds, cpu, int(tokens)


def run_child(which: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60_000)
    parser.add_argument("--scale", type=int, default=4, help="size factor for the memory check")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (best kept)")
    parser.add_argument(
        "--texts",
        choices=("repeated", "distinct", "both"),
        default="both",
        help="a file whose system prompt repeats, one where every text is distinct, or both",
    )
    parser.add_argument("--child", nargs=2, metavar=("WHICH", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    kinds = ("repeated", "distinct") if args.texts == "both" else (args.texts,)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"machine: {os.cpu_count()} CPUs, load average {_load():.2f} (other work slows both)")
        print(f"ftwizard counts with: {_counter_kind()}")
        for kind in kinds:
            small = Path(tmp) / f"{kind}.jsonl"
            generate(small, args.examples, distinct=kind == "distinct")
            print(
                f"\n{kind} texts: {args.examples:,} chat examples, "
                f"{small.stat().st_size / 2**20:.1f} MiB"
            )
            best = compare(small, args.repeat)
        large = Path(tmp) / "large.jsonl"
        generate(large, args.examples * args.scale, seed=1, distinct=kinds[-1] == "distinct")
        big = run_child("ftwizard", large)
        print(
            f"memory: {args.examples:,} examples {best['ftwizard']['peak_mib']:.1f} MiB; "
            f"{args.examples * args.scale:,} examples {big['peak_mib']:.1f} MiB "
            f"(baseline on the small file {best['baseline']['peak_mib']:.1f} MiB)"
        )


def compare(small: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Time the cookbook loop and ftwizard on ``small``, in process and as whole processes."""
    best: dict[str, dict[str, float]] = {}
    for which in ("baseline", "ftwizard"):
        runs = [run_child(which, small) for _ in range(repeat)]
        best[which] = min(runs, key=lambda r: r["seconds"])
        r = best[which]
        print(
            f"{which:9s} {r['seconds']:7.2f} s  (CPU {r['cpu']:5.2f} s)  "
            f"peak {r['peak_mib']:7.1f} MiB  tokens {r['tokens']:,}"
        )
    if best["baseline"]["tokens"] != best["ftwizard"]["tokens"]:
        print("WARNING: token totals differ")
    ratio = best["ftwizard"]["seconds"] / best["baseline"]["seconds"]
    cpu = best["ftwizard"]["cpu"] / best["baseline"]["cpu"]
    print(f"in-process ftwizard / baseline: time {ratio:.2f}, CPU {cpu:.2f}")
    whole: dict[str, tuple[float, float, int]] = {}
    least_cpu: dict[str, float] = {}
    for which in ("baseline", "ftwizard"):
        runs = [whole_process(which, small) for _ in range(repeat)]
        whole[which] = min(runs)
        least_cpu[which] = min(r[1] for r in runs)
        cpus = ", ".join(f"{r[1]:.2f}" for r in runs)
        print(
            f"whole process {which:9s} {whole[which][0]:6.2f} s  (CPU of each run: {cpus} s)  "
            f"tokens {whole[which][2]:,}"
        )
    if whole["baseline"][2] != whole["ftwizard"][2]:
        print("WARNING: whole-process token totals differ")
    ratio = whole["ftwizard"][0] / whole["baseline"][0]
    cpu_ratio = least_cpu["ftwizard"] / least_cpu["baseline"]
    print(
        f"whole process ftwizard validate / cookbook: wall {ratio:.2f} (target <= 0.50), "
        f"CPU {cpu_ratio:.2f} (target <= 1.00; on a loaded machine CPU is the figure to trust)"
    )
    print(f"load average now {_load():.2f}")
    return best


if __name__ == "__main__":
    main()
