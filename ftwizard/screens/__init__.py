"""ftwizard's screens, and which step each one serves.

A step appears as reachable in the sidebar only when its screen is registered in
:data:`STEP_SCREENS`; steps whose screens have not been built are shown as not available.
"""

from __future__ import annotations

from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.screens.deploy import DeployScreen
from ftwizard.screens.dryrun.screen import DryRunScreen
from ftwizard.screens.evaluate.screen import EvaluateScreen
from ftwizard.screens.grader.screen import GraderScreen
from ftwizard.screens.step import StepScreen
from ftwizard.screens.task import TaskScreen
from ftwizard.screens.training.screen import TrainingScreen
from ftwizard.session import StepId

STEP_SCREENS: dict[StepId, type[StepScreen]] = {
    StepId.task: TaskScreen,
    StepId.dataset: DatasetScreen,
    StepId.grader: GraderScreen,
    StepId.dryrun: DryRunScreen,
    StepId.training: TrainingScreen,
    StepId.deploy: DeployScreen,
    StepId.evaluate: EvaluateScreen,
}
