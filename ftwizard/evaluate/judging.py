"""Blind pairwise judging: the judge prompt, one judgment per (item, order, judge, run).

The judge sees "Response A" and "Response B" only; which model is which is recorded on each
:class:`Judgment` as its :class:`~ftwizard.evaluate.mapping.Presentation`, and the winner is
derived from it, never stored separately, so a stored judgment cannot disagree with its mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, computed_field

from ftwizard.credentials import redact
from ftwizard.evaluate.mapping import (
    Letter,
    Presentation,
    Verdict,
    decode_letter,
    plan_presentations,
    shown_answers,
)
from ftwizard.providers.base import ChatMessage, ChatProvider, GenerationRequest, ProviderError

DEFAULT_JUDGE_SYSTEM = (
    "You are an impartial judge comparing two responses to the same conversation. Judge "
    "correctness first, then helpfulness and how well the instructions were followed. The "
    "responses appear in a random order; their position and length say nothing about quality."
)

# Placeholders: {conversation}, {reference}, {response_a}, {response_b}. Filled with
# str.replace, so the JSON braces in the text need no escaping.
DEFAULT_JUDGE_PROMPT = """[Conversation]
{conversation}
{reference}
[Response A]
{response_a}

[Response B]
{response_b}

Which response is better? Answer with JSON only:
{"winner": "A" | "B" | "tie", "reason": "<one sentence>"}"""

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": ["A", "B", "tie"]},
        "reason": {"type": "string"},
    },
    "required": ["winner", "reason"],
    "additionalProperties": False,
}

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class PairItem(BaseModel):
    """One held-out example with both models' answers."""

    id: str
    prompt: list[ChatMessage]
    answer_a: str
    answer_b: str
    tag: str | None = None
    reference: str | None = None


class Judgment(BaseModel):
    """One judge's reading of one item in one order, with the mapping it was shown."""

    item_id: str
    judge: str
    run: int = 0
    order: int = 0
    presentation: Presentation
    letter: Letter | None = None
    reason: str = ""
    error: str | None = None
    call_failed: bool = False
    input_tokens: int = 0
    output_tokens: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def winner(self) -> Verdict | None:
        """The model the judge preferred, read through this judgment's own presentation."""
        return None if self.letter is None else decode_letter(self.presentation, self.letter)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def chose_first(self) -> bool | None:
        """Whether a decisive judgment picked the answer shown first; ``None`` otherwise."""
        return None if self.letter in (None, "tie") else self.letter == "A"


@dataclass(frozen=True)
class Judge:
    """A judge model: a display name, the provider that calls it and the model id."""

    name: str
    provider: ChatProvider
    model: str


class JudgeOptions(BaseModel):
    """How the judges are asked."""

    seed: int = 0
    both_orders: bool = False
    runs: int = Field(default=1, ge=1, le=50)
    system_prompt: str = DEFAULT_JUDGE_SYSTEM
    prompt_template: str = DEFAULT_JUDGE_PROMPT
    max_tokens: int = Field(default=512, ge=16)
    temperature: float | None = None
    concurrency: int = Field(default=8, ge=1)


class EvaluationCancelled(Exception):
    """Raised when ``should_stop`` asked a running evaluation to stop."""


def conversation_text(messages: Sequence[ChatMessage]) -> str:
    """The prompt as the judge reads it: one ``role: text`` paragraph per turn."""
    return "\n\n".join(
        f"{m.role}: "
        + (f"[{len(m.images)} image(s), shown above] " if m.images else "")
        + m.content
        for m in messages
    )


def judge_messages(
    item: PairItem, presentation: Presentation, options: JudgeOptions
) -> list[ChatMessage]:
    """The judge's conversation for ``item`` shown under ``presentation``."""
    response_a, response_b = shown_answers(presentation, item.answer_a, item.answer_b)
    reference = f"\n[Reference answer]\n{item.reference}\n" if item.reference else ""
    text = (
        options.prompt_template.replace("{conversation}", conversation_text(item.prompt))
        .replace("{reference}", reference)
        .replace("{response_a}", response_a)
        .replace("{response_b}", response_b)
    )
    # The judge sees the pictures the models saw: both answers are about them.
    images = [ref for message in item.prompt for ref in message.images]
    return [
        ChatMessage(role="system", content=options.system_prompt),
        ChatMessage(role="user", content=text, images=images),
    ]


