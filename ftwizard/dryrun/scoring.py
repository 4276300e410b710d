"""Grading and reporting half of the dry run: grade answers, measure judge noise, build the report.

:class:`Scoring` is mixed into :class:`ftwizard.dryrun.engine.DryRun`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

from ftwizard.credentials import redact
from ftwizard.dryrun.cost import cost_of
from ftwizard.dryrun.groups import GroupStats, group_stats
from ftwizard.dryrun.metrics import ScoreStats, normalize
from ftwizard.dryrun.report import (
    DryRunConfig,
    DryRunReport,
    GraderNoise,
    RowIssue,
    SampleOutcome,
    TokenUsage,
    TopicStats,
)
from ftwizard.dryrun.sampling import SampleSet
from ftwizard.dryrun.verdict import decide
from ftwizard.dryrun.verdict_types import Reason, Thresholds, Verdict, VerdictInputs
from ftwizard.graders.judges import judge_model
from ftwizard.graders.results import GradeResult, Sample
from ftwizard.graders.spec import AnyGrader
from ftwizard.providers.models import ModelRef

_PARSE_WORDS = ("json", "parse", "decode")


class Scoring:
    """Grading and the report (state lives on the :class:`DryRun` it is mixed into)."""

    config: DryRunConfig
    spec: AnyGrader
    ref: ModelRef
    usage: TokenUsage
    _outcomes: list[SampleOutcome]
    _scale: tuple[float, float]
    _needs_json: bool
    _noise: GraderNoise | None
    _thresholds: Thresholds | None
    _cancelled: bool
    _aborted: str | None
    _started: float
    _sample_set: SampleSet | None
    _batch_ids: list[str]
    _reused: int

    async def _grade(
        self,
        runner: Any,
        rows: Sequence[Any],
        indices: list[int],
        texts: dict[int, str],
        samples: dict[int, Sample],
    ) -> list[GradeResult]:
        for i in indices:
            samples[i] = Sample.from_output(texts[i])
        return list(
            await runner.grade([rows[i].item for i in indices], [samples[i] for i in indices])
        )

    def _record_grade(self, index: int, result: GradeResult, sample: Sample) -> None:
        outcome = self._outcomes[index]
        outcome.raw_score = result.score
        outcome.score = normalize(result.score, *self._scale)
        outcome.notes = result.notes
        outcome.parsed_json = sample.output_json is not None
        if result.error:
            outcome.error, outcome.stage = redact(result.error), "grading"

    async def _regrade(
        self, runner: Any, rows: Sequence[Any], samples: dict[int, Sample]
    ) -> GraderNoise | None:
        graded = [o.index for o in self._outcomes if o.score is not None and o.stage is None]
        k = min(self.config.regrade, len(graded))
        if k < 2:
            return None
        chosen = sorted(random.Random(self.config.seed).sample(graded, k))
        again = await runner.grade([rows[i].item for i in chosen], [samples[i] for i in chosen])
        diffs = []
        for i, result in zip(chosen, again, strict=True):
            if result.error:
                continue
            first = self._outcomes[i].score
            assert first is not None
            diffs.append(abs(first - normalize(result.score, *self._scale)))
        if not diffs:
            return None
        return GraderNoise(
            samples=len(diffs), mean_abs_diff=math.fsum(diffs) / len(diffs), max_abs_diff=max(diffs)
        )

    # -- the report --------------------------------------------------------------------------

    def _is_parse_failure(self, outcome: SampleOutcome) -> bool:
        if outcome.output is None:
            return False
        if outcome.stage == "grading" and outcome.error:
            lowered = outcome.error.lower()
            if any(word in lowered for word in _PARSE_WORDS):
                return True
        return self._needs_json and outcome.score is not None and not outcome.parsed_json

    def _group_figures(self, binary: bool) -> tuple[GroupStats | None, dict[str, GroupStats]]:
        """Group figures overall and per topic (``None`` and ``{}`` when K is 1)."""
        k = self.config.k
        if k < 2:
            return None, {}
        scores: dict[int, list[float]] = {}
        where: dict[int, tuple[int, str | None]] = {}
        for o in self._outcomes:
            where[o.group] = (o.line, o.topic)
            if o.score is not None and o.stage is None:
                scores.setdefault(o.group, []).append(o.score)
        by_group = [(where[g][0], scores.get(g, [])) for g in sorted(where)]
        overall = group_stats(by_group, k, binary=binary)
        per_topic: dict[str, GroupStats] = {}
        topics = sorted({t for _, t in where.values() if t is not None})
        for topic in topics:
            chosen = [
                (where[g][0], scores.get(g, [])) for g in sorted(where) if where[g][1] == topic
            ]
            figures = group_stats(chosen, k, binary=binary)
            if figures is not None:
                per_topic[topic] = figures
        return overall, per_topic

    def report(self) -> DryRunReport:
        """The report over what has completed so far (the whole run once :meth:`run` returns)."""
        graded = [o for o in self._outcomes if o.score is not None]
        stats = ScoreStats.of([o.score for o in graded if o.score is not None])
        by_topic: dict[str, list[float]] = {}
        for o in graded:
            if o.topic is not None and o.score is not None:
                by_topic.setdefault(o.topic, []).append(o.score)
        per_topic = {}
        for topic, scores in sorted(by_topic.items()):
            s = ScoreStats.of(scores)
            per_topic[topic] = TopicStats(
                n=s.n, mean=s.mean, std=s.std, pct_gt0=s.pct_gt0, pct_eq1=s.pct_eq1
            )
        errors = [
            RowIssue(row=o.line, stage=o.stage, message=o.error)
            for o in self._outcomes
            if o.stage is not None and o.error is not None
        ]
        parse_failures = sum(1 for o in graded if self._is_parse_failure(o))
        truncated = sum(1 for o in graded if o.finish_reason in ("length", "max_tokens"))
        sampled = len(self._outcomes)
        groups, groups_per_topic = self._group_figures(stats.binary)
        verdict = decide(
            VerdictInputs(
                method=self.config.method,
                stats=stats,
                sampled=sampled,
                generation_failures=sum(1 for e in errors if e.stage == "generation"),
                grader_errors=sum(1 for e in errors if e.stage == "grading"),
                parse_failures=parse_failures,
                truncated=truncated,
                grader_noise=self._noise.mean_abs_diff if self._noise else None,
                groups=groups,
            ),
            self._thresholds,
        )
        not_run = sum(1 for o in self._outcomes if o.output is None and o.stage is None)
        if self._cancelled and not_run:
            verdict = _with_partial_note(
                verdict, f"cancelled: {not_run} of {sampled} samples were not generated"
            )
        if self._aborted:
            verdict = _with_partial_note(verdict, f"stopped early: {self._aborted}")
        judge = judge_model(self.spec)
        return DryRunReport(
            model=self.ref.spec,
            method=self.config.method,
            data=self.config.data,
            grader=f"{self.spec.type} '{self.spec.name}'",
            seed=self.config.seed,
            requested=self.config.samples,
            sampled=sampled,
            scale=self._scale,
            stats=stats,
            per_topic=per_topic,
            topic_source=self._sample_set.topic_source if self._sample_set else None,
            errors=errors,
            parse_failures=parse_failures,
            truncated=truncated,
            grader_noise=self._noise,
            groups=groups,
            groups_per_topic=groups_per_topic,
            usage=self.usage.model_copy(),
            cost=cost_of(self.ref, self.usage, judge, batch=self.config.batch),
            verdict=verdict,
            samples=[o.model_copy() for o in self._outcomes],
            cancelled=self._cancelled,
            aborted=self._aborted,
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            batch_ids=list(self._batch_ids),
            reused=self._reused,
        )


def _with_partial_note(verdict: Verdict, message: str) -> Verdict:

    reason = Reason(rule="P1", level="warning", message=message)
    level = "WARNING" if verdict.verdict == "GO" else verdict.verdict
    return verdict.model_copy(update={"verdict": level, "reasons": [*verdict.reasons, reason]})
