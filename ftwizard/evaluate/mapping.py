"""How a pair of answers is shown to a judge, and how the judge's letter is read back.

Practitioners have published A/B results whose winner was reversed by a bug in this mapping.
Here one frozen :class:`Presentation` per judgment says which model's answer is "Response A";
the prompt is built from it by :func:`shown_answers` and the judge's letter is read back
through it by :func:`decode_letter` — the only function that turns a letter into a model.
Nothing else in ftwizard maps letters to models.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Side = Literal["a", "b"]
Letter = Literal["A", "B", "tie"]
Verdict = Literal["a", "b", "tie"]


class Presentation(BaseModel):
    """Which model's answer the judge sees as "Response A" and which as "Response B"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    response_a: Side
    response_b: Side

    @model_validator(mode="after")
    def _one_of_each(self) -> Presentation:
        if self.response_a == self.response_b:
            raise ValueError("Response A and Response B must show different models")
        return self

    @classmethod
    def b_first(cls, value: bool) -> Presentation:
        """Model B's answer shown first (as Response A) when ``value``, else model A's."""
        return cls(response_a="b", response_b="a") if value else cls(response_a="a", response_b="b")

    def swapped(self) -> Presentation:
        """The same pair in the other order."""
        return Presentation(response_a=self.response_b, response_b=self.response_a)


def decode_letter(presentation: Presentation, letter: Letter) -> Verdict:
    """The model a judge's letter refers to under ``presentation`` ("tie" stays "tie")."""
    if letter == "A":
        return presentation.response_a
    if letter == "B":
        return presentation.response_b
    return "tie"


def shown_answers(presentation: Presentation, answer_a: str, answer_b: str) -> tuple[str, str]:
    """The texts shown as (Response A, Response B) for model A's and model B's answers."""
    by_side = {"a": answer_a, "b": answer_b}
    return by_side[presentation.response_a], by_side[presentation.response_b]


def plan_presentations(n_items: int, *, seed: int, both_orders: bool) -> list[list[Presentation]]:
    """Each item's presentations: one seeded random order, or that order and its swap.

    The single orders are balanced (model B first in half the items, in a seeded random
    choice of items), so a judge that always picks the first answer splits its wins evenly
    between the models instead of handing the result to whichever came first more often.
    """
    flags = [i < n_items // 2 for i in range(n_items)]
    rng = random.Random(seed)
    rng.shuffle(flags)
    if n_items % 2:
        # The odd item out gets its own coin, so neither model is favoured systematically.
        flags[flags.index(False)] = rng.random() < 0.5
    out = []
    for b_first in flags:
        first = Presentation.b_first(b_first)
        out.append([first, first.swapped()] if both_orders else [first])
    return out
