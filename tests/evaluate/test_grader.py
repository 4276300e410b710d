"""Grader-based base vs tuned comparison through the OpenAI fake: means, flips, skipped rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftwizard.evaluate.ab import run_grader_comparison
from ftwizard.graders.loading import load_grader
from ftwizard.providers.openai.chat import OpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.openai_server import FakeOpenAIServer

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)
N = 12


def right(model: str, i: int) -> bool:
    return i % 3 == 0 if model == "base" else i != 6


async def test_base_vs_tuned_with_a_grader(
    tmp_path: Path, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    openai_server.models = None

    def answer(body: dict[str, Any]) -> Any:
        i = int(body["messages"][-1]["content"].split()[-1])
        if body["model"] == "tuned" and i == 11:
            return openai_server.error_response(400, "context length exceeded")
        return f"A{i}" if right(body["model"], i) else "nope"

    openai_server.reply_fn = answer
    grader_file = tmp_path / "g.yaml"
    grader_file.write_text(
        'type: string_check\nname: exact\ninput: "{{sample.output_text}}"\n'
        'reference: "{{item.answer}}"\noperation: eq\n',
        encoding="utf-8",
    )
    items = [
        {"messages": [{"role": "user", "content": f"question {i}"}], "answer": f"A{i}"}
        for i in range(N)
    ]
    provider = OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)
    result = await run_grader_comparison(
        items,
        load_grader(grader_file),
        base=(provider, "base"),
        tuned=(provider, "tuned"),
        item_ids=[f"q{i}" for i in range(N)],
    )
    compared = [i for i in range(N) if i != 11]  # the tuned model failed on row 11
    assert result.n == len(compared) and result.skipped == 1
    assert result.base_mean == pytest.approx(sum(right("base", i) for i in compared) / 11)
    assert result.tuned_mean == pytest.approx(sum(right("tuned", i) for i in compared) / 11)
    up = {f"q{i}" for i in compared if right("tuned", i) and not right("base", i)}
    down = {f"q{i}" for i in compared if right("base", i) and not right("tuned", i)}
    assert {f.item_id for f in result.flips if f.direction == "fail_to_pass"} == up
    assert {f.item_id for f in result.flips if f.direction == "pass_to_fail"} == down
    assert result.pass_to_fail == 1 and result.fail_to_pass == len(up)
    flip = next(f for f in result.flips if f.item_id == "q6")
    assert flip.base_output == "A6" and flip.tuned_output == "nope"
    assert result.tuned_better
