"""export-replay waits on the outcome each background job had, after every press that starts one,
and its final expect checks the key results of each step done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ftwizard.flow import start_session
from ftwizard.replay import parse_replay_text
from ftwizard.replay_export import JOBS, PRESS_JOB, export_replay
from ftwizard.screens import STEP_SCREENS
from ftwizard.session import Backend, Method, Session, StepId
from ftwizard.store import SessionStore


def _session(store: SessionStore, entries: list[tuple[str, dict[str, Any]]]) -> Session:
    session = start_session(store, "outcomes", method=Method.sft, backend=Backend.local)
    for screen, action in entries:
        session.record(screen, action)
    return session


def _actions(session: Session) -> list[dict[str, Any]]:
    text = export_replay(session)
    parse_replay_text(text, Path("exported.yaml"))  # the parser accepts it
    return list(yaml.safe_load(text)["actions"])


def _after(actions: list[dict[str, Any]], first: dict[str, Any]) -> list[dict[str, Any]]:
    return actions[actions.index(first) :]


def test_a_failed_grader_test_is_waited_on_as_failed_and_the_retry_as_done(
    store: SessionStore,
) -> None:
    spec = 'type: string_check\nname: x\ninput: "{{sample.output_text}}"\nreference: "y"\n'
    session = _session(
        store,
        [
            ("grader", {"screen": "grader"}),
            ("grader", {"set": {"grader-example": "exact_answer"}}),
            ("grader", {"press": "grader-test"}),
            ("grader", {"outcome": {"grader-test": "failed"}}),
            ("grader", {"set": {"grader-spec": spec}}),
            ("grader", {"press": "grader-test"}),
            ("grader", {"outcome": {"grader-test": "done"}}),
            ("grader", {"press": "grader-looks-right"}),
        ],
    )
    assert _after(_actions(session), {"press": "grader-test"})[:6] == [
        {"press": "grader-test"},
        {"wait": {"for": "grader-test-failed", "timeout": 300}},
        {"set": {"grader-spec": spec}},
        {"press": "grader-test"},
        {"wait": {"for": "grader-tested", "timeout": 300}},
        {"press": "grader-looks-right"},
    ]


def test_a_retried_check_and_a_stopped_dry_run(store: SessionStore) -> None:
    session = _session(
        store,
        [
            ("dataset", {"screen": "dataset"}),
            ("dataset", {"set": {"train-path": "missing.jsonl"}}),
            ("dataset", {"press": "check-dataset"}),
            ("dataset", {"outcome": {"dataset-check": "failed"}}),
            ("dataset", {"set": {"train-path": "examples/data/tickets/train.jsonl"}}),
            ("dataset", {"press": "check-dataset"}),
            ("dataset", {"outcome": {"dataset-check": "done"}}),
            ("dataset", {"press": "next"}),
            ("dryrun", {"screen": "dryrun"}),
            ("dryrun", {"press": "dryrun-run"}),
            ("dryrun", {"press": "dryrun-stop"}),
            ("dryrun", {"outcome": {"dryrun": "stopped"}}),
            ("dryrun", {"press": "dryrun-run"}),
            ("dryrun", {"outcome": {"dryrun": "done"}}),
        ],
    )
    actions = _actions(session)
    assert _after(actions, {"press": "check-dataset"})[:5] == [
        {"press": "check-dataset"},
        {"wait": {"for": "dataset-check-failed", "timeout": 300}},
        {"set": {"train-path": "examples/data/tickets/train.jsonl"}},
        {"press": "check-dataset"},
        {"wait": {"for": "dataset-checked", "timeout": 300}},
    ]
    assert _after(actions, {"press": "dryrun-run"})[:5] == [
        {"press": "dryrun-run"},
        {"press": "dryrun-stop"},
        # When Stop lands cannot be repeated: the replay waits for the run to end, however.
        {"wait": {"for": "dryrun-ended", "timeout": 600}},
        {"press": "dryrun-run"},
        {"wait": {"for": "dryrun-finished", "timeout": 600}},
    ]


def test_every_press_that_starts_work_gets_a_wait_even_without_an_outcome(
    store: SessionStore,
) -> None:
    """A journal from before outcomes were recorded, or one that quit while a job ran."""
    for press, job in PRESS_JOB.items():
        session = _session(store, [("evaluate", {"press": press})])
        actions = _actions(session)
        index = actions.index({"press": press})
        assert actions[index + 1] == {
            "wait": {"for": JOBS[job].done, "timeout": JOBS[job].timeout}
        }, press
    assert PRESS_JOB["run-ab"] == "ab-eval"


def test_a_declined_cost_question_waits_on_nothing(store: SessionStore) -> None:
    session = _session(
        store,
        [
            ("evaluate", {"screen": "evaluate"}),
            ("evaluate", {"press": "run-ab"}),
            ("confirm", {"press": "confirm-no"}),
            ("evaluate", {"outcome": {"ab-eval": "declined"}}),
            ("evaluate", {"press": "run-grader-eval"}),
            ("evaluate", {"outcome": {"grader-eval": "failed"}}),
        ],
    )
    actions = _after(_actions(session), {"press": "run-ab"})
    assert actions[:6] == [
        {"press": "run-ab"},
        {"screen": "confirm"},
        {"press": "confirm-no"},
        {"screen": "evaluate"},
        {"press": "run-grader-eval"},
        {"wait": {"for": "grader-eval-failed", "timeout": 600}},
    ]


@pytest.mark.parametrize("job", sorted(JOBS))
def test_each_wait_the_export_writes_is_a_condition_of_the_jobs_screen(job: str) -> None:
    screens = {
        "dataset-check": StepId.dataset,
        "distill": StepId.dataset,
        "answers-import": StepId.dataset,
        "grader-test": StepId.grader,
        "dryrun": StepId.dryrun,
        "training": StepId.training,
        "checkpoints": StepId.training,
        "deploy": StepId.deploy,
        "model-call": StepId.deploy,
        "server-stop": StepId.deploy,
        "grader-eval": StepId.evaluate,
        "ab-eval": StepId.evaluate,
    }
    conditions = STEP_SCREENS[screens[job]].WAIT_CONDITIONS
    for name in (JOBS[job].done, f"{job}-failed", f"{job}-ended"):
        assert name in conditions, name


def test_the_final_expect_checks_the_key_results_of_each_step_done(
    store: SessionStore, tmp_path: Path
) -> None:
    from tests.steps import confirm_grader, session_with_data

    session = session_with_data(store, tmp_path, backend=Backend.local)
    confirm_grader(store, session)
    session.dryrun.verdict = "WARNING"
    session.dryrun.n = 12
    session.dryrun.acknowledged = True
    expect = _actions(session)[-1]["expect"]
    result = session.dataset.result
    assert result is not None
    # A result with no validation file has no validation count, and the export leaves it out.
    validation = (
        {}
        if result.validation_examples is None
        else {"dataset.result.validation_examples": result.validation_examples}
    )
    assert expect == {
        "step": "dryrun",
        "task.method": "sft",
        "task.backend": "local",
        "task.base_model": session.task.base_model,
        "dataset.result.format": result.format,
        "dataset.result.examples": result.examples,
        "dataset.result.valid_examples": result.valid_examples,
        **validation,
        "dataset.result.errors": result.errors,
        "grader.confirmed_digest": session.grader.confirmed_digest,
        "dryrun.verdict": "WARNING",
        "dryrun.n": 12,
        "dryrun.acknowledged": True,
    }
