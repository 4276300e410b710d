"""The organisation's OpenAI fine-tuning jobs with the date their base model shuts down."""

from __future__ import annotations

from pydantic import BaseModel

from ftwizard.migrate.openai_reader import OpenAIJobReader
from ftwizard.providers.openai.shutdown import parse_models, shutdown_date


class JobRow(BaseModel):
    """One line of ``import openai-jobs --list``."""

    job: str
    method: str
    status: str
    base_model: str
    fine_tuned_model: str | None
    shutdown: str | None
    # Where the date comes from: "models" (GET /v1/models), "table" (the dated table) or None.
    shutdown_source: str | None


async def list_jobs(
    *, base_url: str | None = None, reader: OpenAIJobReader | None = None
) -> list[JobRow]:
    """Every job (newest first) with its base model's shutdown date."""
    own = reader is None
    reader = reader or OpenAIJobReader(base_url=base_url)
    try:
        jobs = await reader.jobs()
        served = parse_models(await reader.models())
    finally:
        if own:
            await reader.aclose()
    rows = []
    for job in jobs:
        from_models = served.get(job.base_model)
        when = shutdown_date(job.base_model, served)
        source = "models" if from_models is not None else ("table" if when else None)
        rows.append(
            JobRow(
                job=job.id,
                method=job.method,
                status=job.status,
                base_model=job.base_model,
                fine_tuned_model=job.fine_tuned_model,
                shutdown=when.isoformat() if when else None,
                shutdown_source=source,
            )
        )
    return rows


__all__ = ["JobRow", "list_jobs"]
