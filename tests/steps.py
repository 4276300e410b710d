"""Sessions prepared up to a given step, shared by the screen tests and the snapshots."""

from __future__ import annotations

import json
from pathlib import Path

from ftwizard.datasets.pipeline import prepare
from ftwizard.flow import start_session
from ftwizard.graders.workbench import check_spec, spec_digest
from ftwizard.session import Backend, GraderTest, Method, Session, StepId
from ftwizard.store import SessionStore

COLOURS = ["red", "blue", "green"]
EXACT_GRADER = (
    "type: string_check\nname: exact\ninput: '{{sample.output_text}}'\n"
    "reference: '{{item.reference_answer}}'\noperation: eq\n"
)


def colour_rows(n: int = 15) -> list[dict[str, object]]:
    """Chat SFT rows whose answers are colour words."""
    return [
        {
            "messages": [
                {"role": "user", "content": f"Which colour is item {i}?"},
                {"role": "assistant", "content": COLOURS[i % 3]},
            ]
        }
        for i in range(n)
    ]


def session_with_data(
    store: SessionStore,
    data_dir: Path,
    *,
    backend: Backend,
    method: Method = Method.sft,
    rows: list[dict[str, object]] | None = None,
) -> Session:
    """A session whose task and dataset steps are done (data written to ``data_dir``)."""
    data = data_dir / "data.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows or colour_rows()) + "\n")
    session = start_session(store, "steps", backend=backend, method=method)
    session.dataset.choice.train_path = str(data)
    session.dataset.choice.convert = method is not Method.sft
    if method is Method.rft:
        session.dataset.choice.split_val = "0.2"  # RFT on OpenAI needs a validation file
    assert session.task.backend is not None
    session.dataset.result, _ = prepare(
        session.dataset.choice,
        backend=session.task.backend,
        method=method,
        model=session.task.base_model,
        out_dir=store.artifacts_dir(session.id) / "dataset",
    )
    session.step = StepId.grader
    store.save(session)
    return session


def confirm_grader(store: SessionStore, session: Session, spec_text: str = EXACT_GRADER) -> None:
    """Give the session a grader that was tested and confirmed."""
    session.grader.style = "builtin"
    session.grader.spec_text = spec_text
    check_spec(spec_text, out_dir=store.artifacts_dir(session.id), data_path=None)
    digest = spec_digest(spec_text)
    session.grader.test = GraderTest(
        spec_digest=digest, source="dataset", source_label="x", rows=[], mean=1.0, n_errors=0
    )
    session.grader.confirmed_digest = digest
    session.step = StepId.dryrun
    store.save(session)


def walked_session(store: SessionStore, folder: Path, step: StepId) -> Session:
    """A session that did every step (OpenAI SFT, trained, deployed, evaluated), standing on
    ``step``; its files are named relative to ``folder``, the working directory of the caller,
    so screens show the same paths wherever the test runs."""
    from datetime import UTC, datetime

    from tests.test_ledger import finished_session

    session = finished_session(store, folder, "walk", finished=datetime(2026, 11, 2, 9, tzinfo=UTC))
    result = session.dataset.result
    assert result is not None
    session.dataset.choice.train_path = "walk/train.jsonl"
    result.training_file = "walk/train.jsonl"
    result.validation_file = "walk/valid.jsonl"
    session.evaluation.held_out_file = "walk/valid.jsonl"
    session.step = step
    store.save(session)
    return session
