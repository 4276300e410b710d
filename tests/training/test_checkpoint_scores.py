"""Every checkpoint scored with the session's grader: ``ftwizard checkpoints``, choosing by
that score, resuming, the ledger lines, and the weights' digests."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ftwizard.cli import main
from ftwizard.evaluate.checkpoints import plan_scoring, score_checkpoints
from ftwizard.identity import sha256_file
from ftwizard.ledger.checkpoint_entry import CheckpointEntry
from ftwizard.ledger.store import read_lines
from ftwizard.session import Backend, Session
from ftwizard.store import SessionStore
from ftwizard.training.local import LocalTrainingProvider
from tests.tiny_local import Tickets, TrainedAdapter, accuracy
from tests.training.sessions import session_at_training

ROWS = 40


def trained_session(store: SessionStore, tickets: Tickets, ramp: TrainedAdapter) -> Session:
    """A local session whose training finished with the ramp run's checkpoints."""
    session = session_at_training(store, tickets, backend=Backend.local)
    # What the local provider reports for the run (run in its own thread: a screen test calls
    # this inside its event loop).
    provider = LocalTrainingProvider(ramp.run_dir.parent)
    with ThreadPoolExecutor(1) as pool:
        checkpoints = pool.submit(asyncio.run, provider.checkpoints(str(ramp.run_dir))).result()
    training = session.training
    training.status = "succeeded"
    training.fine_tuned_model = str(ramp.adapter_dir)
    training.run_dir = str(ramp.run_dir)
    training.checkpoints = [c.model_dump(mode="json") for c in checkpoints]
    store.save(session)
    return session


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


@pytest.mark.slow
def test_every_checkpoint_is_scored_and_the_best_is_chosen_by_its_score(
    store: SessionStore,
    tiny_model: Path,
    tickets: Tickets,
    tickets_ramp: TrainedAdapter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = trained_session(store, tickets, tickets_ramp)
    code, listed = cli_json(capsys, "checkpoints", session.id, "--json")
    assert code == 0 and [r["score"] for r in listed["checkpoints"]] == [None, None, None]

    code, data = cli_json(
        capsys, "checkpoints", session.id, "--eval", "--rows", str(ROWS), "--json"
    )
    assert code == 0
    rows = data["checkpoints"]
    assert [r["step"] for r in rows] == [4, 8, 12]
    rows_file = tickets.valid_rows()[:ROWS]
    for row in rows:
        assert set(row) >= {"id", "step", "epoch", "path", "sha256", "score", "ci95", "n"}
        # The digest is of the weights the checkpoint folder holds...
        assert row["sha256"] == sha256_file(Path(row["path"]) / "adapter_model.safetensors")
        assert row["n"] == ROWS
        # ...and the score is what that checkpoint answers on the same rows.
        assert row["score"] == pytest.approx(accuracy(row["path"], rows_file))
    scores = [r["score"] for r in rows]
    assert scores[0] < scores[-1] and len(set(scores)) > 1  # it learns over the steps
    assert data["best"]["id"] == "step-12" and data["best"]["by"] == "grader score"
    assert data["chosen"]["id"] == "step-12" and data["chosen"]["by"] == "final"

    # A line per scored checkpoint in the ledger, naming the weights it scored.
    entries = [line for line in read_lines(store) if isinstance(line, CheckpointEntry)]
    assert [(e.checkpoint, e.identity.sha256 if e.identity else None) for e in entries] == [
        (r["id"], r["sha256"]) for r in rows
    ]

    # Scoring again scores nothing again: the same grader, rows and weights.
    stamps = [s.scored_at for s in store.load(session.id).training.checkpoint_eval.scores]  # type: ignore[union-attr]
    assert main(["checkpoints", session.id, "--eval", "--rows", str(ROWS)]) == 0
    text = capsys.readouterr().out
    assert "best: step-12 by grader score" in text
    again = store.load(session.id).training.checkpoint_eval
    assert again is not None and [s.scored_at for s in again.scores] == stamps
    assert len([x for x in read_lines(store) if isinstance(x, CheckpointEntry)]) == 3

    assert main(["checkpoints", session.id, "--choose-best"]) == 0
    capsys.readouterr()
    chosen = store.load(session.id).training
    assert chosen.chosen_checkpoint == rows[-1]["path"] and chosen.chosen_by == "grader score"


@pytest.mark.slow
def test_an_interrupted_scoring_run_resumes_with_the_checkpoints_not_scored(
    store: SessionStore, tiny_model: Path, tickets: Tickets, tickets_ramp: TrainedAdapter
) -> None:
    session = trained_session(store, tickets, tickets_ramp)
    plan = plan_scoring(session, rows=10)
    assert plan.estimate.paid == [] and plan.estimate.usd == 0.0

    class Stop(Exception):
        pass

    def stop_after_first(score: Any, index: int, total: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        asyncio.run(score_checkpoints(session, store, plan, on_progress=stop_after_first))
    saved = store.load(session.id).training.checkpoint_eval
    assert saved is not None and [s.id for s in saved.scores] == ["step-4"]
    first = saved.scores[0].scored_at

    resumed = store.load(session.id)
    plan = plan_scoring(resumed, rows=10)
    assert len(plan.todo) == 3 and plan.estimate.calls == 2 * 10  # only two left to answer
    section = asyncio.run(score_checkpoints(resumed, store, plan))
    assert [s.id for s in section.scores] == ["step-4", "step-8", "step-12"]
    assert section.scores[0].scored_at == first
    assert all(s.score is not None for s in section.scores)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (120, 60)])
async def test_the_training_screen_scores_the_checkpoints_and_chooses_by_score(
    store: SessionStore,
    tiny_model: Path,
    tickets: Tickets,
    tickets_ramp: TrainedAdapter,
    size: tuple[int, int],
) -> None:
    from textual.widgets import Button, DataTable, Input, Static

    from ftwizard.app import make_app
    from ftwizard.screens.training.screen import TrainingScreen

    session = trained_session(store, tickets, tickets_ramp)
    app = make_app(store=store, session_id=session.id)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TrainingScreen)
        assert screen.query_one("#checkpoint-scores-panel").display
        screen.query_one("#checkpoint-rows", Input).value = "10"
        screen.query_one("#score-checkpoints", Button).press()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session is not None
        assert TrainingScreen.WAIT_CONDITIONS["checkpoints-scored"](screen)
        section = app.session.training.checkpoint_eval
        assert section is not None and section.rows == 10
        assert [s.id for s in section.scores if s.score is not None] == [
            "step-4",
            "step-8",
            "step-12",
        ]
        assert screen.query_one("#checkpoint-scores", DataTable).row_count == 3
        screen.query_one("#choose-best", Button).press()
        await pilot.pause()
        assert app.session.training.chosen_by == "grader score"
        summary = str(screen.query_one("#training-summary", Static).render())
        assert "Best checkpoint by grader score" in summary
    saved = store.load(session.id)
    assert saved.training.checkpoint_eval is not None
    assert {"press": "score-checkpoints"} in [e.action for e in saved.journal]
