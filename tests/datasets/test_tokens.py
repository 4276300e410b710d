"""Token counts agree with the OpenAI cookbook, use local tokenizers, and degrade to labelled
estimates instead of failing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftwizard.datasets.problems import Code
from ftwizard.datasets.stats import auto_epochs, percentile, token_stats
from ftwizard.datasets.targets import Backend, resolve_target
from ftwizard.datasets.tokens import (
    EstimateCounter,
    count_messages,
    counter_for,
    load_tiktoken_encoding,
)
from ftwizard.datasets.validation import validate_file
from tests.conftest import REPO_ROOT
from tests.tiny_tokenizer import build_tiny_tokenizer

DATA = REPO_ROOT / "tests" / "data" / "datasets"


def cookbook_num_tokens_from_messages(messages, encoding) -> int:
    """The cookbook's function (Chat_finetuning_data_prep.ipynb), verbatim in behaviour."""
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += len(encoding.encode(value))
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3
    return num_tokens


@pytest.fixture(scope="module")
def cl100k():
    encoding, reason = load_tiktoken_encoding("cl100k_base")
    assert encoding is not None, reason
    return encoding


def test_counts_agree_with_the_cookbook(cl100k) -> None:
    rows = [json.loads(x) for x in (DATA / "chat_valid.jsonl").read_text().splitlines()]
    rows.append(
        {
            "messages": [
                {"role": "user", "content": "héllo wörld 🐦", "name": "ann"},
                {"role": "assistant", "content": "Tweet!\nTweet!"},
            ]
        }
    )
    counter = counter_for(resolve_target("gpt-3.5-turbo"))
    assert counter.exact
    for row in rows:
        assert count_messages(row["messages"], counter) == cookbook_num_tokens_from_messages(
            row["messages"], cl100k
        )


def test_report_total_is_the_sum_of_cookbook_counts(cl100k) -> None:
    rows = [json.loads(x) for x in (DATA / "chat_valid.jsonl").read_text().splitlines()]
    expected = [cookbook_num_tokens_from_messages(r["messages"], cl100k) for r in rows]
    report = validate_file(DATA / "chat_valid.jsonl", model="gpt-3.5-turbo")
    assert report.tokens.exact
    assert report.tokens.total == sum(expected)
    assert report.tokens.min == min(expected) and report.tokens.max == max(expected)


def test_unloadable_encoding_falls_back_to_a_labelled_estimate(monkeypatch) -> None:
    import tiktoken

    def offline(name: str):
        raise ConnectionError("no network")

    load_tiktoken_encoding.cache_clear()
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    try:
        counter = counter_for(resolve_target("gpt-4o-mini"))
        assert isinstance(counter, EstimateCounter)
        assert not counter.exact and "could not load o200k_base" in (counter.note or "")
        report = validate_file(DATA / "chat_valid.jsonl", model="gpt-4o-mini")
    finally:
        load_tiktoken_encoding.cache_clear()
    assert not report.tokens.exact and report.tokens.total > 0
    assert Code.TOKEN_ESTIMATE in {p.code for p in report.warnings}


def test_gemini_counts_are_labelled_estimates() -> None:
    report = validate_file(DATA / "gemini_valid.jsonl")
    assert report.backend is Backend.vertex
    assert not report.tokens.exact and "Gemini" in (report.tokens.note or "")


def test_local_model_counts_with_its_own_tokenizer(tmp_path: Path) -> None:
    folder = build_tiny_tokenizer(tmp_path / "tiny-model")
    target = resolve_target(str(folder))
    assert target.backend is Backend.local
    counter = counter_for(target)
    assert counter.exact
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    text = "birds sing at dawn"
    assert counter.count_many([text]) == [len(tok(text, add_special_tokens=False)["input_ids"])]
    report = validate_file(DATA / "chat_valid.jsonl", model=str(folder))
    assert report.tokens.exact and report.cost[0].usd == 0.0


