"""Replay files: their format, parsing with line numbers, expectations, and export from a journal.

A replay is a YAML file of semantic actions that drive the real screens (see docs/replay.md).
This module knows the format and the session; driving the app lives in
:mod:`ftwizard.autopilot`, which is the UI half.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ftwizard.errors import InputError
from ftwizard.session import Backend, Method, Session

REPLAY_VERSION = 1

ActionKind = Literal["screen", "set", "press", "wait", "expect", "screenshot"]
ACTION_KINDS: tuple[str, ...] = ("screen", "set", "press", "wait", "expect", "screenshot")

Scalar = str | int | float | bool

# Widget ids and screen names: what Textual accepts as an id.
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Key names as Textual spells them: letters, digits, underscores, optional modifiers.
_KEY = re.compile(r"^((ctrl|shift|alt|super|meta)\+)*([a-z0-9_]+|.)$")
_SCREENSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ReplaySession(BaseModel):
    """The optional ``session:`` block: start the replay in a new session with these choices."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    method: Method | None = None
    backend: Backend | None = None
    base_model: str | None = None


class RangeExpectation(BaseModel):
    """``{min: a, max: b}``: a number within bounds (either may be left out)."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeExpectation:
        if self.min is None and self.max is None:
            raise ValueError("a range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


Expected = Scalar | None | list[Scalar | None] | RangeExpectation


class WaitSpec(BaseModel):
    """``wait: {for: CONDITION, timeout: SECONDS}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    condition: str = Field(alias="for")
    timeout: float = Field(default=30.0, gt=0, le=3600)


class Action(BaseModel):
    """One replay action, with the line it came from."""

    model_config = ConfigDict(extra="forbid")

    kind: ActionKind
    line: int
    screen: str | None = None
    timeout: float = 10.0
    set: dict[str, Scalar] | None = None
    press: str | None = None
    wait: WaitSpec | None = None
    expect: dict[str, Expected] | None = None
    screenshot: str | None = None

    def describe(self) -> str:
        """A short human description for the transcript."""
        if self.kind == "set" and self.set is not None:
            return "set " + ", ".join(f"{k} = {v!r}" for k, v in self.set.items())
        if self.kind == "expect" and self.expect is not None:
            return "expect " + ", ".join(
                f"{k} {_describe_expected(v)}" for k, v in self.expect.items()
            )
        if self.kind == "wait" and self.wait is not None:
            return f"wait for {self.wait.condition}"
        return f"{self.kind} {getattr(self, self.kind)}"


