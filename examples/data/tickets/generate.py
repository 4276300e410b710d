"""Generate the support-ticket classification example: train.jsonl and valid.jsonl.

Each line is an OpenAI chat SFT example: a system instruction, a customer ticket as the user
turn, and the label (billing, bug, account or feature) as the assistant turn. Tickets are built
from per-label templates and shared vocabulary with a seeded RNG, so the files are the same on
every run. Run from anywhere:

    python examples/data/tickets/generate.py [--train 480] [--valid 120] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

LABELS = ("billing", "bug", "account", "feature")

SYSTEM = "Classify the support ticket as billing, bug, account or feature. Answer with the label."

# Slot fillers shared by every label, so that a label cannot be told from the openers, the
# products or the sign-offs: only the body of the ticket carries the signal.
OPENERS = ("", "Hi, ", "Hello, ", "Hey team, ", "Good morning, ", "Quick question: ", "Urgent: ")
CLOSERS = ("", " Thanks!", " Thank you.", " Please help.", " Any update?", " Cheers.")
PRODUCTS = ("the app", "the website", "the mobile app", "the dashboard", "your service")
TIMES = ("today", "yesterday", "this week", "this month", "since the update", "again")

BODIES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {plan} plan {time}.",
        "my card was charged but {product} still shows the free plan.",
        "I need a refund for the {plan} subscription I cancelled.",
        "the invoice for {time} has the wrong amount.",
        "why did the price of the {plan} plan go up {time}?",
        "please send me a copy of my last bill.",
        "the payment failed {time} and I do not know why.",
        "can I get my money back for the {plan} plan?",
    ),
    "bug": (
        "{product} crashes when I {action}.",
        "I get an error every time I {action}.",
        "the {widget} button does nothing in {product}.",
        "{product} freezes {time} when I {action}.",
        "the {widget} page shows a blank screen {time}.",
        "something is broken: I cannot {action} in {product}.",
        "the {widget} screen keeps loading forever.",
        "{product} shows the wrong date on the {widget} page.",
    ),
    "account": (
        "I cannot log in to my account {time}.",
        "please reset my password, the reset email never arrives.",
        "how do I change the email on my account?",
        "my account was locked {time} after too many login attempts.",
        "I want to delete my account and all my data.",
        "someone else may have access to my account.",
        "how do I add a second user to my account?",
        "I forgot my username, how can I sign in?",
    ),
    "feature": (
        "it would be great if {product} had {feature}.",
        "please add {feature} to {product}.",
        "could you support {feature} in the next update?",
        "I would love to see {feature} in {product}.",
        "any plans to add {feature}?",
        "my team really needs {feature}, can you build it?",
        "a suggestion: let us use {feature} on the {widget} page.",
        "would you consider adding {feature}?",
    ),
}

SLOTS: dict[str, tuple[str, ...]] = {
    "plan": ("basic", "pro", "team", "yearly", "monthly", "family"),
    "action": (
        "upload a photo",
        "open a report",
        "save my work",
        "export to PDF",
        "search for a file",
        "share a link",
    ),
    "widget": ("settings", "search", "export", "profile", "home", "reports"),
    "feature": (
        "dark mode",
        "an offline mode",
        "two factor login",
        "a calendar view",
        "keyboard shortcuts",
        "more languages",
        "an export to Excel option",
    ),
}


def make_ticket(label: str, rng: random.Random) -> str:
    """One ticket text for ``label``."""
    body = rng.choice(BODIES[label])
    body = body.format(
        product=rng.choice(PRODUCTS),
        time=rng.choice(TIMES),
        **{name: rng.choice(values) for name, values in SLOTS.items()},
    )
    opener = rng.choice(OPENERS)
    text = opener + body
    text = text[0].upper() + text[1:]
    return text + rng.choice(CLOSERS)


def make_examples(
    n: int, rng: random.Random, seen: set[str] | None = None
) -> list[dict[str, object]]:
    """``n`` distinct examples with the labels balanced (round-robin), then shuffled.

    Tickets already in ``seen`` are drawn again: ftwizard's validator rejects duplicates, and
    an example dataset must pass its own checks.
    """
    seen = set() if seen is None else seen
    examples: list[dict[str, object]] = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        ticket = make_ticket(label, rng)
        while ticket in seen:
            ticket = make_ticket(label, rng)
        seen.add(ticket)
        examples.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": ticket},
                    {"role": "assistant", "content": label},
                ]
            }
        )
    rng.shuffle(examples)
    return examples


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    """Write ``rows`` as JSON lines (UTF-8, one object per line)."""
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Write train.jsonl and valid.jsonl next to this script (or into ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=480)
    parser.add_argument("--valid", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    # One set of tickets for both files: no duplicate within training, and a ticket seen in
    # training is never scored in validation.
    seen: set[str] = set()
    train = make_examples(args.train, rng, seen)
    valid = make_examples(args.valid, rng, seen)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "train.jsonl", train)
    write_jsonl(args.out / "valid.jsonl", valid)
    print(f"wrote {len(train)} train and {len(valid)} valid examples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
