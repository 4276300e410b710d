"""Blind A/B evaluation through the HTTP fakes: judges with known behaviour, exact counts,
position bias, the recorded mapping, and the ``eval-ab`` command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.evaluate.ab import Judge, JudgeOptions, evaluate_ab, read_eval_rows
from ftwizard.evaluate.commands import register
from ftwizard.providers.anthropic.chat import AnthropicChatProvider
from ftwizard.providers.openai.chat import OpenAIChatProvider
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.pairwise_judges import fair_judge, first_position_judge, judge_prompt, verdict

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)
N = 40


def label(i: int) -> str:
    return f"<label-{i:03d}>"


def base_correct(i: int) -> bool:
    return i % 4 == 0


def tuned_correct(i: int) -> bool:
    return i % 10 != 0


def rows(n: int = N) -> list[dict[str, Any]]:
    return [
        {
            "id": f"q{i}",
            "messages": [
                {"role": "user", "content": f"Classify item {i}"},
                {"role": "assistant", "content": label(i)},
            ],
            "domain": "in" if i < n // 2 else "out",
        }
        for i in range(n)
    ]


def item_index(body: dict[str, Any]) -> int:
    text = judge_prompt(body)
    return int(text.rsplit("Classify item ", 1)[1].split()[0])


def answering_models(body: dict[str, Any]) -> str:
    """model 'base' and 'tuned' answer item i right per base_correct / tuned_correct."""
    i = item_index(body)
    right = base_correct(i) if body["model"] == "base" else tuned_correct(i)
    return f"It is {label(i)}." if right else "It is something else."


def expected_counts(n: int = N) -> tuple[int, int, int]:
    """(a_wins, b_wins, ties) a fair judge must give, from the data's definition."""
    a = sum(1 for i in range(n) if base_correct(i) and not tuned_correct(i))
    b = sum(1 for i in range(n) if tuned_correct(i) and not base_correct(i))
    return a, b, n - a - b


