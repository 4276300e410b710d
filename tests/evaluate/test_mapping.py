"""The A/B order mapping can never be reversed: prompt and decoding share one Presentation,
and only ``decode_letter`` turns a letter into a model."""

from __future__ import annotations

import itertools
import re

import pytest
from pydantic import ValidationError

from ftwizard.evaluate.judging import (
    JudgeOptions,
    Judgment,
    PairItem,
    judge_messages,
    parse_verdict,
)
from ftwizard.evaluate.mapping import Presentation, decode_letter, plan_presentations
from ftwizard.providers.base import ChatMessage
from tests.conftest import REPO_ROOT
from tests.fakes.pairwise_judges import sections

ROOT = REPO_ROOT
ITEM = PairItem(
    id="x",
    prompt=[ChatMessage(role="user", content="2+2?")],
    answer_a="answer from model A",
    answer_b="answer from model B",
)


@pytest.mark.parametrize(
    ("presentation", "letter"),
    list(itertools.product([Presentation.b_first(False), Presentation.b_first(True)], "AB")),
)
def test_decoded_winner_is_the_model_whose_text_was_under_that_letter(
    presentation: Presentation, letter: str
) -> None:
    prompt = judge_messages(ITEM, presentation, JudgeOptions())[-1].content
    shown = sections(prompt)[f"Response {letter}"]
    side = decode_letter(presentation, letter)  # type: ignore[arg-type]
    assert shown == {"a": ITEM.answer_a, "b": ITEM.answer_b}[side]


def test_tie_stays_a_tie() -> None:
    for p in (Presentation.b_first(False), Presentation.b_first(True)):
        assert decode_letter(p, "tie") == "tie"


def test_presentation_must_show_both_models() -> None:
    with pytest.raises(ValidationError):
        Presentation(response_a="a", response_b="a")


def test_a_stored_winner_cannot_disagree_with_its_mapping() -> None:
    judgment = Judgment(item_id="x", judge="j", presentation=Presentation.b_first(True), letter="A")
    assert judgment.winner == "b" and judgment.chose_first is True
    stored = judgment.model_dump(mode="json")
    assert stored["winner"] == "b"
    # Tampering with the stored winner changes nothing: it is always re-derived.
    stored["winner"] = "a"
    assert Judgment.model_validate(stored).winner == "b"


def test_presentations_are_seeded_balanced_and_swapped_in_both_orders() -> None:
    plan = plan_presentations(41, seed=9, both_orders=True)
    assert plan == plan_presentations(41, seed=9, both_orders=True)
    assert plan != plan_presentations(41, seed=10, both_orders=True)
    firsts = [p[0].response_a for p in plan]
    assert abs(firsts.count("a") - firsts.count("b")) <= 1
    assert all(second == first.swapped() for first, second in plan)


def test_only_the_mapping_module_reads_a_presentation_field() -> None:
    """No other module maps letters to models on its own (the bug practitioners hit)."""
    pattern = re.compile(r"\.response_[ab]\b")
    users = [
        p
        for p in (ROOT / "ftwizard").rglob("*.py")
        if p.relative_to(ROOT).as_posix() != "ftwizard/evaluate/mapping.py"
        and (
            "evaluate" in p.relative_to(ROOT).as_posix()
            or "ftwizard.evaluate" in p.read_text(encoding="utf-8")
        )
    ]
    assert any(p.relative_to(ROOT).as_posix() == "ftwizard/evaluate/judging.py" for p in users)
    offenders = [
        p.relative_to(ROOT).as_posix()
        for p in users
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ('{"winner": "B", "reason": "r"}', "B"),
        ('Sure.\n```json\n{"winner": "Response A", "reason": "r"}\n```', "A"),
        ('{"winner": "TIE"}', "tie"),
    ],
)
def test_parse_verdict_reads_wrapped_and_spelled_out_letters(reply: str, letter: str) -> None:
    assert parse_verdict(reply)[0] == letter


@pytest.mark.parametrize("reply", ["A is better", '{"winner": "C"}', '{"reason": "x"}'])
def test_parse_verdict_refuses_replies_without_a_verdict(reply: str) -> None:
    with pytest.raises(ValueError):
        parse_verdict(reply)
