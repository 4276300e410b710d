"""The fine-tuning fake's request checks and metric curves (a mixin of
:class:`~tests.fakes.openai_tuning.FineTuningSim`, which holds the files and the grader check)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.http_server import FakeResponse

_METHODS = ("supervised", "dpo", "reinforcement")


def step_metrics(method: str, step: int, with_validation: bool) -> dict[str, float]:
    """The metrics a job logs at ``step``."""
    # Deterministic curves that improve with the step, so tests can tell points apart.
    if method == "reinforcement":
        reward = round(min(1.0, 0.2 + 0.1 * step), 4)
        data: dict[str, float] = {"train_mean_reward": reward}
        if with_validation:
            data["full_valid_mean_reward"] = round(min(1.0, 0.15 + 0.1 * step), 4)
        return data
    loss = round(2.0 / (1 + 0.5 * step), 4)
    data = {"train_loss": loss, "train_mean_token_accuracy": round(1 - loss / 3, 4)}
    if with_validation:
        data["valid_loss"] = round(loss * 1.1, 4)
        data["valid_mean_token_accuracy"] = round(1 - loss * 1.1 / 3, 4)
    return data


def hyper_problem(kind: str, hyper: dict[str, Any]) -> str | None:
    """What OpenAI would reject in a method's hyperparameters, or None."""
    ranges: dict[str, tuple[float, float, bool]] = {
        "n_epochs": (1, 50, False),
        "batch_size": (1, 256, False),
        "learning_rate_multiplier": (0, float("inf"), True),
        "beta": (0, 2, True),
        "compute_multiplier": (0.00001, 10, True),
        "eval_interval": (1, float("inf"), False),
        "eval_samples": (1, float("inf"), False),
    }
    allowed = {
        "supervised": {"n_epochs", "batch_size", "learning_rate_multiplier"},
        "dpo": {"n_epochs", "batch_size", "learning_rate_multiplier", "beta"},
        "reinforcement": set(ranges) - {"beta"} | {"reasoning_effort"},
    }[kind]
    for name, value in hyper.items():
        if name not in allowed:
            return f"Unknown hyperparameter for {kind}: {name!r}."
        if name == "reasoning_effort":
            if value not in ("default", "low", "medium", "high"):
                return f"Invalid reasoning_effort: {value!r}."
            continue
        if value == "auto":
            continue
        low, high, exclusive = ranges[name]
        if not isinstance(value, int | float) or (value <= low if exclusive else value < low):
            return f"{name} out of range: {value!r}."
        if value > high:
            return f"{name} out of range: {value!r}."
    return None


class JobChecks:
    """Validate a job create body the way OpenAI does."""

    files: dict[str, Any]
    grader_check: Any
    clock: float
    file_processing_s: float

    if TYPE_CHECKING:

        def _invalid(self, message: str, param: str | None = None) -> FakeResponse: ...

    def _validate_job(self, body: Any) -> FakeResponse | None:
        if not isinstance(body, dict):
            return self._invalid("The request body must be a JSON object.")
        for name in ("model", "training_file"):
            if not isinstance(body.get(name), str):
                return self._invalid(f"Missing required parameter: '{name}'.", name)
        for name in ("training_file", "validation_file"):
            file_id = body.get(name)
            if file_id is None:
                continue
            f = self.files.get(file_id)
            if f is None:
                return self._invalid(f"File {file_id} does not exist.", name)
            if f.purpose != "fine-tune":
                return self._invalid(f"File {file_id} has purpose {f.purpose!r}.", name)
            if f.status(self.clock, self.file_processing_s) != "processed":
                return self._invalid(f"File {file_id} is not ready ({f.status_details}).", name)
        suffix = body.get("suffix")
        if suffix is not None and not (isinstance(suffix, str) and 1 <= len(suffix) <= 64):
            return self._invalid("suffix must be 1 to 64 characters.", "suffix")
        metadata = body.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict) or len(metadata) > 16:
                return self._invalid("metadata must be an object of at most 16 pairs.", "metadata")
            for k, v in metadata.items():
                if len(k) > 64 or not isinstance(v, str) or len(v) > 512:
                    return self._invalid("metadata keys <= 64, values <= 512 chars.", "metadata")
        method = body.get("method")
        if method is None:
            return None
        kind = method.get("type") if isinstance(method, dict) else None
        if kind not in _METHODS:
            return self._invalid(f"Invalid method.type: {kind!r}.", "method.type")
        section = method.get(kind) or {}
        problem = hyper_problem(kind, section.get("hyperparameters") or {})
        if problem:
            return self._invalid(problem, f"method.{kind}.hyperparameters")
        if kind == "reinforcement":
            if body.get("validation_file") is None:
                return self._invalid(
                    "Reinforcement fine-tuning requires a validation file.", "validation_file"
                )
            grader_problem = self.grader_check(section.get("grader")) if self.grader_check else None
            if grader_problem:
                return self._invalid(grader_problem, "method.reinforcement.grader")
        return None
