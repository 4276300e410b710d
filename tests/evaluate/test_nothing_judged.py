"""An A/B that judged nothing says why, and claims no win rate and no agreement."""

from __future__ import annotations

import asyncio

from ftwizard.evaluate.ab import Judge, JudgeOptions, PairItem, run_pairwise
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.report.evaluation import disagreement_label, pairwise_summary
from tests.scripted_judge import ScriptedJudge


def _items(n: int = 6) -> list[PairItem]:
    return [
        PairItem(
            id=f"i{k}",
            prompt=[ChatMessage(role="user", content=f"q{k}")],
            answer_a="a",
            answer_b="b",
        )
        for k in range(n)
    ]


def test_no_valid_verdict_says_why_and_claims_no_agreement() -> None:
    def rambles(request: GenerationRequest) -> str:
        return "I cannot decide."

    judges = [Judge("j1", ScriptedJudge(rambles), "m"), Judge("j2", ScriptedJudge(rambles), "m")]
    report = asyncio.run(run_pairwise(_items(), judges, JudgeOptions(seed=0, both_orders=True)))
    assert report.counts.n == 0
    summary = pairwise_summary(report)
    assert summary.startswith("No item was judged: ")
    assert "Nothing is claimed" in summary
    assert "win rate" not in summary and "agreed" not in summary
    label = disagreement_label(report)
    assert "not measured" in label and "agreed" not in label


def test_agreement_is_claimed_only_for_what_was_measured() -> None:
    def tuned_wins(request: GenerationRequest) -> str:
        text = request.messages[-1].content
        first = str(text).split("[Response A]")[1].split("[Response B]")[0]
        return '{"winner": "%s", "reason": "r"}' % ("A" if "b" in first.strip() else "B")

    one = [Judge("j1", ScriptedJudge(tuned_wins), "m")]
    report = asyncio.run(run_pairwise(_items(), one, JudgeOptions(seed=0)))
    assert report.counts.n == 6
    # One judge, one order: there was nothing that could disagree.
    assert disagreement_label(report) == "Judge disagreements: not measured (one judge, one order)"
    two = [*one, Judge("j2", ScriptedJudge(tuned_wins), "m")]
    report = asyncio.run(run_pairwise(_items(), two, JudgeOptions(seed=0, both_orders=True)))
    assert not report.disagreements
    assert disagreement_label(report) == (
        "Judge disagreements: none (every judge agreed, in both orders, on the 6 items)"
    )