@pytest.fixture
def models(openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> OpenAIChatProvider:
    assert openai_server.api_key is not None
    monkeypatch.setenv("OPENAI_API_KEY", openai_server.api_key)
    openai_server.models = None
    openai_server.reply_fn = answering_models
    return OpenAIChatProvider(base_url=openai_server.v1_url, retry=FAST)


@pytest.fixture
def judge_provider(
    anthropic_server: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> AnthropicChatProvider:
    assert anthropic_server.api_key is not None
    monkeypatch.setenv("ANTHROPIC_API_KEY", anthropic_server.api_key)
    return AnthropicChatProvider(base_url=anthropic_server.base_url, retry=FAST)


async def run_ab(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judges: list[Judge],
    **options: Any,
) -> Any:
    data = tmp_path / "heldout.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    return await evaluate_ab(
        read_eval_rows(data),
        model_a=(models, "base"),
        model_b=(models, "tuned"),
        judges=judges,
        options=JudgeOptions(**options),
    )


async def test_fair_judge_gives_exact_counts(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = fair_judge
    report = await run_ab(
        tmp_path, models, [Judge("fair", judge_provider, "claude-haiku-4-5")], seed=7
    )
    a, b, ties = expected_counts()
    assert (report.counts.a_wins, report.counts.b_wins, report.counts.ties) == (a, b, ties)
    assert report.counts.n == N
    assert report.counts.b_win_rate == pytest.approx((b + ties / 2) / N)
    assert report.verdict == "b"
    assert not report.position_bias.biased
    # Both models' answers were shown first in exactly half the items.
    firsts = [j.presentation.response_a for j in report.judgments]
    assert firsts.count("a") == firsts.count("b") == N // 2
    # In-domain / out-of-domain split, from the data's own definition.
    in_b = sum(1 for i in range(N // 2) if tuned_correct(i) and not base_correct(i))
    assert report.by_tag["in"].b_wins == in_b
    assert report.by_tag["in"].n + report.by_tag["out"].n == N
    assert not any("only" in w for w in report.warnings)


async def test_first_position_judge_cannot_decide_and_is_reported_biased(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = first_position_judge
    report = await run_ab(
        tmp_path, models, [Judge("lazy", judge_provider, "claude-haiku-4-5")], seed=3
    )
    assert report.position_bias.first_position_rate == 1.0
    assert report.position_bias.biased
    assert report.per_judge["lazy"].position_bias.biased
    assert report.verdict == "undecided"
    # Balanced orders: its "wins" split evenly however the seed falls.
    assert report.counts.a_wins == report.counts.b_wins == N // 2
    assert any("position-biased" in w for w in report.warnings)


async def test_first_position_judge_in_both_orders_is_all_ties(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = first_position_judge
    report = await run_ab(
        tmp_path,
        models,
        [Judge("lazy", judge_provider, "claude-haiku-4-5")],
        seed=3,
        both_orders=True,
    )
    assert (report.counts.a_wins, report.counts.b_wins, report.counts.ties) == (0, 0, N)
    assert report.counts.b_win_rate == 0.5
    assert report.verdict == "undecided"
    assert report.position_bias.first_position_rate == 1.0
    assert report.position_bias.order_consistency == 0.0
    assert len(report.judgments) == 2 * N
    assert {d.kind for d in report.disagreements} == {"orders"}


async def test_fair_judge_in_both_orders_is_consistent_and_unbiased(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = fair_judge
    report = await run_ab(
        tmp_path,
        models,
        [Judge("fair", judge_provider, "claude-haiku-4-5")],
        both_orders=True,
    )
    a, b, ties = expected_counts()
    assert (report.counts.a_wins, report.counts.b_wins, report.counts.ties) == (a, b, ties)
    assert report.position_bias.first_position_rate == 0.5
    assert report.position_bias.order_consistency == 1.0
    assert not report.position_bias.biased


async def test_two_judges_kappa_and_disagreements(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    def by_model(body: dict[str, Any]) -> str:
        return fair_judge(body) if body["model"] == "claude-fair" else first_position_judge(body)

    anthropic_server.reply_fn = by_model
    report = await run_ab(
        tmp_path,
        models,
        [Judge("fair", judge_provider, "claude-fair"), Judge("lazy", judge_provider, "claude-x")],
        seed=11,
    )
    fair = report.items
    fair_verdicts = [i.by_judge["fair"] for i in fair]
    lazy_verdicts = [i.by_judge["lazy"] for i in fair]
    assert report.per_judge["lazy"].position_bias.biased
    assert not report.per_judge["fair"].position_bias.biased
    # Kappa from the two judges' own verdict lists, computed here by hand.
    n = len(fair_verdicts)
    p_o = sum(1 for x, y in zip(fair_verdicts, lazy_verdicts, strict=True) if x == y) / n
    p_e = sum(fair_verdicts.count(k) / n * lazy_verdicts.count(k) / n for k in ("a", "b", "tie"))
    assert report.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    differing = {i.item_id for i in fair if i.by_judge["fair"] != i.by_judge["lazy"]}
    assert {d.item_id for d in report.disagreements if d.kind == "judges"} == differing
    assert report.verdict == "undecided"  # the biased judge contaminates the consensus


async def test_repeated_runs_report_variance(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = fair_judge
    report = await run_ab(
        tmp_path, models, [Judge("fair", judge_provider, "claude-haiku-4-5")], runs=3
    )
    assert report.repeats is not None
    assert len(report.repeats.b_win_rates) == 3
    # A deterministic fair judge gives the same rate in every run: zero variance.
    assert report.repeats.variance == pytest.approx(0.0)
    assert len({j.run for j in report.judgments}) == 3


async def test_small_sample_warns(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    anthropic_server.reply_fn = fair_judge
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()[:8]), encoding="utf-8")
    report = await evaluate_ab(
        read_eval_rows(data),
        model_a=(models, "base"),
        model_b=(models, "tuned"),
        judges=[Judge("fair", judge_provider, "claude-haiku-4-5")],
    )
    assert report.counts.n == 8
    assert any("only 8 items" in w for w in report.warnings)


async def test_unreadable_judge_reply_is_counted_invalid(
    tmp_path: Path,
    models: OpenAIChatProvider,
    judge_provider: AnthropicChatProvider,
    anthropic_server: FakeAnthropicServer,
) -> None:
    replies = iter(["I like the first one"] + [verdict("tie")] * (N - 1))
    anthropic_server.reply_fn = lambda body: next(replies)
    report = await run_ab(
        tmp_path, models, [Judge("j", judge_provider, "claude-haiku-4-5")], concurrency=1
    )
    assert report.per_judge["j"].invalid == 1
    assert report.failed_judgments == 0  # a reply was received: not a failed call
    assert any("no readable verdict" in w for w in report.warnings)
    assert report.counts.n == N - 1


# The command


def eval_ab(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers())
    args = parser.parse_args(["eval-ab", *argv])
    return int(args.handler(args))


def test_cli_json_shape_and_exact_counts(
    tmp_path: Path,
    openai_env: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai_env.models = None
    openai_env.reply_fn = answering_models
    anthropic_env.reply_fn = fair_judge
    data = tmp_path / "heldout.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    report_path = tmp_path / "report.json"
    code = eval_ab(
        "--data", str(data), "--model-a", "openai:base", "--model-b", "openai:tuned",
        "--judge", "anthropic:claude-haiku-4-5", "--both-orders", "--seed", "5",
        "--report", str(report_path), "--json",
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    a, b, ties = expected_counts()
    assert (out["n"], out["a_wins"], out["b_wins"], out["ties"]) == (N, a, b, ties)
    assert {"b_win_rate", "ci95", "position_bias", "judges", "kappa"} <= out.keys()
    assert out["position_bias"]["first_position_rate"] == 0.5
    assert out["kappa"] is None
    assert out["judges"]["anthropic:claude-haiku-4-5"]["b_wins"] == b
    stored = json.loads(report_path.read_text())
    assert len(stored["judgments"]) == 2 * N
    assert all("presentation" in j for j in stored["judgments"])
    # The report names what model B was (a hosted model: its id).
    assert stored["tuned_identity"]["model"] == "openai:tuned"


def test_cli_unusable_input_exits_2(
    tmp_path: Path, openai_env: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": 1, "messages": []}\n', encoding="utf-8")
    code = eval_ab(
        "--data", str(data), "--model-a", "openai:x", "--model-b", "openai:y",
        "--judge", "openai:z",
    )  # fmt: skip
    assert code == 2
    assert "bad.jsonl:1" in capsys.readouterr().err


def test_cli_missing_judge_key_exits_2(
    tmp_path: Path, openai_env: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(rows(1)[0]) + "\n", encoding="utf-8")
    code = eval_ab(
        "--data", str(data), "--model-a", "openai:x", "--model-b", "openai:y",
        "--judge", "anthropic:claude-haiku-4-5",
    )  # fmt: skip
    assert code == 2
    assert "ANTHROPIC_API_KEY" in capsys.readouterr().err


def test_cli_failed_judge_calls_exit_1(
    tmp_path: Path,
    openai_env: FakeOpenAIServer,
    anthropic_env: FakeAnthropicServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    openai_env.models = None
    openai_env.reply_fn = answering_models
    anthropic_env.reply_fn = lambda body: anthropic_env.error_response(400, "prompt is too long")
    data = tmp_path / "heldout.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(4)), encoding="utf-8")
    code = eval_ab(
        "--data", str(data), "--model-a", "openai:base", "--model-b", "openai:tuned",
        "--judge", "anthropic:claude-haiku-4-5", "--json",
    )  # fmt: skip
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["failed"] == 4 and out["n"] == 0


def test_cli_base_url_serves_the_openai_models_only(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, capsys: pytest.CaptureFixture[str]
) -> None:
    local = FakeOpenAIServer(api_key=None, models=None)  # a keyless vLLM-like server
    local.start()
    try:
        local.reply_fn = answering_models
        anthropic_env.reply_fn = fair_judge
        data = tmp_path / "heldout.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
        code = eval_ab(
            "--data", str(data), "--model-a", "openai:base", "--model-b", "openai:tuned",
            "--judge", "anthropic:claude-haiku-4-5", "--base-url", local.v1_url, "--json",
        )  # fmt: skip
    finally:
        local.stop()
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["a_wins"], out["b_wins"], out["ties"]) == expected_counts()
    assert len(local.chat_bodies()) == 2 * N
    assert len(anthropic_env.message_bodies()) == N


def test_a_vertex_sessions_gemini_held_out_rows_give_their_prompts_and_answers(
    tmp_path: Path,
) -> None:
    """A Vertex session's held-out file is its data converted to Gemini's format: the A/B and
    the grader comparison read the same prompts and references from it as from the chat rows."""
    from ftwizard.datasets.conversion import convert_example
    from ftwizard.datasets.formats import DatasetFormat

    chat = rows(3)
    gemini = [convert_example(r, DatasetFormat.CHAT, DatasetFormat.GEMINI) for r in chat]
    assert all("contents" in g and "messages" not in g for g in gemini)
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    (tmp_path / "gemini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gemini))
    want = read_eval_rows(tmp_path / "chat.jsonl")
    got = read_eval_rows(tmp_path / "gemini.jsonl")
    assert [r.prompt for r in got] == [r.prompt for r in want]
    assert [r.reference for r in got] == [r.reference for r in want]
    assert got[0].prompt[-1].role == "user"
