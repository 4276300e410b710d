"""The evaluate screen says which weights it evaluates, when the model in use is not the best
checkpoint, and when the files changed after an evaluation; the comparison records the
weights it ran on."""

from __future__ import annotations

from pathlib import Path

from ftwizard.app import make_app
from ftwizard.identity import local_identity, sha256_file
from ftwizard.providers.training import CheckpointInfo
from ftwizard.session import CheckpointEval, CheckpointScore
from ftwizard.store import SessionStore
from tests.evaluate.screen_setup import SIZE, press, session_at_evaluate, text_of
from tests.fakes.openai_server import FakeOpenAIServer


async def test_the_evaluation_records_the_weights_and_flags_a_later_change(
    store: SessionStore,
    tmp_path: Path,
    base_server: FakeOpenAIServer,
    tuned_server: FakeOpenAIServer,
) -> None:
    session_id = session_at_evaluate(store, tmp_path, tuned_server.v1_url, judges=[])
    session = store.load(session_id)
    folder = tmp_path / "checkpoint-8"
    folder.mkdir()
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(b"step 8 weights")
    session.deployment.identity = local_identity(folder, model=session.deployment.model)
    session.training.checkpoints = [
        CheckpointInfo(id=f"step-{s}", name=str(tmp_path / f"checkpoint-{s}"), step=s).model_dump(
            mode="json"
        )
        for s in (4, 8)
    ]
    session.training.chosen_checkpoint = str(tmp_path / "checkpoint-4")
    session.training.chosen_by = "hand"
    session.training.checkpoint_eval = CheckpointEval(
        grader_digest="g",
        held_out_file="h",
        rows=10,
        scores=[
            CheckpointScore(id="step-4", step=4, score=0.3, n=10),
            CheckpointScore(id="step-8", step=8, score=0.9, n=10),
        ],
    )
    store.save(session)
    digest = sha256_file(weights)
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        models = text_of(app, "#eval-models")
        assert f"Weights sha256 {digest[:12]}" in models
        assert "is not the best checkpoint: step-8 scored 0.900" in models
        await press(app, pilot, "run-grader-eval")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session is not None
        identity = app.session.evaluation.grader_identity
        assert identity is not None and identity.sha256 == digest
    # The adapter is retrained in place after the evaluation: reopening the session says so.
    weights.write_bytes(b"retrained")
    app = make_app(store=store, session_id=session_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        models = text_of(app, "#eval-models")
        assert "CHANGED: deployed model: the adapter weights" in models
        assert "CHANGED: grader comparison: the adapter weights" in models
