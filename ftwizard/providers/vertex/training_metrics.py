"""A Vertex tuning job's loss curves, read from its experiment's TensorBoard.

Vertex keeps the curves out of the job resource: the job names an experiment (a Vertex ML
Metadata context), whose ``backing_tensorboard_resource`` is the TensorBoard that holds one
run with the scalar series ``/train_total_loss``, ``/train_fraction_of_correct_next_step_preds``
and, with a validation set, ``/eval_total_loss`` and ``/eval_fraction_of_correct_next_step_preds``
(research notes, section 1). This module walks that chain with google-cloud-aiplatform's GAPIC
clients over REST: context -> TensorBoard runs -> time series -> their data.

The clients are synchronous; callers run :func:`read_experiment_metrics` in a thread. Nothing
here makes up a number: a series that is missing stays ``None`` in every point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ftwizard.providers.training import MetricPoint

BACKING_TENSORBOARD_KEY = "backing_tensorboard_resource"
# TensorBoard tags of Gemini tuning jobs -> MetricPoint fields.
SERIES_FIELDS: dict[str, str] = {
    "train_total_loss": "train_loss",
    "eval_total_loss": "valid_loss",
    "train_fraction_of_correct_next_step_preds": "train_accuracy",
    "eval_fraction_of_correct_next_step_preds": "valid_accuracy",
}
# ReadTensorboardTimeSeriesData downsamples to this many points (the API's maximum).
_MAX_POINTS = 10_000
_MAX_RUNS = 20


def api_endpoint(location: str, base_url: str | None) -> str:
    """The aiplatform endpoint: the base URL override, else the regional service host."""
    if base_url:
        return base_url.rstrip("/")
    return f"{location}-aiplatform.googleapis.com"


def _clients(credentials: Any, endpoint: str) -> tuple[Any, Any]:
    from google.api_core.client_options import ClientOptions
    from google.cloud.aiplatform_v1.services.metadata_service import MetadataServiceClient
    from google.cloud.aiplatform_v1.services.tensorboard_service import (
        TensorboardServiceClient,
    )

    options = ClientOptions(api_endpoint=endpoint)
    # REST, not gRPC: it works through HTTP proxies and against the fake on 127.0.0.1.
    metadata = MetadataServiceClient(
        credentials=credentials, transport="rest", client_options=options
    )
    tensorboard = TensorboardServiceClient(
        credentials=credentials, transport="rest", client_options=options
    )
    return metadata, tensorboard


def merge_series(series: Iterable[tuple[str, Iterable[tuple[int, float]]]]) -> list[MetricPoint]:
    """Points per step from ``(tag, [(step, value), ...])`` pairs, ordered by step.

    Tags are matched without their leading ``/``; unknown tags are kept in ``raw`` only.
    """
    by_step: dict[int, dict[str, float]] = {}
    for tag, values in series:
        name = tag.lstrip("/")
        for step, value in values:
            if math.isfinite(value):
                by_step.setdefault(step, {})[name] = value
    points = []
    for step in sorted(by_step):
        raw = by_step[step]
        fields = {SERIES_FIELDS[k]: v for k, v in raw.items() if k in SERIES_FIELDS}
        points.append(MetricPoint(step=step, raw=dict(raw), **fields))
    return points


def read_experiment_metrics(
    experiment: str, *, credentials: Any, endpoint: str
) -> list[MetricPoint]:
    """Every scalar point of the tuning job's experiment, by step (blocking; run it in a thread).

    Returns ``[]`` when the experiment has no TensorBoard (yet). Raises google-api-core errors
    for failed calls; the caller retries them.
    """
    metadata, tensorboard = _clients(credentials, endpoint)
    try:
        context = metadata.get_context(name=experiment)
        backing = dict(context.metadata or {}).get(BACKING_TENSORBOARD_KEY)
        if not backing:
            return []
        experiment_id = experiment.rsplit("/", 1)[-1]
        series: list[tuple[str, list[tuple[int, float]]]] = []
        runs = tensorboard.list_tensorboard_runs(parent=f"{backing}/experiments/{experiment_id}")
        for count, run in enumerate(runs):
            if count >= _MAX_RUNS:
                break
            for ts in tensorboard.list_tensorboard_time_series(parent=run.name):
                data = tensorboard.read_tensorboard_time_series_data(
                    request={"tensorboard_time_series": ts.name, "max_data_points": _MAX_POINTS}
                )
                values = [
                    (int(p.step), float(p.scalar.value))
                    for p in data.time_series_data.values
                    if "scalar" in p
                ]
                series.append((ts.display_name, values))
        return merge_series(series)
    finally:
        metadata.transport.close()
        tensorboard.transport.close()


__all__ = [
    "BACKING_TENSORBOARD_KEY",
    "SERIES_FIELDS",
    "api_endpoint",
    "merge_series",
    "read_experiment_metrics",
]
