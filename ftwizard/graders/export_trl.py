"""A TRL GRPO reward function from a grader spec: ``reward_func(prompts, completions, **columns)``.

TRL passes the dataset's columns as keyword lists (one value per completion) plus a few of its
own (``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric``). Each completion is
graded with its row as ``item``; a row whose grader fails scores 0.0, as on OpenAI.
The function keeps one :class:`GraderRunner` (and so one python worker pool) for the whole run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Callable, Sequence
from typing import Any

from ftwizard.errors import InputError
from ftwizard.graders.export_openai import ExportUnsupported
from ftwizard.graders.results import Sample
from ftwizard.graders.runner import GraderRunner
from ftwizard.graders.spec import AnyGrader

TRL_ARGS = frozenset({"completion_ids", "trainer_state", "log_extra", "log_metric"})


def completion_text(completion: Any) -> str:
    """Text of a completion: a string, or the last assistant turn of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        for turn in reversed(completion):
            if isinstance(turn, dict) and turn.get("role", "assistant") == "assistant":
                content = turn.get("content", "")
                if isinstance(content, list):
                    return "".join(p.get("text", "") for p in content if isinstance(p, dict))
                return str(content)
    return str(completion)


def make_reward_func(
    spec: AnyGrader,
    *,
    judge: Any | None = None,
    concurrency: int = 8,
    python_timeout_s: float = 10.0,
) -> Callable[..., list[float]]:
    """A GRPO reward function that scores completions with ``spec``.

    Raises :class:`ExportUnsupported` when the spec cannot run locally (cosine, meteor without
    WordNet, a model grader without a ``judge``). Call ``reward_func.close()`` when training
    ends to stop the python worker processes.
    """
    runner = GraderRunner(
        spec, judge=judge, concurrency=concurrency, python_timeout_s=python_timeout_s
    )
    try:
        runner.preflight()
    except InputError as exc:
        raise ExportUnsupported(f"TRL reward '{spec.name}': {exc.message}") from None

    def reward_func(
        prompts: Sequence[Any], completions: Sequence[Any], **columns: Any
    ) -> list[float]:
        n = len(completions)
        data = {k: v for k, v in columns.items() if k not in TRL_ARGS}
        items = [
            {
                k: (v[i] if isinstance(v, list | tuple) and len(v) == n else v)
                for k, v in data.items()
            }
            for i in range(n)
        ]
        for i, item in enumerate(items):
            item.setdefault("prompt", prompts[i] if i < len(prompts) else None)
        samples = [Sample.from_output(completion_text(c)) for c in completions]
        results = _run(runner.grade(items, samples))
        return [r.score for r in results]

    reward_func.__name__ = re.sub(r"\W+", "_", spec.name).strip("_") or "grader"
    reward_func.close = runner.close  # type: ignore[attr-defined]
    return reward_func


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a notebook, an async trainer): run on a fresh thread.
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()
