"""The run ledger: entries derived from sessions, appended on change, printed as a changelog."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ftwizard.cli import main
from ftwizard.dryrun.metrics import Histogram
from ftwizard.evaluate.ab import Judge, JudgeOptions, PairItem, compare_scores, run_pairwise
from ftwizard.evaluate.session import record_grader_comparison, record_pairwise
from ftwizard.flow import start_session
from ftwizard.graders.results import GradeResult
from ftwizard.ledger.store import (
    NoteEntry,
    RunEntry,
    current_runs,
    ledger_path,
    read_lines,
    record_session,
)
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.training import MetricPoint
from ftwizard.session import Backend, DatasetResult, Session, StepId, TrainingIntent
from ftwizard.store import SessionStore
from tests.scripted_judge import ScriptedJudge, user_text

BASE_RIGHT = [i % 4 == 0 for i in range(40)]
TUNED_RIGHT = [i % 10 != 0 for i in range(40)]


def _prefers_right(request: GenerationRequest) -> str:
    """A fair judge: the response that says 'right' wins; a tie when both or neither do."""
    text = user_text(request)
    a = text.split("[Response A]")[1].split("[Response B]")[0]
    b = text.split("[Response B]")[1]
    a_ok, b_ok = "right" in a, "right" in b.split("Which response")[0]
    winner = "tie" if a_ok == b_ok else ("A" if a_ok else "B")
    return json.dumps({"winner": winner, "reason": "says right"})


def evaluate_session(store: SessionStore, session: Session, held_out: Path) -> None:
    """Record a real grader comparison and a real A/B (scripted judge) into the session."""
    ids = [f"q{i}" for i in range(len(BASE_RIGHT))]
    comparison = compare_scores(
        ids,
        [GradeResult(score=1.0 if ok else 0.0) for ok in BASE_RIGHT],
        [GradeResult(score=1.0 if ok else 0.0) for ok in TUNED_RIGHT],
        base_outputs=["right" if ok else "wrong" for ok in BASE_RIGHT],
        tuned_outputs=["right" if ok else "wrong" for ok in TUNED_RIGHT],
    )
    items = [
        PairItem(
            id=item_id,
            prompt=[ChatMessage(role="user", content=f"question {item_id}")],
            answer_a="right" if a else "wrong",
            answer_b="right" if b else "wrong",
            tag="in" if n < 20 else "out",
        )
        for n, (item_id, a, b) in enumerate(zip(ids, BASE_RIGHT, TUNED_RIGHT, strict=True))
    ]
    judge = Judge("anthropic:claude-haiku-4-5", ScriptedJudge(_prefers_right), "claude-haiku-4-5")
    report = asyncio.run(
        run_pairwise(items, [judge], JudgeOptions(seed=1), model_a="base", model_b="tuned")
    )
    record_grader_comparison(store, session, str(held_out), comparison)
    session.evaluation.judges = [judge.name]
    session.evaluation.both_orders = False
    session.evaluation.seed = 1
    record_pairwise(store, session, str(held_out), report)


def finished_session(
    store: SessionStore,
    tmp_path: Path,
    name: str,
    *,
    finished: datetime,
    teacher: bool = False,
    evaluated: bool = True,
) -> Session:
    """A session whose OpenAI SFT job finished, deployed, dry-run and (optionally) evaluated."""
    folder = tmp_path / name.replace(" ", "-")
    folder.mkdir()
    train = folder / "train.jsonl"
    valid = folder / "valid.jsonl"
    train.write_text("{}\n", encoding="utf-8")
    valid.write_text("{}\n", encoding="utf-8")
    if teacher:
        meta = {
            "teacher": "anthropic:claude-sonnet-4-6",
            "accuracy_text": "318 / 377 correct, 84.4 %",
            "kept": 318,
            "cost_usd": 5.6,
        }
        (folder / "train.jsonl.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    session = start_session(store, name, backend=Backend.openai)
    session.dataset.choice.train_path = str(train)
    session.dataset.result = DatasetResult(
        format="chat",
        examples=377 if teacher else 1200,
        valid_examples=318 if teacher else 1198,
        errors=0,
        warnings=0,
        tokens_total=34_567,
        training_file=str(train),
        validation_file=str(valid),
        report_file=str(folder / "report.json"),
        fingerprint="fp",
    )
    scores = [0.0, 0.2, 0.4, 0.4, 0.6, 1.0, 1.0, 0.9]
    dry_report = folder / "dryrun.json"
    dry_report.write_text(
        json.dumps({"stats": {"histogram": Histogram.of(scores).model_dump()}}), encoding="utf-8"
    )
    session.dryrun.verdict = "GO"
    session.dryrun.n = len(scores)
    session.dryrun.mean = sum(scores) / len(scores)
    session.dryrun.cost_usd = 0.0123
    session.dryrun.report_file = str(dry_report)
    t = session.training
    t.hyperparameters = {"n_epochs": 3, "learning_rate_multiplier": 2.0, "batch_size": 8}
    t.intent = TrainingIntent(key=f"key-{name}", job_id=f"ftjob-{name.replace(' ', '')}")
    t.status = "succeeded"
    t.fine_tuned_model = f"ft:gpt-4.1-mini-2025-04-14:acme::{name.replace(' ', '')}"
    t.trained_tokens = 103_701
    t.started_at = finished - timedelta(hours=1)
    t.finished_at = finished
    t.cost_usd = 0.52
    t.metrics = [
        MetricPoint(step=s, train_loss=2.0 / s, valid_loss=2.2 / s).model_dump(mode="json")
        for s in range(1, 21)
    ]
    session.deployment.model = f"openai:{t.fine_tuned_model}"
    session.step = StepId.evaluate
    if evaluated:
        evaluate_session(store, session, valid)
    store.save(session)
    return session


def ledger_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["ledger", *args]) == 0
    return capsys.readouterr().out


def test_the_ledger_prints_two_runs_as_a_changelog_newest_first(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = finished_session(
        store, tmp_path, "support bot", finished=datetime(2026, 11, 1, 9, tzinfo=UTC)
    )
    newer = finished_session(
        store,
        tmp_path,
        "distilled bot",
        finished=datetime(2026, 11, 20, 9, tzinfo=UTC),
        teacher=True,
    )
    text = ledger_output(capsys)
    assert text.startswith("# Fine-tuning runs\n")
    first = text.index(f"## 2026-11-20 — distilled bot (`{newer.id}`)")
    second = text.index(f"## 2026-11-01 — support bot (`{older.id}`)")
    assert first < second
    newer_part, older_part = text[first:second], text[second:]
    assert f"`{newer.training.fine_tuned_model}`" in newer_part
    assert "sft on openai from `gpt-4.1-mini" in newer_part
    assert "**Teacher**: `anthropic:claude-sonnet-4-6` (318 / 377 correct, 84.4 %)" in newer_part
    assert "teacher $5.60" in newer_part
    assert "**Teacher**" not in older_part
    assert "1,200 examples (1,198 valid)" in older_part
    assert "3 epochs; batch_size 8, learning_rate_multiplier 2.0, n_epochs 3" in older_part
    assert "103,701 trained tokens" in older_part
    assert "training $0.52, dry run $0.0123" in older_part
    assert "**Dry run**: GO, mean 0.562 on 8 graded answers" in older_part
    # The evaluation figures come from the real comparison and A/B recorded above.
    gained = sum(1 for b, t in zip(BASE_RIGHT, TUNED_RIGHT, strict=True) if t and not b)
    lost = sum(1 for b, t in zip(BASE_RIGHT, TUNED_RIGHT, strict=True) if b and not t)
    assert f"base 0.250 → tuned 0.900 over 40 held-out rows; {gained} fail→pass" in older_part
    assert f"{lost} pass→fail" in older_part
    win = (gained + (40 - gained - lost) / 2) / 40
    assert f"tuned win rate {win:.1%}" in older_part
    assert "verdict **tuned**" in older_part
    # Printing again appends nothing: the entries did not change.
    lines_before = ledger_path(store).read_text().count("\n")
    ledger_output(capsys)
    assert ledger_path(store).read_text().count("\n") == lines_before == 2


def test_an_evaluation_recorded_later_appends_a_newer_entry_for_the_same_run(
    store: SessionStore, tmp_path: Path
) -> None:
    session = finished_session(
        store, tmp_path, "later", finished=datetime(2026, 11, 3, tzinfo=UTC), evaluated=False
    )
    first = record_session(store, session)
    assert first is not None and first.evaluation is None
    evaluate_session(store, session, tmp_path / "later" / "valid.jsonl")
    second = record_session(store, session)
    assert second is not None and second.evaluation is not None
    assert second.key == first.key == f"{session.id}:ftjob-later"
    lines = read_lines(store)
    assert len(lines) == 2
    (run,) = current_runs(lines)
    assert run.evaluation is not None and run.evaluation.ab_verdict == "tuned"


def test_a_session_without_a_run_is_not_recorded(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    session = start_session(store, "just started")
    assert record_session(store, session) is None
    assert "No training runs recorded yet." in ledger_output(capsys)


def test_notes_survive_a_rebuild_that_drops_deleted_sessions(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = finished_session(store, tmp_path, "kept", finished=datetime(2026, 11, 5, tzinfo=UTC))
    gone = finished_session(store, tmp_path, "gone", finished=datetime(2026, 11, 6, tzinfo=UTC))
    text = ledger_output(capsys, "--session", kept.id, "--note", "lr 2.0 overfits after epoch 2")
    assert "- **Notes**:\n  - lr 2.0 overfits after epoch 2" in text
    assert gone.id not in text
    store.delete(gone.id)
    # Without a rebuild the deleted session's run stays in the history.
    assert gone.id in ledger_output(capsys, "--no-sync")
    text = ledger_output(capsys, "--rebuild")
    assert gone.id not in text
    assert "lr 2.0 overfits after epoch 2" in text
    kinds = [type(line) for line in read_lines(store)]
    assert kinds == [RunEntry, NoteEntry]


def test_a_damaged_ledger_line_is_reported_with_its_number(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = finished_session(
        store, tmp_path, "damaged", finished=datetime(2026, 11, 7, tzinfo=UTC), evaluated=False
    )
    record_session(store, session)
    with ledger_path(store).open("a", encoding="utf-8") as handle:
        handle.write('{"kind": "run", "key": 3}\n')
    assert main(["ledger"]) == 2
    err = capsys.readouterr().err
    assert "ledger.jsonl" in err and ":2" in err


def test_json_output_and_a_note_without_a_session_is_refused(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = finished_session(
        store, tmp_path, "json", finished=datetime(2026, 11, 8, tzinfo=UTC), evaluated=False
    )
    runs = json.loads(ledger_output(capsys, "--json"))
    assert [r["session_id"] for r in runs] == [session.id]
    assert runs[0]["epochs"] == 3 and runs[0]["dryrun_verdict"] == "GO"
    assert main(["ledger", "--note", "x"]) == 2
    assert "--session" in capsys.readouterr().err


def test_epochs_are_the_runs_own_and_trained_tokens_show_their_split(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A local run of the tiny model trains 6 epochs by default: nothing in the user's changes
    # says so, and the ledger printed "- epochs".
    from ftwizard.training.plan import current_hyperparameters

    session = finished_session(
        store, tmp_path, "local run", finished=datetime(2026, 11, 2, tzinfo=UTC)
    )
    session.task.backend = Backend.local
    session.task.base_model = "builtin-tiny"
    session.training.hyperparameters = {}
    session.training.trained_tokens = 12_000
    store.save(session)
    epochs = current_hyperparameters(session)["epochs"]
    assert epochs == 6
    text = ledger_output(capsys, "--session", session.id)
    assert "- **Training**: 6 epochs; defaults;" in text
    assert (
        "12,000 trained tokens (2,000 per epoch x 6 epochs; the dataset step counted 34,567" in text
    )
    # OpenAI's "auto": the provider chooses, and the ledger says so instead of "-".
    session.task.backend = Backend.openai
    session.task.base_model = "gpt-4.1-mini-2025-04-14"
    store.save(session)
    text = ledger_output(capsys, "--session", session.id, "--rebuild")
    assert "epochs chosen by the provider" in text and "- epochs" not in text
