"""Exporting a session's journal as a replay that reproduces it, failures and retries included.

The journal holds the user's decisions (``screen``, ``set``, ``press``) and, since background
work can end more than one way, the outcome of each job (``{"outcome": {job: result}}``). The
export repeats the decisions and, where an outcome was journaled, waits on that outcome: a
grader test that failed is followed by ``wait: grader-test-failed``, not by a wait for a success
that never comes. A press whose outcome the journal lacks (an older session, or one that quit
while the job ran) is followed by the wait for its success, as before.
"""

from __future__ import annotations

from typing import Any

import yaml

from ftwizard.replay import REPLAY_VERSION, resolve_path
from ftwizard.session import Session


class Job:
    """A kind of background work: the presses that start it and the waits for its ends."""

    def __init__(self, presses: tuple[str, ...], done: str, timeout: int) -> None:
        self.presses = presses
        self.done = done
        self.timeout = timeout


# job -> what starts it, the condition for its success and how long a replay waits. Each job
# also has ``<job>-failed`` (it ended with an error) and ``<job>-ended`` (it ended, however:
# a stop's moment cannot be repeated, so a stopped run is waited on with this one).
JOBS: dict[str, Job] = {
    "dataset-check": Job(("check-dataset",), "dataset-checked", 300),
    "distill": Job(("distill-run",), "distill-finished", 600),
    "answers-import": Job(("import-answers",), "answers-imported", 300),
    "grader-test": Job(("grader-test", "grader-more"), "grader-tested", 300),
    "dryrun": Job(("dryrun-run", "dryrun-more"), "dryrun-finished", 600),
    "training": Job(("start-training",), "training-finished", 3600),
    "checkpoints": Job(("score-checkpoints",), "checkpoints-scored", 600),
    "deploy": Job(("deploy-model",), "deployed", 300),
    "model-call": Job(("deploy-send",), "model-answered", 120),
    "server-stop": Job(("deploy-stop",), "server-stopped", 60),
    "grader-eval": Job(("run-grader-eval",), "evaluation-graded", 600),
    "ab-eval": Job(("run-ab",), "evaluation-judged", 600),
}

PRESS_JOB: dict[str, str] = {press: name for name, job in JOBS.items() for press in job.presses}

# A press that starts background work -> the wait condition for its success, and a timeout
# (kept for callers of the first export format).
WAIT_AFTER_PRESS: dict[str, tuple[str, int]] = {
    press: (JOBS[name].done, JOBS[name].timeout) for press, name in PRESS_JOB.items()
}


def outcome_wait(job: str, result: str) -> dict[str, Any] | None:
    """The replay's wait for ``job`` having ended with ``result``; ``None`` when nothing ran
    (the user declined the cost question)."""
    spec = JOBS.get(job)
    if spec is None or result == "declined":
        return None
    if result == "done":
        condition = spec.done
    elif result == "failed":
        condition = f"{job}-failed"
    else:
        condition = f"{job}-ended"
    return {"wait": {"for": condition, "timeout": spec.timeout}}


def _outcome_follows(journal: list[dict[str, Any]], index: int, job: str) -> bool:
    """Whether the journal records how the job started by entry ``index`` ended."""
    presses = JOBS[job].presses
    for action in journal[index + 1 :]:
        outcome = action.get("outcome")
        if isinstance(outcome, dict) and job in outcome:
            return True
        if action.get("press") in presses:
            return False
    return False


# The results that show what each step produced, in the order of the steps; a path whose
# value is missing or empty (a step not done) is left out of the final expect.
KEY_RESULTS: tuple[str, ...] = (
    "dataset.result.format",
    "dataset.result.examples",
    "dataset.result.valid_examples",
    "dataset.result.validation_examples",
    "dataset.result.errors",
    "dataset.distilled.kept",
    "dataset.imported.kept",
    "grader.confirmed_digest",
    "dryrun.verdict",
    "dryrun.n",
    "dryrun.acknowledged",
    "training.status",
    "deployment.model",
    "evaluation.grader_n",
    "evaluation.n",
)


def key_results(session: Session) -> dict[str, Any]:
    """The final expect: the step and the task, then the key results of each step done."""
    dumped = session.model_dump(mode="json")
    expect: dict[str, Any] = {
        key: resolve_path(dumped, key)
        for key in ("step", "task.method", "task.backend", "task.base_model")
    }
    for key in KEY_RESULTS:
        value = resolve_path(dumped, key)
        # Only values a step produced: not a missing path, an unset field or a False flag.
        if isinstance(value, str | int | float) and value is not False:
            expect[key] = value
    return expect


def export_replay(session: Session) -> str:
    """A replay that, run with ``--replay``, makes the same decisions in a new session.

    It starts like the session started (its journal's ``session`` entry), repeats every
    journaled action, waits after each background job for the outcome it had, and ends with
    expectations on the step it stopped at, the task and the key results of each step done, so
    a replay that drifted from the original fails instead of passing silently. A session that
    was closed and resumed, any number of times, exports as one new session: the journal runs
    on from each resume, so the whole of it reproduces the session as it is now.
    """
    start: dict[str, Any] = {"name": session.name}
    actions: list[dict[str, Any]] = []
    current: str | None = None
    journal = [entry.action for entry in session.journal]
    for index, entry in enumerate(session.journal):
        if "session" in entry.action:
            start = dict(entry.action["session"])
            continue
        outcome = entry.action.get("outcome")
        if isinstance(outcome, dict):
            for job, result in outcome.items():
                wait = outcome_wait(str(job), str(result))
                if wait is None:
                    continue
                if entry.screen != current:
                    actions.append({"screen": entry.screen})
                    current = entry.screen
                actions.append(wait)
            continue
        if "screen" in entry.action:
            current = entry.action["screen"]
        elif entry.screen != current:
            # Wait for the screen the decision was made on (a dialog, the next step) before
            # acting on it: screens appear a moment after the press that opens them.
            actions.append({"screen": entry.screen})
            current = entry.screen
        action = dict(entry.action)
        if action == {"press": "next"} and actions and actions[-1] == action:
            continue  # one step, journaled twice (by the button and by the step it opened)
        actions.append(action)
        job = PRESS_JOB.get(str(action.get("press")))
        if job is not None and not _outcome_follows(journal, index, job):
            spec = JOBS[job]
            actions.append({"wait": {"for": spec.done, "timeout": spec.timeout}})
    actions.append({"expect": key_results(session)})
    document = {"version": REPLAY_VERSION, "session": start, "actions": actions}
    header = (
        f"# Replay exported from ftwizard session '{session.name}' ({session.id}).\n"
        "# Run it with: ftwizard --replay THIS_FILE\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
