"""The evaluate step as a user drives it, against the HTTP fakes.

The base model is the task's OpenAI model on one fake (``OPENAI_BASE_URL``), the tuned model is
the deployed model on another fake (a keyless OpenAI-compatible server at
``deployment.base_url``), and the judges are Claude models on the Anthropic fake, scripted
with known behaviour. Answers are right or wrong by a rule on the item number, so the counts a
fair judge must give follow from the data alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.widgets import Button, Static

from ftwizard.app import FtwizardApp
from ftwizard.flow import start_session
from ftwizard.session import Backend, StepId
from ftwizard.store import SessionStore
from tests.fakes.pairwise_judges import judge_prompt
from tests.waiting import confirm

SIZE = (120, 60)
N = 40
TUNED = "openai:ft:gpt-4.1-mini-2025-04-14:acme::tuned1"
EXACT_GRADER = """\
type: string_check
name: contains the label
input: "{{sample.output_text}}"
reference: "{{item.reference_answer}}"
operation: like
"""


def label(i: int) -> str:
    return f"<label-{i:03d}>"


def base_correct(i: int) -> bool:
    return i % 4 == 0


def tuned_correct(i: int) -> bool:
    return i % 10 != 0


def expected_counts(n: int = N) -> tuple[int, int, int]:
    """(base wins, tuned wins, ties) a fair judge must give, from the rules above."""
    a = sum(1 for i in range(n) if base_correct(i) and not tuned_correct(i))
    b = sum(1 for i in range(n) if tuned_correct(i) and not base_correct(i))
    return a, b, n - a - b


def answer_by(rule: Any) -> Any:
    def reply(body: dict[str, Any]) -> str:
        i = int(judge_prompt(body).rsplit("Classify item ", 1)[1].split()[0])
        return f"It is {label(i)}." if rule(i) else "It is something else."

    return reply


def session_at_evaluate(
    store: SessionStore, tmp_path: Path, tuned_url: str, *, n: int = N, judges: list[str]
) -> str:
    rows = [
        {
            "id": f"q{i}",
            "messages": [
                {"role": "user", "content": f"Classify item {i}"},
                {"role": "assistant", "content": label(i)},
            ],
            "domain": "in" if i < n // 2 else "out",
        }
        for i in range(n)
    ]
    held_out = tmp_path / "heldout.jsonl"
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    session = start_session(store, "evaluation", backend=Backend.openai)
    session.grader.spec_text = EXACT_GRADER
    session.deployment.model = TUNED
    session.deployment.base_url = tuned_url
    session.evaluation.held_out_file = str(held_out)
    session.evaluation.judges = judges
    session.step = StepId.evaluate
    store.save(session)
    return session.id


async def press(app: FtwizardApp, pilot: Any, button: str) -> None:
    app.screen.query_one(f"#{button}", Button).press()
    await pilot.pause()


async def confirm_and_wait(app: FtwizardApp, pilot: Any) -> None:
    await confirm(pilot)
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())
