"""Choosing by evidence, the advice on the length of training, the identity of weights
(symlinks, files changed after evaluation), and hosted checkpoints scored on the fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.evaluate.grader_comparison import compare_scores
from ftwizard.evaluate.session import record_grader_comparison
from ftwizard.graders.results import GradeResult
from ftwizard.identity import identity_change, identity_flags, local_identity, sha256_file
from ftwizard.providers.training import CheckpointInfo
from ftwizard.report.build import write_report
from ftwizard.session import Backend, CheckpointEval, CheckpointScore, Session
from ftwizard.store import SessionStore
from ftwizard.training.choice import best_choice, choice_note, choose_best, training_advice
from ftwizard.training.results import choose_checkpoint, training_summary
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.vertex_server import FakeVertexServer
from tests.fakes.vertex_tuning import SimCheckpoint
from tests.tiny_local import Tickets
from tests.training.sessions import openai_provider, session_at_training, train_to_end
from tests.training.vertex_jobs import vertex_provider


def with_checkpoints(
    store: SessionStore,
    tickets: Tickets,
    scores: list[float] | None,
    losses: list[float] = (0.9, 0.5, 0.4),  # type: ignore[assignment]
) -> Session:
    """An OpenAI session with three checkpoints (steps 10, 20, 30), scored or not."""
    session = session_at_training(store, tickets, backend=Backend.openai)
    session.training.status = "succeeded"
    session.training.fine_tuned_model = "ft:m:org::j:final"
    session.training.checkpoints = [
        CheckpointInfo(
            id=f"ck{step}",
            name=f"ft:m:org::j:ckpt-step-{step}",
            step=step,
            metrics={"valid_loss": loss},
        ).model_dump(mode="json")
        for step, loss in zip((10, 20, 30), losses, strict=True)
    ]
    if scores is not None:
        session.training.checkpoint_eval = CheckpointEval(
            grader_digest="g",
            held_out_file=str(tickets.valid),
            rows=40,
            scores=[
                CheckpointScore(id=f"ck{step}", step=step, score=score, n=40)
                for step, score in zip((10, 20, 30), scores, strict=True)
            ],
        )
    return session


def test_best_is_the_grader_score_with_ties_to_the_earlier_step(
    store: SessionStore, tickets: Tickets
) -> None:
    session = with_checkpoints(store, tickets, [0.5, 0.8, 0.8])
    best = best_choice(session)
    assert best is not None and (best.checkpoint.id, best.by) == ("ck20", "grader score")
    # Validation loss alone would have picked the last one.
    unscored = with_checkpoints(store, tickets, None)
    fallback = best_choice(unscored)
    assert fallback is not None and (fallback.checkpoint.id, fallback.by) == ("ck30", "valid_loss")
    choose_best(unscored)
    assert unscored.training.chosen_by == "valid_loss"
    choose_best(session)
    assert session.training.chosen_checkpoint == "ft:m:org::j:ckpt-step-20"
    assert session.training.chosen_by == "grader score"
    assert choice_note(session) is None


def test_a_choice_other_than_the_best_says_so(store: SessionStore, tickets: Tickets) -> None:
    session = with_checkpoints(store, tickets, [0.2, 0.9, 0.6])
    # Nothing chosen: the final model (the last checkpoint) is in use.
    note = choice_note(session)
    assert note is not None and "ck30" in note and "ck20 scored 0.900" in note
    choose_checkpoint(session, "ck10")
    assert session.training.chosen_by == "hand"
    summary = training_summary(session)
    assert summary["best_checkpoint"] == "ck20" and summary["best_by"] == "grader score"
    assert "ck10, grader score 0.200" in summary["choice_note"]


def test_a_rising_score_at_the_end_suggests_more_epochs(
    store: SessionStore, tickets: Tickets
) -> None:
    session = with_checkpoints(store, tickets, [0.1, 0.4, 0.77], losses=[0.9, 0.6, 0.58])
    advice = training_advice(session)
    assert any("more epochs may help" in a and "0.77" in a and "ck10 0.10" in a for a in advice)
    assert not any("still falling" in a for a in advice)  # 0.60 -> 0.58 is under 2 %
    # A perfect last score has nothing left to gain.
    perfect = with_checkpoints(store, tickets, [0.34, 0.9, 1.0], losses=[0.9, 0.6, 0.58])
    assert training_advice(perfect) == []


def test_an_early_best_that_later_falls_suggests_choosing_it(
    store: SessionStore, tickets: Tickets
) -> None:
    session = with_checkpoints(store, tickets, [0.6, 0.9, 0.7], losses=[0.9, 0.8, 0.85])
    advice = training_advice(session)
    assert advice == [
        "The best checkpoint is an early one: ck20 scores 0.90 and later ones fall to 0.70 "
        "(ck10 0.60, ck20 0.90, ck30 0.70). Choose ck20."
    ]


def test_validation_loss_still_falling_at_the_end_suggests_more_epochs(
    store: SessionStore, tickets: Tickets
) -> None:
    session = with_checkpoints(store, tickets, None)
    session.training.metrics = [
        {"step": 10, "valid_loss": 0.9},
        {"step": 20, "valid_loss": 0.6},
        {"step": 30, "valid_loss": 0.45},
    ]
    assert training_advice(session) == [
        "Validation loss was still falling at the end (0.6000 -> 0.4500 at step 30): more "
        "epochs may help."
    ]


def adapter(folder: Path, payload: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(payload)
    return folder


def test_a_symlinked_checkpoint_folder_is_hashed_where_it_points(tmp_path: Path) -> None:
    first = adapter(tmp_path / "checkpoints" / "checkpoint-4", b"weights of step 4")
    second = adapter(tmp_path / "checkpoints" / "checkpoint-8", b"weights of step 8")
    best = tmp_path / "best"
    best.symlink_to(first, target_is_directory=True)
    identity = local_identity(best)
    assert identity.source == str(best)
    assert identity.path == str(first.resolve() / "adapter_model.safetensors")
    assert identity.sha256 == sha256_file(first / "adapter_model.safetensors")
    assert identity_change(identity) is None
    # The link now points at other weights: what was evaluated is no longer what it names.
    best.unlink()
    best.symlink_to(second, target_is_directory=True)
    change = identity_change(identity)
    assert change is not None and "now points at" in change and "checkpoint-8" in change
    # The same bytes behind another path are the same weights.
    best.unlink()
    copy = adapter(tmp_path / "copy", b"weights of step 4")
    best.symlink_to(copy, target_is_directory=True)
    assert identity_change(identity) is None


def grader_result(score: float) -> GradeResult:
    return GradeResult(score=score)


def test_an_adapter_changed_after_evaluation_is_flagged_in_show(
    store: SessionStore, tickets: Tickets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets, backend=Backend.local)
    folder = adapter(tmp_path / "checkpoint-12", b"trained weights")
    session.deployment.model = "openai:ftwizard-tuned"
    session.deployment.identity = local_identity(folder, model="openai:ftwizard-tuned")
    comparison = compare_scores(
        ["a", "b"], [grader_result(0), grader_result(0)], [grader_result(1), grader_result(1)]
    )
    record_grader_comparison(store, session, str(tickets.valid), comparison)
    store.save(session)
    report = json.loads(Path(session.evaluation.grader_report_file or "").read_text())
    digest = sha256_file(folder / "adapter_model.safetensors")
    assert report["tuned_identity"]["sha256"] == digest
    assert session.evaluation.grader_identity is not None
    assert session.evaluation.grader_identity.sha256 == digest
    assert identity_flags(session) == []
    assert main(["show", session.id]) == 0
    out = capsys.readouterr().out
    assert f"graded      sha256 {digest[:12]}" in out and "CHANGED" not in out

    (folder / "adapter_model.safetensors").write_bytes(b"retrained weights")
    flags = identity_flags(store.load(session.id))
    assert len(flags) == 2 and all("changed since they were evaluated" in f for f in flags)
    assert main(["show", session.id]) == 0
    out = capsys.readouterr().out
    assert "CHANGED     deployed model: the adapter weights" in out
    assert "CHANGED     grader comparison:" in out
    markdown = Path(write_report(store, session.id).markdown).read_text()
    assert f"| grader comparison | `{digest[:12]}` |" in markdown
    assert "- **CHANGED**: deployed model: the adapter weights" in markdown


def test_the_report_plots_the_score_by_checkpoint(store: SessionStore, tickets: Tickets) -> None:
    session = with_checkpoints(store, tickets, [0.1, 0.4, 0.77])
    store.save(session)
    files = write_report(store, session.id)
    drawn = {p.name: p.file for p in files.plots if p.file}
    assert "checkpoint-scores" in drawn
    assert Path(drawn["checkpoint-scores"] or "").read_bytes().startswith(b"\x89PNG")
    markdown = Path(files.markdown).read_text()
    assert "| ck30 | 30 | 0.770 |" in markdown
    assert "Best checkpoint: **ck30** by grader score (0.77)." in markdown
    assert "more epochs may help" in markdown


def labels_by_prompt(tickets: Tickets) -> dict[str, str]:
    """Each held-out row's user turn and the label the grader expects for it, in file order."""
    return {r["messages"][1]["content"]: r["messages"][2]["content"] for r in tickets.valid_rows()}