def test_unknown_local_model_is_an_estimate_not_a_crash() -> None:
    report = validate_file(DATA / "chat_valid.jsonl", model="my-org/some-model")
    assert report.backend is Backend.local and not report.tokens.exact


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(1, 25), (10, 10), (20, 5), (34, 3), (100, 3), (8333, 3), (8334, 2), (30_000, 1)],
)
def test_auto_epochs_follows_the_cookbook_rule(n: int, epochs: int) -> None:
    assert auto_epochs(n) == epochs


def test_distribution_uses_nearest_rank_percentiles() -> None:
    counts = list(range(1, 101))
    stats = token_stats(counts, limit=90)
    assert (stats.min, stats.p5, stats.p50, stats.p95, stats.max) == (1, 5, 50, 95, 100)
    assert stats.over_limit == 10 and stats.total == 5050
    assert percentile([], 0.5) == 0


def test_inference_cost_per_call_uses_the_data_average(cl100k) -> None:
    rows = [json.loads(x) for x in (DATA / "chat_valid.jsonl").read_text().splitlines()]
    totals = [cookbook_num_tokens_from_messages(r["messages"], cl100k) for r in rows]
    answers = [len(cl100k.encode(r["messages"][-1]["content"])) for r in rows]
    report = validate_file(DATA / "chat_valid.jsonl", model="gpt-3.5-turbo")
    assert report.answer_tokens_mean == pytest.approx(sum(answers) / len(rows))
    assert report.prompt_tokens_mean == pytest.approx((sum(totals) - sum(answers)) / len(rows))
    call = report.inference
    assert call is not None and call.input_tokens == round(report.prompt_tokens_mean)
    # gpt-3.5-turbo: base $0.50/$1.50, fine-tuned $3/$6 per 1M tokens
    assert call.base_usd == pytest.approx(
        (call.input_tokens * 0.50 + call.output_tokens * 1.50) / 1e6
    )
    assert call.tuned_usd == pytest.approx(
        (call.input_tokens * 3.00 + call.output_tokens * 6.00) / 1e6
    )


def test_counting_on_worker_threads_gives_the_same_report(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    rows = []
    for i in range(5000):
        rows.append(
            json.dumps(
                {
                    "messages": [
                        {"role": "system", "content": "You know birds."},
                        {
                            "role": "user",
                            "content": f"Tell me about bird {i} " + "and its song " * (i % 7),
                        },
                        {
                            "role": "assistant",
                            "content": f"Bird {i} sings <|endoftext|> at dawn. " * (i % 3)
                            or "It is quiet.",
                        },
                    ]
                }
            )
        )
    path.write_text("\n".join(rows) + "\n")
    inline = validate_file(path, model="gpt-3.5-turbo", threads=0)
    threaded = validate_file(path, model="gpt-3.5-turbo", threads=2)
    assert inline.tokens.exact and inline.tokens.total > 0
    assert threaded.model_dump() == inline.model_dump()


def test_batched_counts_equal_one_by_one_counts_on_awkward_text(cl100k) -> None:
    texts = [
        "",
        " ",
        "a\n\n",
        "  trailing  ",
        "<|endoftext|>",
        "x<|endoftext|>y",
        "🐦🐦",
        "don't",
        "123456789",
        "\r\n",
        "word " * 500,
        "lone \ud800 surrogate",
    ]
    counter = counter_for(resolve_target("gpt-3.5-turbo"))
    batch = counter.count_many(texts * 2)
    one_by_one = [len(cl100k.encode_ordinary(t)) for t in texts] * 2
    assert batch == one_by_one


class WordCounter:
    """A counter standing in for a provider's token-count API: one token per word."""

    name = "api"
    exact = True
    note = None

    def count_many(self, texts):
        return [len(t.split()) for t in texts]


def test_a_counter_from_the_provider_makes_gemini_counts_exact() -> None:
    report = validate_file(DATA / "gemini_valid.jsonl", counter=WordCounter())
    assert report.tokens.exact and report.tokens.counter == "api"
    # example 1: system "You know birds." (3 words), user "Name bird 1." (3), model
    # "Bird 1 is a sparrow." (5); roles system/user/assistant count 1 word each
    assert report.tokens.min == 3 + 3 * 3 + (3 + 1) + (3 + 1) + (5 + 1)
    assert Code.TOKEN_ESTIMATE not in {p.code for p in report.warnings}