class Replay(BaseModel):
    """A parsed replay file."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    version: int = REPLAY_VERSION
    session: ReplaySession | None = None
    resume: str | None = None
    actions: list[Action]


def _describe_expected(value: Expected) -> str:
    if isinstance(value, RangeExpectation):
        parts = []
        if value.min is not None:
            parts.append(f">= {value.min}")
        if value.max is not None:
            parts.append(f"<= {value.max}")
        return " and ".join(parts)
    if isinstance(value, list):
        return f"in {value!r}"
    return f"== {value!r}"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _mapping_items(node: yaml.MappingNode) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        items[str(key_node.value)] = (key_node, value_node)
    return items


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    return field, error["msg"]


def parse_replay_text(text: str, path: Path) -> Replay:
    """Parse replay YAML; any problem raises :class:`InputError` naming the file and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", path=path, line=line) from None
    if root is None:
        raise InputError("the file is empty; a replay needs 'version' and 'actions'", path=path)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(
            "a replay is a mapping with 'version' and 'actions'", path=path, line=_line(root)
        )
    items = _mapping_items(root)
    unknown = sorted(set(items) - {"version", "session", "resume", "actions"})
    if unknown:
        key_node, _ = items[unknown[0]]
        raise InputError(
            "unknown key; a replay has version, session, resume and actions",
            path=path,
            line=_line(key_node),
            field=unknown[0],
        )
    if "version" not in items:
        raise InputError(f"missing 'version: {REPLAY_VERSION}'", path=path, line=1, field="version")
    version_node = items["version"][1]
    version = _construct(version_node)
    if version != REPLAY_VERSION:
        raise InputError(
            f"unsupported version {version!r}; this ftwizard reads version {REPLAY_VERSION}",
            path=path,
            line=_line(version_node),
            field="version",
        )
    if "session" in items and "resume" in items:
        raise InputError(
            "use either 'session' (start a new session) or 'resume' (open one), not both",
            path=path,
            line=_line(items["resume"][0]),
            field="resume",
        )
    session: ReplaySession | None = None
    if "session" in items:
        node = items["session"][1]
        try:
            session = ReplaySession.model_validate(_construct(node) or {})
        except ValidationError as exc:
            field, message = _first_error(exc)
            raise InputError(
                message, path=path, line=_line(node), field=f"session.{field}"
            ) from None
    resume: str | None = None
    if "resume" in items:
        node = items["resume"][1]
        value = _construct(node)
        if not isinstance(value, str) or not value.strip():
            raise InputError("expected a session id", path=path, line=_line(node), field="resume")
        resume = value.strip()
    if "actions" not in items:
        raise InputError("missing 'actions' (a list)", path=path, line=1, field="actions")
    actions_node = items["actions"][1]
    if not isinstance(actions_node, yaml.SequenceNode):
        raise InputError(
            "'actions' must be a list", path=path, line=_line(actions_node), field="actions"
        )
    actions = [_parse_action(node, index, path) for index, node in enumerate(actions_node.value)]
    return Replay(path=path, version=version, session=session, resume=resume, actions=actions)


def _parse_action(node: yaml.Node, index: int, path: Path) -> Action:
    line = _line(node)
    where = f"actions[{index}]"
    if not isinstance(node, yaml.MappingNode):
        raise InputError(
            f"each action is a mapping with one of: {', '.join(ACTION_KINDS)}",
            path=path,
            line=line,
            field=where,
        )
    raw = _construct(node)
    kinds = [key for key in raw if key in ACTION_KINDS]
    if len(kinds) != 1:
        raise InputError(
            f"an action has exactly one of: {', '.join(ACTION_KINDS)} (found {sorted(raw)})",
            path=path,
            line=line,
            field=where,
        )
    kind = kinds[0]
    extras = set(raw) - {kind} - ({"timeout"} if kind == "screen" else set())
    if extras:
        raise InputError(
            f"unknown key '{sorted(extras)[0]}' in a '{kind}' action",
            path=path,
            line=line,
            field=where,
        )
    value = raw[kind]
    if kind == "wait" and isinstance(value, str):
        value = {"for": value}
    if kind == "expect" and isinstance(value, dict):
        # A mapping is always a range; validating it on its own gives the range's own error
        # instead of the first failed member of the union.
        for key, expected in value.items():
            if isinstance(expected, dict):
                try:
                    RangeExpectation.model_validate(expected)
                except ValidationError as exc:
                    _, message = _first_error(exc)
                    raise InputError(
                        message, path=path, line=line, field=f"{where}.expect.{key}"
                    ) from None
    try:
        action = Action.model_validate({"kind": kind, "line": line, **raw, kind: value})
    except ValidationError as exc:
        field, message = _first_error(exc)
        raise InputError(message, path=path, line=line, field=f"{where}.{field}") from None
    problem = _check_action(action)
    if problem:
        raise InputError(problem, path=path, line=line, field=f"{where}.{kind}")
    return action