def ckpt_reply(labels: dict[str, str]) -> Any:
    """Checkpoint step 2 answers wrong; the later ones give the right label."""

    def reply(body: dict[str, Any]) -> str:
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        return "wrong" if body["model"].endswith("ckpt-step-2") else labels[user]

    return reply


def test_openai_checkpoint_models_are_scored_on_the_fake(
    store: SessionStore,
    tickets: Tickets,
    openai_env: FakeOpenAIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = session_at_training(store, tickets, backend=Backend.openai)
    provider = openai_provider(session, store)
    train_to_end(session, store, provider, openai_env.tuning.run_to_end)
    assert len(session.training.checkpoints) == 3
    # The fake serves each checkpoint model, as OpenAI does once the checkpoint exists.
    assert openai_env.models is not None
    openai_env.models += [c["name"] for c in session.training.checkpoints]
    openai_env.reply_fn = ckpt_reply(labels_by_prompt(tickets))
    assert main(["checkpoints", session.id, "--eval", "--rows", "12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    got = [(r["step"], r["score"], r["model"].rsplit(":", 1)[-1]) for r in data["checkpoints"]]
    assert got == [(2, 0.0, "ckpt-step-2"), (4, 1.0, "ckpt-step-4"), (6, 1.0, "ckpt-step-6")]
    assert all(r["sha256"] is None and r["n"] == 12 for r in data["checkpoints"])
    assert data["best"]["step"] == 4  # tied with step 6: the earlier one
    called = {b["model"] for b in openai_env.chat_bodies()}
    assert {r["model"].removeprefix("openai:") for r in data["checkpoints"]} <= called


VERTEX_ROWS = 12


def vertex_ckpt_reply(labels: dict[str, str]) -> Any:
    """Checkpoint 1 answers wrong, checkpoint 2 right, checkpoint 3 right on every other row
    (in file order): 0.0, 1.0 and 0.5 on an even number of rows, the best one in the middle."""
    order = {prompt: i for i, prompt in enumerate(labels)}

    def reply(checkpoint: SimCheckpoint, body: dict[str, Any]) -> str:
        user = body["contents"][-1]["parts"][-1]["text"]
        right = {1: False, 2: True, 3: order[user] % 2 == 0}[checkpoint.epoch]
        return labels[user] if right else "wrong"

    return reply


def test_vertex_checkpoint_endpoints_are_scored_on_the_fake(
    store: SessionStore,
    tickets: Tickets,
    vertex_env: FakeVertexServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = session_at_training(store, tickets, backend=Backend.vertex, convert=True)
    train_to_end(
        session, store, vertex_provider(vertex_env), lambda: vertex_env.tuning.advance(100_000)
    )
    (job,) = vertex_env.tuning.jobs.values()
    assert job.state == "JOB_STATE_SUCCEEDED" and len(job.checkpoints) == 3
    labels = labels_by_prompt(tickets)
    vertex_env.tuning.checkpoint_reply_fn = vertex_ckpt_reply(labels)

    # Checkpoint endpoints are billed: nothing is called without --allow-spend.
    assert main(["checkpoints", session.id, "--eval", "--rows", str(VERTEX_ROWS)]) == 2
    assert "--allow-spend" in capsys.readouterr().err and vertex_env.generate_requests() == []

    argv = ["checkpoints", session.id, "--eval", "--rows", str(VERTEX_ROWS), "--allow-spend"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    got = [(r["id"], r["step"], r["epoch"], r["model"], r["score"]) for r in data["checkpoints"]]
    assert got == [
        (c.checkpoint_id, c.step, float(c.epoch), f"vertex:{c.endpoint}", score)
        for c, score in zip(job.checkpoints, (0.0, 1.0, 0.5), strict=True)
    ]
    assert all(r["n"] == VERTEX_ROWS and r["sha256"] is None for r in data["checkpoints"])
    assert data["best"]["id"] == "2" and data["best"]["by"] == "grader score"

    # Each checkpoint answered every row on its own endpoint, in Gemini's request shape: the
    # endpoint in the path, the row's system turn as systemInstruction, its user turn as the
    # last user content, a bearer token.
    prompts = set(list(labels)[:VERTEX_ROWS])
    system = tickets.valid_rows()[0]["messages"][0]["content"]
    requests = vertex_env.generate_requests()
    assert len(requests) == 3 * VERTEX_ROWS
    for checkpoint in job.checkpoints:
        hits = [r for r in requests if r.path == f"/v1/{checkpoint.endpoint}:generateContent"]
        assert len(hits) == VERTEX_ROWS
        bodies = [r.json() for r in hits]
        assert all(r.bearer_token() == vertex_env.token for r in hits)
        assert all("model" not in b and b["contents"][-1]["role"] == "user" for b in bodies)
        assert {b["contents"][-1]["parts"][-1]["text"] for b in bodies} == prompts
        assert all(b["systemInstruction"]["parts"] == [{"text": system}] for b in bodies)

    # Choosing the best deploys checkpoint 2's endpoint, not the final model's.
    assert main(["checkpoints", session.id, "--choose-best"]) == 0
    capsys.readouterr()
    chosen = store.load(session.id).training
    assert chosen.chosen_checkpoint == job.checkpoints[1].endpoint
    assert chosen.chosen_by == "grader score"


def test_a_sharded_model_is_hashed_with_its_shards(tmp_path: Path) -> None:
    folder = tmp_path / "merged"
    folder.mkdir()
    index = {
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
        }
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"first half")
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"second half")
    identity = local_identity(folder)
    assert identity.path and identity.path.endswith("model.safetensors.index.json")
    assert identity_change(identity) is None
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"second half, retrained")
    change = identity_change(identity)
    assert change is not None and "changed since they were evaluated" in change


def test_a_deleted_checkpoint_folder_is_reported_and_the_run_exits_1(
    store: SessionStore, tickets: Tickets, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = session_at_training(store, tickets, backend=Backend.local)
    session.training.status = "succeeded"
    session.training.checkpoints = [
        CheckpointInfo(
            id="step-5", name=str(tmp_path / "gone" / "checkpoint-5"), step=5
        ).model_dump(mode="json")
    ]
    store.save(session)
    assert main(["checkpoints", session.id, "--eval", "--rows", "3"]) == 1
    out = capsys.readouterr().out
    assert "error: step-5: " in out and "gone/checkpoint-5: no such model folder" in out
    saved = store.load(session.id).training.checkpoint_eval
    assert saved is not None and saved.scores[0].score is None
