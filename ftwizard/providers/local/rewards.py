"""The RFT reward as a TRL reward function: from a grader spec file or a Python callable path."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftwizard.errors import InputError
from ftwizard.providers.local.config import RewardConfig

RewardFunc = Callable[..., Any]


def load_reward_function(reward: RewardConfig) -> RewardFunc:
    """A callable ``f(prompts=, completions=, **columns) -> list[float]`` for GRPOTrainer.

    A grader file goes through ``ftwizard.graders`` (the same spec the dry run and the final
    evaluation use); a function path is imported as it is.
    """
    if reward.grader_file is not None:
        from ftwizard.graders.export_trl import make_reward_func
        from ftwizard.graders.loading import load_grader

        return make_reward_func(load_grader(reward.grader_file))
    assert reward.function is not None  # guaranteed by RewardConfig's validator
    return import_callable(reward.function)


def import_callable(target: str) -> RewardFunc:
    """The object named by ``module:function`` or ``path/to/file.py:function``."""
    module_name, _, attr = target.rpartition(":")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise InputError("reward file not found", path=path, field="reward.function")
            spec = importlib.util.spec_from_file_location(f"ftwizard_reward_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise InputError("cannot import this file", path=path, field="reward.function")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"cannot import '{module_name}': {exc}", field="reward.function") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError(f"'{attr}' is not a function in '{module_name}'", field="reward.function")
    return func


__all__ = ["RewardFunc", "import_callable", "load_reward_function"]
