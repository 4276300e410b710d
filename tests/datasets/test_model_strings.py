"""A model string means the same in ``validate`` as in every other command (issue 14)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ftwizard.datasets.commands import register
from ftwizard.datasets.targets import resolve_target
from ftwizard.datasets.tokens import load_tiktoken_encoding
from ftwizard.datasets.validation import validate_file
from ftwizard.errors import InputError
from ftwizard.session import Backend


def _chat_file(path: Path, n: int = 12) -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Résumé of the ticket number {i} 🙂?"},
                {"role": "assistant", "content": f"Ticket {i} is about the invoice."},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_the_readme_model_syntax_is_the_openai_model() -> None:
    assert resolve_target("openai:gpt-3.5-turbo") == resolve_target("gpt-3.5-turbo")
    target = resolve_target("openai:gpt-3.5-turbo")
    assert (target.backend, target.encoding) == (Backend.openai, "cl100k_base")
    assert resolve_target("openai:my-proxy-model").backend is Backend.openai
    assert resolve_target("vertex:gemini-2.5-flash").backend is Backend.vertex
    assert resolve_target("local:builtin-tiny").backend is Backend.local


def test_a_provider_that_trains_nothing_here_is_refused() -> None:
    with pytest.raises(InputError, match="anthropic:"):
        resolve_target("anthropic:claude-sonnet-4-5")


def test_validate_with_the_prefixed_name_counts_exactly_and_prices(tmp_path: Path) -> None:
    if load_tiktoken_encoding("cl100k_base")[0] is None:
        pytest.skip("tiktoken's cl100k_base is not available offline here")
    data = _chat_file(tmp_path / "d.jsonl")
    prefixed = validate_file(data, model="openai:gpt-3.5-turbo")
    bare = validate_file(data, model="gpt-3.5-turbo")
    assert prefixed.backend is Backend.openai and prefixed.tokens.exact
    assert prefixed.tokens.total == bare.tokens.total
    assert prefixed.cost[0].usd == bare.cost[0].usd and (prefixed.cost[0].usd or 0) > 0


def test_snapshots_have_their_own_limits() -> None:
    assert resolve_target("gpt-3.5-turbo-0613").max_tokens_per_example == 4_096
    assert resolve_target("gpt-3.5-turbo-0125").max_tokens_per_example == 16_385
    assert resolve_target("gpt-3.5-turbo-1106").max_tokens_per_example == 16_385


def test_the_compared_gpt_35_row_uses_its_own_cl100k_count(tmp_path: Path) -> None:
    if load_tiktoken_encoding("cl100k_base")[0] is None:
        pytest.skip("tiktoken's cl100k_base is not available offline here")
    data = _chat_file(tmp_path / "d.jsonl")
    # gpt-4.1-mini (o200k, or an estimate where o200k is not installed) with the others compared
    default = validate_file(data)
    assert default.tokens.counter != "cl100k_base"
    own = validate_file(data, model="gpt-3.5-turbo", compare=False)
    row = next(c for c in default.cost if c.model == "gpt-3.5-turbo")
    assert row.usd == own.cost[0].usd


def test_the_cli_reads_the_readme_syntax_as_the_openai_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="ftwizard")
    register(parser.add_subparsers())
    data = _chat_file(tmp_path / "d.jsonl")
    args = parser.parse_args(["validate", str(data), "--model", "openai:gpt-3.5-turbo", "--json"])
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    # Read as a local model this was one "local" row at $0.
    assert [(c["backend"], c["model"]) for c in out["cost"]] == [("openai", "gpt-3.5-turbo")]
    assert out["cost"][0]["usd"] > 0
    args = parser.parse_args(["validate", str(data), "--model", "anthropic:claude-x", "--json"])
    assert args.handler(args) == 2
    assert "anthropic:" in json.loads(capsys.readouterr().out)["error"]