def parse_verdict(text: str) -> tuple[Letter, str]:
    """The judge's letter and reason from its reply; ``ValueError`` when there is none."""
    candidates = [text.strip()]
    match = _JSON_OBJECT.search(text)
    if match:
        candidates.append(match.group(0))
    data: Any = None
    for candidate in candidates:
        try:
            data = json.loads(candidate)
            break
        except ValueError:
            continue
    if not isinstance(data, dict) or "winner" not in data:
        raise ValueError(f'no {{"winner": ...}} JSON in the judge\'s reply: {text[:120]!r}')
    raw = str(data["winner"]).strip().lower().removeprefix("response").strip()
    letters: dict[str, Letter] = {"a": "A", "b": "B", "tie": "tie"}
    if raw not in letters:
        raise ValueError(f"winner must be 'A', 'B' or 'tie', got {data['winner']!r}")
    reason = data.get("reason")
    return letters[raw], reason if isinstance(reason, str) else ""


ProgressHook = Callable[[int, int], None]
StopHook = Callable[[], bool]


async def run_judgments(
    items: Sequence[PairItem],
    judges: Sequence[Judge],
    options: JudgeOptions,
    *,
    on_progress: ProgressHook | None = None,
    should_stop: StopHook | None = None,
) -> list[Judgment]:
    """Ask every judge about every item, in each planned order, ``options.runs`` times.

    Run ``r`` plans its orders with seed ``options.seed + r``. A failed call or an unreadable
    reply becomes that judgment's ``error``; ``should_stop()`` returning true stops the run
    with :class:`EvaluationCancelled`. ``on_progress(done, total)`` follows every judgment.
    """
    import asyncio

    from ftwizard.providers.concurrency import generate_many

    plans = [
        plan_presentations(len(items), seed=options.seed + run, both_orders=options.both_orders)
        for run in range(options.runs)
    ]
    slots: list[tuple[PairItem, int, int, Presentation]] = [
        (item, run, order, presentation)
        for run in range(options.runs)
        for item, presentations in zip(items, plans[run], strict=True)
        for order, presentation in enumerate(presentations)
    ]
    total = len(slots) * len(judges)
    done = 0

    def tick(_index: int, _result: object) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        if should_stop is not None and should_stop():
            raise EvaluationCancelled("evaluation stopped")

    async def one_judge(judge: Judge) -> list[Judgment]:
        requests = [
            GenerationRequest(
                model=judge.model,
                messages=judge_messages(item, presentation, options),
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                json_schema=VERDICT_SCHEMA,
            )
            for item, _run, _order, presentation in slots
        ]
        results = await generate_many(
            judge.provider,
            requests,
            concurrency=options.concurrency,
            on_result=tick,
            return_errors=True,
        )
        return [
            _judgment(judge.name, slot, result) for slot, result in zip(slots, results, strict=True)
        ]

    try:
        # A TaskGroup, not gather: a stop or a crash in one judge cancels the others.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one_judge(j)) for j in judges]
    except BaseExceptionGroup as failures:
        matched, _ = failures.split(EvaluationCancelled)
        if matched is not None:
            raise EvaluationCancelled("evaluation stopped") from None
        raise
    return [j for task in tasks for j in task.result()]


def _judgment(judge: str, slot: tuple[PairItem, int, int, Presentation], result: Any) -> Judgment:
    item, run, order, presentation = slot
    base = {
        "item_id": item.id,
        "judge": judge,
        "run": run,
        "order": order,
        "presentation": presentation,
    }
    if isinstance(result, ProviderError):
        return Judgment(**base, error=redact(str(result)), call_failed=True)
    tokens = {"input_tokens": result.input_tokens, "output_tokens": result.output_tokens}
    try:
        letter, reason = parse_verdict(result.text)
    except ValueError as exc:
        return Judgment(**base, error=redact(str(exc)), **tokens)
    return Judgment(**base, letter=letter, reason=reason, **tokens)
