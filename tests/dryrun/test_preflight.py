"""A call that cannot work fails at once, naming the key and how to set it, in the CLI and the
wizard alike; a run that measured nothing is an error, never a verdict; counters never go down.

The scene of issue 18: Together chosen with no TOGETHER_API_KEY. Before, the wizard asked to
confirm "an unknown amount", retried for minutes, and ended on WARNING with 0 samples.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from ftwizard.app import FtwizardApp, make_app
from ftwizard.cli import main
from ftwizard.dryrun.engine import DryRun
from ftwizard.dryrun.report import DryRunConfig, DryRunProgress
from ftwizard.screens.dialogs import ConfirmScreen
from ftwizard.screens.dryrun.screen import DryRunScreen
from ftwizard.session import Backend, Method
from ftwizard.store import SessionStore
from tests.dryrun.helpers import EXACT, FAST, provider_for, row_of, write_data
from tests.fakes.http_server import FakeResponse
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.together_server import FakeTogetherServer
from tests.steps import confirm_grader, session_with_data

SIZE = (120, 60)
TOGETHER_MODEL = "together:Qwen/Qwen3.5-9B"


@pytest.fixture
def grader_file(tmp_path: Path) -> str:
    path = tmp_path / "grader.yaml"
    path.write_text(
        'type: string_check\nname: exact\ninput: "{{sample.output_text}}"\n'
        'reference: "{{item.answer}}"\noperation: eq\n'
    )
    return str(path)


@pytest.fixture
def keyless_together(monkeypatch: pytest.MonkeyPatch) -> FakeTogetherServer:
    """The fake Together API, reached through TOGETHER_BASE_URL, and no TOGETHER_API_KEY."""
    server = FakeTogetherServer()
    server.start()
    monkeypatch.setenv("TOGETHER_BASE_URL", f"{server.base_url}/v1")
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    yield server
    server.stop()


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    # How fast the preflight answers is measured by bench/bench_preflight.py, not asserted.
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- the CLI -------------------------------------------------------------------------------


def test_cli_together_without_a_key_fails_at_once_naming_the_variable_and_how_to_set_it(
    tmp_path: Path, grader_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_data(tmp_path / "data.jsonl", 40)
    code, out, err = _cli(
        ["dryrun", "--data", str(data), "--grader", grader_file, "--model", TOGETHER_MODEL],
        capsys,
    )
    assert code == 2
    assert "TOGETHER_API_KEY is not set" in err
    assert "export TOGETHER_API_KEY=" in err
    assert "--model" in err
    # Before any cost line: nothing is priced for a call that cannot work.
    assert "samples" not in err and out == ""


def test_cli_vertex_without_credentials_names_adc_and_the_gcloud_command(
    tmp_path: Path,
    grader_file: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    data = write_data(tmp_path / "data.jsonl", 10)
    code, _, err = _cli(
        ["dryrun", "--data", str(data), "--grader", grader_file, "--model", "vertex:gemini-x"],
        capsys,
    )
    assert code == 2
    assert "application-default credentials (ADC)" in err
    assert "gcloud auth application-default login" in err


def test_cli_a_server_that_answers_401_is_not_retried_and_no_verdict_is_printed(
    tmp_path: Path,
    grader_file: str,
    capsys: pytest.CaptureFixture[str],
    keyless_together: FakeTogetherServer,
) -> None:
    data = write_data(tmp_path / "data.jsonl", 40)
    argv = ["dryrun", "--data", str(data), "--grader", grader_file, "--model", TOGETHER_MODEL]
    code, out, err = _cli([*argv, "--samples", "20", "--concurrency", "2"], capsys)
    assert code == 1
    assert "measured nothing (0 of" in err
    assert "TOGETHER_API_KEY is not set" in err and "export TOGETHER_API_KEY=" in err
    assert "verdict" not in out and "WARNING" not in out + err
    # The first 401 stops the run: no retries, only the calls already under way (2 in
    # flight), not one call per sample (20) or five attempts each.
    calls = keyless_together.requests_to("/v1/chat/completions", "POST")
    assert 1 <= len(calls) <= 4


def test_cli_max_tokens_is_sent_with_every_call(
    tmp_path: Path,
    grader_file: str,
    capsys: pytest.CaptureFixture[str],
    openai_env: FakeOpenAIServer,
) -> None:
    data = write_data(tmp_path / "data.jsonl", 10)
    argv = ["dryrun", "--data", str(data), "--grader", grader_file]
    argv += ["--model", "openai:gpt-4.1-mini-2025-04-14", "--samples", "4", "--max-tokens", "77"]
    code, _, _ = _cli(argv, capsys)
    assert code == 0
    bodies = openai_env.chat_bodies()
    assert bodies and all(b.get("max_tokens", b.get("max_completion_tokens")) == 77 for b in bodies)
    code, _, err = _cli([*argv[:-1], "0"], capsys)
    assert code == 2 and "--max-tokens must be at least 1" in err


# -- the wizard ----------------------------------------------------------------------------


def _together_session(store: SessionStore, tmp_path: Path) -> str:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Say the word number {i}."},
                {"role": "assistant", "content": f"word{i}"},
            ]
        }
        for i in range(20)
    ]
    session = session_with_data(store, tmp_path, backend=Backend.together, rows=rows)
    confirm_grader(store, session)
    session.dryrun.samples = 8
    store.save(session)
    return session.id


def _text(app: FtwizardApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_wizard_together_without_a_key_names_it_before_any_cost_question(
    store: SessionStore, tmp_path: Path
) -> None:
    session_id = _together_session(store, tmp_path)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, DryRunScreen)
        # The estimate line already says what is wrong, instead of a price.
        estimate = _text(app, "#dryrun-estimate")
        assert "TOGETHER_API_KEY is not set" in estimate
        app.screen.query_one("#dryrun-run").press()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)  # no "an unknown amount" question
        messages = [str(n.message) for n in app._notifications]
        assert any("export TOGETHER_API_KEY=" in m for m in messages)
        # People read these messages: a label, not a widget id.
        assert all("dryrun-" not in m for m in messages)
        assert app.session is not None and app.session.dryrun.verdict is None


async def test_wizard_a_run_that_measured_nothing_is_an_error_not_a_warning(
    store: SessionStore, tmp_path: Path, keyless_together: FakeTogetherServer
) -> None:
    session_id = _together_session(store, tmp_path)
    app = make_app(store=store, session_id=session_id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#dryrun-run").press()
        await pilot.pause()
        if isinstance(app.screen, ConfirmScreen):
            await pilot.click("#confirm-yes")
        await app.workers.wait_for_complete()
        await pilot.pause()
        live = _text(app, "#dryrun-live")
        assert "measured nothing" in live and "TOGETHER_API_KEY is not set" in live
        assert app.session is not None and app.session.dryrun.verdict is None
        assert "WARNING" not in _text(app, "#dryrun-verdict")
    assert len(keyless_together.requests_to("/v1/chat/completions", "POST")) <= 16


async def test_wizard_max_output_tokens_is_stored_in_the_session_and_sent(
    store: SessionStore, tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    session = session_with_data(store, tmp_path, backend=Backend.openai, method=Method.sft)
    confirm_grader(store, session)
    session.dryrun.samples = 3
    store.save(session)
    app = make_app(store=store, session_id=session.id, allow_spend=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one("#dryrun-max-tokens").focus()
        await pilot.press("6", "4")
        await pilot.pause()
        assert app.session is not None and app.session.dryrun.max_tokens == 64
        app.screen.query_one("#dryrun-run").press()
        await pilot.pause()
        if isinstance(app.screen, ConfirmScreen):
            await pilot.click("#confirm-yes")
        await app.workers.wait_for_complete()
        await pilot.pause()
    bodies = openai_env.chat_bodies()
    assert bodies and all(b.get("max_tokens", b.get("max_completion_tokens")) == 64 for b in bodies)
    assert store.load(session.id).dryrun.max_tokens == 64


# -- counters ------------------------------------------------------------------------------


async def test_failed_and_retries_never_go_down_while_rows_are_tried_again(
    tmp_path: Path, openai_env: FakeOpenAIServer
) -> None:
    # Rows Q0 and Q1 get 503 on their first three attempts: that exhausts the first pass
    # (3 attempts), and the second pass answers them. Before, "failed" went from 2 back to 0
    # when those rows were tried again.
    openai_server = openai_env
    attempts: dict[int, int] = {}

    def flaky(body: dict[str, object]) -> object:
        row = row_of(body)  # type: ignore[arg-type]
        attempts[row] = attempts.get(row, 0) + 1
        if row < 2 and attempts[row] <= 3:
            return FakeResponse(503, {"error": {"message": "busy"}})
        return None  # the default reply

    openai_server.reply_fn = flaky  # type: ignore[assignment]
    policy = FAST.model_copy(update={"max_attempts": 3})
    data = write_data(tmp_path / "data.jsonl", 6)
    config = DryRunConfig(
        data=str(data),
        model="openai:gpt-4.1-mini-2025-04-14",
        base_url=openai_server.v1_url,
        samples=6,
        concurrency=1,
        samples_per_prompt=1,
    )
    seen: list[DryRunProgress] = []
    dry = DryRun(config, EXACT)
    dry._provider = provider_for(openai_server, retry=policy, on_retry=dry._count_retry)
    report = await dry.run(on_progress=seen.append)
    failed = [p.generation_failed for p in seen]
    retries = [p.retries for p in seen]
    assert failed == sorted(failed) and retries == sorted(retries)
    assert failed[-1] == 2 and retries[-1] == 4
    assert report.stats.n == 6  # the row failed in the first pass was measured in the second


def test_cli_a_401_that_says_retry_is_still_tried_once(
    tmp_path: Path,
    grader_file: str,
    capsys: pytest.CaptureFixture[str],
    openai_env: FakeOpenAIServer,
) -> None:

    openai_env.reply_fn = lambda body: FakeResponse(
        401, {"error": {"message": "bad key"}}, headers={"x-should-retry": "true"}
    )
    data = write_data(tmp_path / "data.jsonl", 10)
    argv = ["dryrun", "--data", str(data), "--grader", grader_file, "--samples", "1"]
    argv += ["--samples-per-prompt", "1"]
    code, _, err = _cli([*argv, "--model", "openai:gpt-4.1-mini-2025-04-14"], capsys)
    assert code == 1 and "OPENAI_API_KEY holds a valid key" in err
    assert len(openai_env.chat_bodies()) == 1


def test_a_replay_of_a_keyless_together_dry_run_fails_fast_and_records_no_verdict(
    store: SessionStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.replay_steps import label_grader_step
    from tests.tiny_local import TICKETS_DIR

    replay = tmp_path / "keyless.yaml"
    replay.write_text(
        f"""version: 1
session: {{name: keyless, method: sft, backend: together, base_model: Qwen/Qwen3.5-9B}}
actions:
  - screen: task
  - press: next
  - screen: dataset
  - set: {{train-path: {TICKETS_DIR / "train.jsonl"}, valid-path: {TICKETS_DIR / "valid.jsonl"}}}
  - press: check-dataset
  - wait: {{for: dataset-checked, timeout: 120}}
  - press: next
{label_grader_step(120)}  - screen: dryrun
  - press: dryrun-run
  - wait: {{for: dryrun-failed, timeout: 10}}
  - expect: {{dryrun.verdict: null}}
""",
        encoding="utf-8",
    )
    code = main(["--replay", str(replay), "--allow-spend"])
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:] + out.err[-1000:]
    (summary,) = store.list()[0]
    assert store.load(summary.id).dryrun.verdict is None