def _check_action(action: Action) -> str | None:
    if action.kind == "screen" and not _ID.match(action.screen or ""):
        return f"'{action.screen}' is not a screen name"
    if action.kind == "set":
        if not action.set:
            return "'set' needs at least one widget id: value"
        bad = [key for key in action.set if not _ID.match(key)]
        if bad:
            return f"'{bad[0]}' is not a widget id"
    if action.kind == "press":
        press = action.press or ""
        if not (_ID.match(press) or _KEY.match(press)):
            return f"'{press}' is neither a button id nor a key name"
    if action.kind == "expect" and not action.expect:
        return "'expect' needs at least one session path: value"
    if action.kind == "screenshot" and not _SCREENSHOT_NAME.match(action.screenshot or ""):
        return "a screenshot name uses letters, digits, '.', '_' and '-'"
    return None


def parse_replay(path: Path) -> Replay:
    """Read and parse a replay file."""
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a replay file", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot be read ({exc})", path=path) from None
    return parse_replay_text(text, path)


_MISSING = object()


def resolve_path(data: Any, dotted: str) -> Any:
    """Follow a dotted path (``task.method``, ``journal.0.screen``) into JSON-like data."""
    current = data
    for part in dotted.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and part.lstrip("-").isdigit()
            and -len(current) <= int(part) < len(current)
        ):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def check_expectation(session: Session, dotted: str, expected: Expected) -> str | None:
    """Return why the session does not meet one expectation, or None when it does."""
    actual = resolve_path(session.model_dump(mode="json"), dotted)
    if actual is _MISSING:
        return f"the session has no '{dotted}'"
    if isinstance(expected, RangeExpectation):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return f"{dotted} is {actual!r}, not a number"
        if expected.min is not None and actual < expected.min:
            return f"{dotted} is {actual}, below {expected.min}"
        if expected.max is not None and actual > expected.max:
            return f"{dotted} is {actual}, above {expected.max}"
        return None
    if isinstance(expected, list):
        return None if actual in expected else f"{dotted} is {actual!r}, not one of {expected!r}"
    return None if actual == expected else f"{dotted} is {actual!r}, expected {expected!r}"


# A press that starts background work -> the wait condition for its end, and a timeout. The
# journal records the press, not the waiting, so the export adds it.
WAIT_AFTER_PRESS: dict[str, tuple[str, int]] = {
    "check-dataset": ("dataset-checked", 300),
    "distill-run": ("distill-finished", 600),
    "grader-test": ("grader-tested", 300),
    "dryrun-run": ("dryrun-finished", 600),
    "start-training": ("training-finished", 3600),
    "score-checkpoints": ("checkpoints-scored", 600),
    "deploy-model": ("deployed", 300),
    "deploy-send": ("model-answered", 120),
    "run-grader-eval": ("evaluation-graded", 600),
}


def export_replay(session: Session) -> str:
    """A replay that, run with ``--replay``, makes the same decisions in a new session.

    It starts like the session started (its journal's ``session`` entry), repeats every
    journaled action, and ends with expectations on the step it stopped at and the task
    choices, so a replay that drifted from the original fails instead of passing silently. A
    session that was closed and resumed, any number of times, exports as one new session: the
    journal runs on from each resume, so the whole of it reproduces the session as it is now.
    """
    start: dict[str, Any] = {"name": session.name}
    actions: list[dict[str, Any]] = []
    current: str | None = None
    for entry in session.journal:
        if "session" in entry.action:
            start = dict(entry.action["session"])
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
        wait = WAIT_AFTER_PRESS.get(str(action.get("press")))
        if wait is not None:
            actions.append({"wait": {"for": wait[0], "timeout": wait[1]}})
    expect: dict[str, Any] = {
        "step": None,
        "task.method": None,
        "task.backend": None,
        "task.base_model": None,
    }
    dumped = session.model_dump(mode="json")
    for key in expect:
        expect[key] = resolve_path(dumped, key)
    actions.append({"expect": expect})
    document = {"version": REPLAY_VERSION, "session": start, "actions": actions}
    header = (
        f"# Replay exported from ftwizard session '{session.name}' ({session.id}).\n"
        "# Run it with: ftwizard --replay THIS_FILE\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
