"""The order of the wizard's steps and where a session stands in them.

Whether a step is done is derived from the session itself (a task is done when its method,
backend and base model are valid), never stored separately, so the sidebar cannot disagree with
the data. Which steps exist in this version is decided by the screens that are registered; the
rest are shown as not available rather than as empty screens.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

from ftwizard.catalog import check_base_model, default_task
from ftwizard.errors import InputError
from ftwizard.session import Backend, Method, Session, StepId
from ftwizard.store import SessionStore


class StepState(StrEnum):
    """How a step appears in the sidebar."""

    done = "done"
    current = "current"
    open = "open"  # reachable, not done
    locked = "locked"  # an earlier step is not done yet
    unavailable = "unavailable"  # not in this version of ftwizard


@dataclass(frozen=True)
class StepInfo:
    """A step's title and one-line purpose."""

    id: StepId
    title: str
    purpose: str


STEPS: tuple[StepInfo, ...] = (
    StepInfo(StepId.task, "Task", "method, backend and base model"),
    StepInfo(StepId.dataset, "Dataset", "load, validate, price and split the training data"),
    StepInfo(StepId.grader, "Grader", "define what a better answer is and test it on samples"),
    StepInfo(StepId.dryrun, "Dry run", "grade the base model: GO / WARNING / NO-GO"),
    StepInfo(StepId.training, "Training", "run the job and watch its metrics"),
    StepInfo(StepId.deploy, "Deploy", "serve the tuned model"),
    StepInfo(StepId.evaluate, "Evaluate", "blind A/B of base vs tuned model"),
)

STEP_INFO: dict[StepId, StepInfo] = {info.id: info for info in STEPS}
ORDER: tuple[StepId, ...] = tuple(info.id for info in STEPS)


def task_problem(session: Session) -> str | None:
    """Why the task step is not complete yet, or None when it is."""
    task = session.task
    if task.method is None:
        return "Choose a method."
    if task.backend is None:
        return "Choose a backend."
    if task.base_model is None:
        return "Choose a base model."
    return check_base_model(task.backend, task.method, task.base_model)


def dataset_problem(session: Session) -> str | None:
    """Why the dataset step is not complete yet, or None when it is."""
    from ftwizard.datasets.pipeline import format_problem, is_stale

    if session.task.method is None:
        return "Choose a method on the task step first."
    dataset = session.dataset
    problem = format_problem(dataset.result, session.task.method)
    if problem is None and is_stale(dataset.choice, dataset.result):
        return "The data files changed since they were checked; press Check again."
    return problem


def grader_problem(session: Session) -> str | None:
    """Why the grader step is not complete yet, or None when it is."""
    from ftwizard.graders.workbench import spec_digest

    grader = session.grader
    if not grader.spec_text or not grader.spec_text.strip():
        return "Choose how answers are scored: a judge, a script, a built-in check or an example."
    digest = spec_digest(grader.spec_text)
    if grader.test is None or grader.test.spec_digest != digest:
        return "Test the grader on samples before relying on it."
    if grader.confirmed_digest != digest:
        return "Look at the scores: confirm they look right, or adjust the grader."
    return None


def dryrun_problem(session: Session) -> str | None:
    """Why the dry-run step is not complete yet, or None when it is."""
    from ftwizard.dryrun.session import dryrun_problem as problem

    return problem(session)


def evaluate_problem(session: Session) -> str | None:
    """Why the evaluate step is not complete yet, or None when it is."""
    if not session.deployment.model:
        return "Deploy the tuned model first: the evaluation calls it."
    ev = session.evaluation
    if ev.tuned_mean is None and ev.tuned_win_rate is None:
        return "Compare the models: with the grader, in a blind A/B, or both."
    return None


def training_problem(session: Session) -> str | None:
    """Why the training step is not complete (a succeeded job with a model), or None."""
    from ftwizard.training.results import training_problem as problem

    return problem(session)


def deploy_problem(session: Session) -> str | None:
    """Why the deploy step is not complete (a deployed model that answered), or None."""
    from ftwizard.deploy.engine import deploy_problem as problem

    return problem(session)


# Each step's completeness test; a step's issue adds its entry when its screen lands.
_DONE: dict[StepId, Callable[[Session], bool]] = {
    StepId.task: lambda s: task_problem(s) is None,
    StepId.dataset: lambda s: dataset_problem(s) is None,
    StepId.grader: lambda s: grader_problem(s) is None,
    StepId.training: lambda s: training_problem(s) is None,
    StepId.deploy: lambda s: deploy_problem(s) is None,
    StepId.evaluate: lambda s: evaluate_problem(s) is None,
    StepId.dryrun: lambda s: dryrun_problem(s) is None,
}


def is_done(session: Session, step: StepId) -> bool:
    """Whether the session has everything the step produces."""
    check = _DONE.get(step)
    return check is not None and check(session)


def step_states(session: Session, available: Collection[StepId]) -> dict[StepId, StepState]:
    """The sidebar state of every step for this session."""
    states: dict[StepId, StepState] = {}
    earlier_done = True
    for step in ORDER:
        if step not in available:
            state = StepState.unavailable
        elif step == session.step:
            state = StepState.current
        elif is_done(session, step):
            state = StepState.done
        elif earlier_done:
            state = StepState.open
        else:
            state = StepState.locked
        states[step] = state
        earlier_done = earlier_done and step in available and is_done(session, step)
    return states


def can_enter(session: Session, step: StepId, available: Collection[StepId]) -> bool:
    """Whether the user may go to ``step`` now: it exists and every earlier step is done."""
    if step not in available:
        return False
    return all(is_done(session, earlier) for earlier in ORDER[: ORDER.index(step)])


def next_step(step: StepId) -> StepId | None:
    """The step after ``step`` in the wizard's order."""
    index = ORDER.index(step)
    return ORDER[index + 1] if index + 1 < len(ORDER) else None


def previous_step(step: StepId) -> StepId | None:
    """The step before ``step``, or None for the first step."""
    index = ORDER.index(step)
    return ORDER[index - 1] if index > 0 else None


def start_session(
    store: SessionStore,
    name: str | None = None,
    *,
    method: Method | None = None,
    backend: Backend | None = None,
    base_model: str | None = None,
) -> Session:
    """Create a session, filling unchosen task fields with the defaults, and journal how.

    The journal's first entry is the replay ``session:`` block that recreates this start, so an
    exported replay begins the same way.
    """
    task = default_task(method, backend, base_model)
    if base_model is not None and task.backend and task.method:
        problem = check_base_model(task.backend, task.method, base_model)
        if problem:
            raise InputError(problem, field="base_model")
    session = store.create(
        name, method=task.method, backend=task.backend, base_model=task.base_model
    )
    given: dict[str, str] = {"name": session.name}
    for key, value in (("method", method), ("backend", backend), ("base_model", base_model)):
        if value is not None:
            given[key] = str(value)
    session.record("welcome", {"session": given})
    store.save(session)
    return session
