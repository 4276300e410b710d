"""The footer keys of each step's main actions, in one place.

Each key presses one of the step's buttons (through ``StepScreen.action_press``), so a key does
exactly what a click does, journal included, and says why when the button is not offered.
They are ctrl keys that no text box or editor takes for itself (Input and TextArea use ctrl+a,
c, d, e, k, u, v, w, x, y, z), so they work wherever the focus is.
"""

from __future__ import annotations

from textual.binding import Binding

from ftwizard.session import StepId


def _press(key: str, button_id: str, description: str) -> Binding:
    return Binding(key, f"press('{button_id}')", description)


# ctrl+r runs the step's main action; ctrl+o accepts its result (OK); ctrl+l checks a spec;
# ctrl+t goes to the step's second action.
STEP_KEYS: dict[StepId, list[Binding]] = {
    StepId.dataset: [_press("ctrl+r", "check-dataset", "Check")],
    StepId.grader: [
        _press("ctrl+r", "grader-test", "Test"),
        _press("ctrl+l", "grader-check", "Check spec"),
        _press("ctrl+o", "grader-looks-right", "Looks right"),
    ],
    StepId.dryrun: [
        _press("ctrl+r", "dryrun-run", "Run"),
        _press("ctrl+o", "dryrun-proceed", "Go on"),
    ],
    StepId.training: [
        _press("ctrl+r", "start-training", "Start"),
        _press("ctrl+o", "choose-best", "Choose best"),
    ],
    StepId.deploy: [
        _press("ctrl+r", "deploy-model", "Deploy"),
        Binding("ctrl+t", "focus_control('deploy-prompt')", "Try it"),
    ],
    StepId.evaluate: [
        _press("ctrl+r", "run-grader-eval", "Compare"),
        _press("ctrl+t", "run-ab", "A/B"),
    ],
}

# What an editor's border says on each step: how to leave it, and the keys that act on it.
EDITOR_HINTS: dict[StepId, str] = {
    StepId.grader: "esc leave · ctrl+l check · ctrl+r test",
}
