"""The dataset step's Distill pane as a user drives it, against fake teachers with a known
accuracy (16 of 20 right): exactly the correct rows are kept, the distilled file becomes the
training file and is checked, nothing paid for is requested twice, and nothing is spent in a
replay without --allow-spend."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, Static, TabbedContent

from ftwizard.app import FtwizardApp, make_app
from ftwizard.distill.engine import run_distill
from ftwizard.distill.journal import Journal
from ftwizard.distill.models import model_ref
from ftwizard.distill.options import DistillOptions, journal_path_for
from ftwizard.distill.session import SESSION_GRADER, distilled_path, grader_choices
from ftwizard.flow import dataset_problem, start_session
from ftwizard.graders.workbench import gallery
from ftwizard.screens.dataset.screen import DatasetScreen
from ftwizard.session import StepId
from ftwizard.store import SessionStore
from tests.distill.test_engine import (
    N,
    label,
    openai_teacher_reply,
    question,
    teacher_reply,
    teacher_right,
)
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer
from tests.steps import EXACT_GRADER
from tests.waiting import asked, confirm

SIZE = (120, 50)
TEACHER = "anthropic:claude-haiku-4-5"
# Worker rounds to wait for a run and the check it starts; each round waits for all workers.
_MAX_ROUNDS = 50


def write_rows(path: Path, n: int = N) -> Path:
    """Chat rows with an old answer and the ground truth in ``answer`` (the exact_answer
    example grader's reference)."""
    rows = [
        {
            "id": i,
            "messages": [
                {"role": "user", "content": question(i)},
                {"role": "assistant", "content": "an old answer"},
            ],
            "answer": label(i),
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def open_dataset(store: SessionStore, data: Path, *, allow_spend: bool) -> tuple[FtwizardApp, str]:
    session = start_session(store, "distill")
    session.step = StepId.dataset
    session.dataset.choice.train_path = str(data)
    store.save(session)
    return make_app(store=store, session_id=session.id, allow_spend=allow_spend), session.id


def screen(app: FtwizardApp) -> DatasetScreen:
    assert isinstance(app.screen, DatasetScreen)
    return app.screen


def text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def settle(app: FtwizardApp, pilot: Pilot[Any]) -> None:
    """Wait for the run, and for the check it starts when it ends."""
    for _ in range(_MAX_ROUNDS):
        await app.workers.wait_for_complete()
        await pilot.pause()
        current = app.screen
        if not isinstance(current, DatasetScreen) or not (current.distilling or current.busy):
            return
    raise AssertionError("the distill run did not finish")


async def choose(app: FtwizardApp, pilot: Pilot[Any], **inputs: str) -> None:
    """Open the Distill pane, fill its inputs, pick the exact-answer grader."""
    dataset = screen(app)
    dataset.query_one("#dataset-tabs", TabbedContent).active = "tab-distill"
    for widget_id, value in inputs.items():
        dataset.query_one(f"#{widget_id.replace('_', '-')}", Input).value = value
    dataset.query_one("#distill-grader", Select).value = "exact_answer"
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def actions(store: SessionStore, session_id: str) -> list[dict[str, Any]]:
    return [entry.action for entry in store.load(session_id).journal]


async def test_distill_keeps_the_correct_rows_trains_on_them_and_never_pays_twice(
    store: SessionStore, tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    anthropic_env.reply_fn = teacher_reply
    data = write_rows(tmp_path / "train.jsonl")
    app, session_id = open_dataset(store, data, allow_spend=True)
    out = distilled_path(store.load(session_id), store)
    grader_file = str(gallery()["exact_answer"])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await choose(app, pilot, distill_teacher=TEACHER)
        assert screen(app).query_one("#distill-grader-path", Input).value == grader_file
        assert "20 requests to claude-haiku-4-5 (0 already paid" in text(app, "#distill-estimate")

        screen(app).query_one("#distill-run", Button).press()
        await pilot.pause()
        assert "sends 20 requests" in (await asked(pilot)).question
        await pilot.click("#confirm-yes")
        await settle(app, pilot)

        summary = text(app, "#distill-summary")
        assert "16 / 20 correct, 80.0 %" in summary
        assert "Kept 16 of 20 rows" in summary
        assert "20 requests sent, 0 answers reused" in summary
        assert app.session is not None
        dataset = app.session.dataset
        assert dataset.choice.train_path == str(out)
        assert dataset.distill.prompts_path == str(data)  # the next run relabels the same rows
        assert screen(app).query_one("#train-path", Input).value == str(out)
        # The distilled file was checked at once, and the step can go on.
        assert dataset.result is not None
        assert (dataset.result.examples, dataset.result.errors) == (16, 0)
        assert dataset_problem(app.session) is None
        assert DatasetScreen.WAIT_CONDITIONS["distill-finished"](screen(app))
        assert len(anthropic_env.message_bodies()) == N

        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        kept = [i for i in range(N) if teacher_right(i)]
        # Chat SFT rows: the prompt and the teacher's answer; the ground truth stays out.
        assert [r["messages"] for r in rows] == [
            [
                {"role": "user", "content": question(i)},
                {"role": "assistant", "content": label(i)},
            ]
            for i in kept
        ]
        assert all(set(r) == {"messages"} for r in rows)

        # A rerun finds every answer in the journal beside the file: free, so not even asked.
        screen(app).query_one("#distill-run", Button).press()
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)
        await settle(app, pilot)
        assert len(anthropic_env.message_bodies()) == N
        assert "0 requests sent, 20 answers reused" in text(app, "#distill-summary")
        assert "16 / 20 correct, 80.0 %" in text(app, "#distill-summary")

    saved = store.load(session_id)
    assert saved.dataset.distilled is not None and saved.dataset.distilled.kept == 16
    assert saved.dataset.distill.teacher == TEACHER
    assert saved.dataset.distill.grader_path == grader_file
    journal = actions(store, session_id)
    assert {"set": {"train-path": str(out)}} in journal
    assert {"press": "distill-run"} in journal and {"press": "confirm-yes"} in journal

    # Resuming the session shows the settings and the last run again.
    again = make_app(store=store, session_id=session_id)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await again.workers.wait_for_complete()
        await pilot.pause()
        assert screen(again).query_one("#distill-teacher", Input).value == TEACHER
        assert screen(again).query_one("#distill-grader", Select).value == "exact_answer"
        assert "16 / 20 correct, 80.0 %" in text(again, "#distill-summary")
        assert "all 20 answers already paid for" in text(again, "#distill-estimate")


async def test_after_a_crash_a_compatible_server_teacher_is_asked_only_for_the_rest(
    store: SessionStore, tmp_path: Path
) -> None:
    server = FakeOpenAIServer(api_key=None, models=None)
    server.start()
    try:
        server.reply_fn = openai_teacher_reply
        data = write_rows(tmp_path / "train.jsonl")
        app, session_id = open_dataset(store, data, allow_spend=True)
        # An earlier run that died after 8 answers: they are in the journal beside the output.
        first_rows = write_rows(tmp_path / "first.jsonl", 8)
        teacher = model_ref("openai:teacher-70b", base_url=server.v1_url, field="teacher")
        out = distilled_path(store.load(session_id), store)
        await run_distill(
            first_rows,
            tmp_path / "partial.jsonl",
            DistillOptions(teacher=teacher),
            journal=out.with_name(out.name + ".journal.jsonl"),
        )
        assert len(server.chat_bodies()) == 8

        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await choose(
                app, pilot, distill_teacher="openai:teacher-70b", distill_base_url=server.v1_url
            )
            assert "12 requests to teacher-70b (8 already paid for" in text(
                app, "#distill-estimate"
            )
            screen(app).query_one("#distill-run", Button).press()
            await pilot.pause()
            assert "8 answers are already paid for" in (await asked(pilot)).question
            await pilot.click("#confirm-yes")
            await settle(app, pilot)
            summary = text(app, "#distill-summary")
            assert "16 / 20 correct, 80.0 %" in summary
            assert "12 requests sent, 8 answers reused" in summary
            assert app.session is not None
            assert app.session.dataset.choice.train_path == str(out)
        assert len(server.chat_bodies()) == N  # 8 before the crash + 12 now: none twice
    finally:
        server.stop()


async def test_a_replay_never_starts_a_paid_distill_without_allow_spend(
    store: SessionStore, tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    anthropic_env.reply_fn = teacher_reply
    data = write_rows(tmp_path / "train.jsonl")
    app, session_id = open_dataset(store, data, allow_spend=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await choose(app, pilot, distill_teacher=TEACHER)
        screen(app).query_one("#distill-run", Button).press()
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)  # no confirmation: refused outright
        assert "--allow-spend" in text(app, "#distill-status")
        await app.workers.wait_for_complete()
        assert app.session is not None
        assert app.session.dataset.distilled is None
        assert app.session.dataset.choice.train_path == str(data)
    assert anthropic_env.message_bodies() == []
    assert not distilled_path(store.load(session_id), store).exists()


async def test_without_a_grader_the_pane_says_so_and_spends_nothing(
    store: SessionStore, tmp_path: Path, anthropic_env: FakeAnthropicServer
) -> None:
    data = write_rows(tmp_path / "train.jsonl")
    app, _ = open_dataset(store, data, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        dataset = screen(app)
        dataset.query_one("#distill-teacher", Input).value = TEACHER
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "Choose a grader" in text(app, "#distill-estimate")
        dataset.query_one("#distill-run", Button).press()
        await pilot.pause()
        assert isinstance(app.screen, DatasetScreen)
        assert "Choose a grader" in text(app, "#distill-status")
        # A typed path works as well as the list, and a missing file is named before any call.
        dataset.query_one("#distill-grader-path", Input).value = str(tmp_path / "none.yaml")
        await pilot.pause()
        dataset.query_one("#distill-run", Button).press()
        await pilot.pause()
        assert "none.yaml" in text(app, "#distill-status")
        assert app.session is not None and app.session.dataset.distilled is None
    assert anthropic_env.message_bodies() == []


async def test_stop_keeps_what_was_paid_for_and_the_rerun_asks_only_for_the_rest(
    store: SessionStore, tmp_path: Path
) -> None:
    answered_at_once = 3
    release = threading.Event()
    calls = itertools.count()

    def slow_after_three(body: dict[str, Any]) -> ChatReply:
        # The first answers come at once; the rest wait until the test has pressed Stop.
        if next(calls) >= answered_at_once:
            release.wait(timeout=10)
        return openai_teacher_reply(body)

    server = FakeOpenAIServer(api_key=None, models=None)
    server.start()
    try:
        server.reply_fn = slow_after_three
        data = write_rows(tmp_path / "train.jsonl")
        app, session_id = open_dataset(store, data, allow_spend=True)
        journal = Journal(journal_path_for(distilled_path(store.load(session_id), store)))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await choose(
                app, pilot, distill_teacher="openai:teacher-70b", distill_base_url=server.v1_url
            )
            screen(app).query_one("#distill-run", Button).press()
            await confirm(pilot)
            for _ in range(_MAX_ROUNDS):
                if len(journal.load().generations) >= answered_at_once:
                    break
                await pilot.pause(0.05)
            assert screen(app).distilling
            screen(app).query_one("#distill-stop", Button).press()
            await pilot.pause()
            release.set()
            await settle(app, pilot)
            assert "Stopped" in text(app, "#distill-status")
            assert app.session is not None
            assert app.session.dataset.distilled is None
            assert app.session.dataset.choice.train_path == str(data)
            paid = len(journal.load().generations)
            assert answered_at_once <= paid < N

            sent_before = len(server.chat_bodies())
            screen(app).query_one("#distill-run", Button).press()
            await pilot.pause()
            assert f"sends {N - paid} requests" in (await asked(pilot)).question
            await pilot.click("#confirm-yes")
            await settle(app, pilot)
            assert len(server.chat_bodies()) - sent_before == N - paid
            assert "16 / 20 correct, 80.0 %" in text(app, "#distill-summary")
            assert app.session.dataset.choice.train_path != str(data)
    finally:
        release.set()
        server.stop()


def test_the_grader_steps_own_grader_is_offered_first_once_written(store: SessionStore) -> None:
    session = start_session(store, "graders")
    assert SESSION_GRADER not in grader_choices(session, store)
    assert "exact_answer" in grader_choices(session, store)
    own = store.artifacts_dir(session.id) / "grader.yaml"
    own.write_text(EXACT_GRADER, encoding="utf-8")
    offered = grader_choices(session, store)
    assert next(iter(offered)) == SESSION_GRADER and offered[SESSION_GRADER] == own
