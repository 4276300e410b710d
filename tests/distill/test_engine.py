"""Distillation against fake teachers with a known accuracy: exactly the correct rows are kept,
the accuracy is reported as practitioners write it, and the metadata, merge and estimate hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftwizard.distill.engine import run_distill
from ftwizard.distill.estimate import estimate_distill_cost
from ftwizard.distill.journal import GenerationEntry, Journal
from ftwizard.distill.options import DistillOptions, journal_path_for, metadata_path_for
from ftwizard.errors import InputError
from ftwizard.graders.loading import load_grader
from ftwizard.pricing import teacher_cost
from ftwizard.providers.models import ModelRef
from ftwizard.providers.retry import RetryPolicy
from tests.fakes.anthropic_server import FakeAnthropicServer, MessageReply
from tests.fakes.openai_server import ChatReply, FakeOpenAIServer

FAST = RetryPolicy(max_attempts=2, initial_delay_s=0.01, max_delay_s=0.02)
N = 20
GRADER = """type: string_check
name: exact
input: "{{sample.output_text}}"
reference: "{{item.label}}"
operation: eq
"""


def label(i: int) -> str:
    return f"<label-{i:03d}>"


def teacher_right(i: int) -> bool:
    """The fake teacher's known accuracy: 16 of 20."""
    return i % 5 != 0


def question(i: int) -> str:
    return f"Question {i}: which label?"


def index_of(params: dict[str, Any]) -> int:
    last = params["messages"][-1]["content"]
    return int(last.split("Question ", 1)[1].split(":")[0])


def teacher_reply(params: dict[str, Any]) -> MessageReply:
    i = index_of(params)
    return MessageReply(
        label(i) if teacher_right(i) else "<wrong>", input_tokens=100, output_tokens=10
    )


def openai_teacher_reply(body: dict[str, Any]) -> ChatReply:
    i = index_of(body)
    return ChatReply(
        label(i) if teacher_right(i) else "<wrong>", prompt_tokens=100, completion_tokens=10
    )


def write_rows(path: Path, n: int = N, **extra: Any) -> Path:
    rows = [
        {"id": i, "messages": [{"role": "user", "content": question(i)}], "label": label(i)} | extra
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def grader(tmp_path: Path) -> Any:
    path = tmp_path / "grader.yaml"
    path.write_text(GRADER, encoding="utf-8")
    return load_grader(path)


def anthropic_options(server: FakeAnthropicServer, **fields: Any) -> DistillOptions:
    teacher = ModelRef(provider="anthropic", name="claude-haiku-4-5", base_url=server.base_url)
    return DistillOptions(teacher=teacher, retry=FAST, poll_interval_s=0.0, **fields)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_batch_teacher_keeps_exactly_the_correct_rows(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    anthropic_env.reply_fn = teacher_reply
    anthropic_env.batch_polls_to_end = 2
    out = tmp_path / "train.jsonl"
    result = await run_distill(
        write_rows(tmp_path / "data.jsonl"),
        out,
        anthropic_options(anthropic_env, mode="batch", keep_fields=["id"]),
        grader=grader,
        grader_name="grader.yaml",
    )
    expected = [i for i in range(N) if teacher_right(i)]
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == expected
    assert all(r["messages"][-1] == {"role": "assistant", "content": label(r["id"])} for r in rows)
    assert "label" not in rows[0]  # ground truth is not training input
    assert (result.n, result.kept, result.correct, result.graded) == (N, 16, 16, N)
    assert result.accuracy_text == "16 / 20 correct, 80.0 %"
    assert result.teacher_accuracy == pytest.approx(0.8)
    assert result.mode == "batch" and len(result.batch_ids) == 1
    assert len(anthropic_env.requests_to("/v1/messages/batches", "POST")) == 1
    assert anthropic_env.requests_to("/v1/messages", "POST") == []
    # Batch price: half of 20 x (100 in, 10 out) at the teacher's price.
    assert result.cost_usd == pytest.approx(teacher_cost("claude-haiku-4-5", 2000, 200) / 2)
    meta = json.loads(metadata_path_for(out).read_text())
    assert meta["teacher"] == "anthropic:claude-haiku-4-5" and meta["kept"] == 16
    assert meta["accuracy_text"] == "16 / 20 correct, 80.0 %"


async def test_openai_compatible_teacher_direct_and_rerun_pays_nothing(
    tmp_path: Path, grader: Any
) -> None:
    server = FakeOpenAIServer(api_key=None, models=None)
    server.start()
    try:
        server.reply_fn = openai_teacher_reply
        teacher = ModelRef(provider="openai", name="teacher-70b", base_url=server.v1_url)
        options = DistillOptions(teacher=teacher, retry=FAST, keep_fields=["id"])
        data = write_rows(tmp_path / "data.jsonl")
        out = tmp_path / "train.parquet"
        first = await run_distill(data, out, options, grader=grader)
        assert first.mode == "direct" and first.kept == 16 and first.requests_sent == N
        assert len(server.chat_bodies()) == N
        second = await run_distill(data, out, options, grader=grader)
        assert len(server.chat_bodies()) == N  # nothing requested again
        assert second.reused == N and second.requests_sent == 0 and second.kept == 16
        assert second.cost_usd_this_run == 0.0
    finally:
        server.stop()
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [i for i in range(N) if teacher_right(i)]


async def test_trace_log_with_context_shown_to_teacher_only(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    anthropic_env.reply_fn = teacher_reply
    log = tmp_path / "traces.jsonl"
    lines = [
        {
            "request": {
                "model": "prod-model",
                "messages": [
                    {"role": "system", "content": "You label things."},
                    {"role": "user", "content": question(i)},
                ],
            },
            "response": "whatever production said",
            "label": label(i),
            "context": {"doc": f"doc {i}"},
        }
        for i in range(5)
    ]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    out = tmp_path / "train.jsonl"
    result = await run_distill(
        log,
        out,
        anthropic_options(anthropic_env, mode="direct", system_prompt="Be exact."),
        grader=grader,
    )
    bodies = anthropic_env.message_bodies()
    assert len(bodies) == 5
    assert all("Be exact." in b["system"] and "Context:" in b["system"] for b in bodies)
    assert any('"doc": "doc 1"' in b["system"] for b in bodies)
    rows = read_jsonl(out)
    assert result.kept == 4 and len(rows) == 4
    assert rows[0]["messages"][0] == {"role": "system", "content": "You label things."}
    assert all("Context" not in json.dumps(r) for r in rows)


async def test_merge_into_existing_dataset_by_key(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    anthropic_env.reply_fn = teacher_reply
    existing = tmp_path / "existing.jsonl"
    existing.write_text(
        "".join(
            json.dumps(
                {
                    "id": i,
                    "messages": [
                        {"role": "user", "content": question(i)},
                        {"role": "assistant", "content": "old answer"},
                    ],
                }
            )
            + "\n"
            for i in range(N + 3)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "merged.jsonl"
    result = await run_distill(
        write_rows(tmp_path / "data.jsonl"),
        out,
        anthropic_options(anthropic_env, mode="direct", merge_into=existing, key_columns=["id"]),
        grader=grader,
    )
    rows = read_jsonl(out)
    assert len(rows) == N + 3
    answers = {r["id"]: r["messages"][-1]["content"] for r in rows}
    assert all(answers[i] == label(i) for i in range(N) if teacher_right(i))
    assert all(answers[i] == "old answer" for i in range(N + 3) if i >= N or not teacher_right(i))
    assert result.merge is not None
    assert (result.merge.replaced, result.merge.unmatched) == (16, 7)


async def test_estimate_before_spending_and_after_a_run(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    anthropic_env.reply_fn = lambda params: "y"
    data = tmp_path / "data.jsonl"
    data.write_text(
        json.dumps({"prompt": "x" * 400, "label": "y", "completion": "z" * 40}) + "\n",
        encoding="utf-8",
    )
    options = anthropic_options(anthropic_env, mode="direct", max_tokens=100)
    out = tmp_path / "o.jsonl"
    estimate = estimate_distill_cost(data, options, journal=journal_path_for(out))
    # 400 characters -> 100 tokens + 4 per message; the old answer's 40 characters -> 10.
    assert (estimate.input_tokens, estimate.output_tokens_expected) == (104, 10)
    assert estimate.output_tokens_max == 100
    assert estimate.usd_expected == pytest.approx(teacher_cost("claude-haiku-4-5", 104, 10))
    assert estimate.to_request == 1 and not estimate.batch
    assert anthropic_env.requests == []  # estimating spends nothing
    await run_distill(data, out, options, grader=None)
    again = estimate_distill_cost(data, options, journal=journal_path_for(out))
    assert (again.already_paid, again.to_request, again.input_tokens) == (1, 0, 0)


async def test_duplicate_prompts_are_requested_once(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    anthropic_env.reply_fn = teacher_reply
    data = tmp_path / "dup.jsonl"
    row = {"messages": [{"role": "user", "content": question(1)}], "label": label(1)}
    data.write_text((json.dumps(row) + "\n") * 3, encoding="utf-8")
    result = await run_distill(
        data, tmp_path / "o.jsonl", anthropic_options(anthropic_env, mode="direct"), grader=grader
    )
    assert len(anthropic_env.message_bodies()) == 1
    assert result.kept == 3


async def test_row_without_prompt_names_its_line(
    tmp_path: Path, anthropic_env: FakeAnthropicServer, grader: Any
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(
        json.dumps({"prompt": "fine", "label": "x"}) + "\n" + json.dumps({"label": "x"}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        await run_distill(data, tmp_path / "o.jsonl", anthropic_options(anthropic_env))
    assert "bad.jsonl:2" in str(caught.value)
    assert anthropic_env.requests == []


def test_batch_mode_is_refused_for_a_teacher_without_a_batch_api(tmp_path: Path) -> None:
    import asyncio

    teacher = ModelRef(provider="vertex", name="gemini-2.5-flash")
    with pytest.raises(InputError, match="vertex: teacher runs in direct mode"):
        asyncio.run(
            run_distill(
                write_rows(tmp_path / "d.jsonl"),
                tmp_path / "o.jsonl",
                DistillOptions(teacher=teacher, mode="batch"),
            )
        )


def test_journal_ignores_a_torn_last_line_and_appends_cleanly(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append([GenerationEntry(request_id="r-1", text="one", model="m")])
    with journal.path.open("ab") as fh:
        fh.write(b'{"kind": "generation", "request_id": "r-2", "te')  # killed mid-write
    assert set(journal.load().generations) == {"r-1"}
    journal.append([GenerationEntry(request_id="r-3", text="three", model="m")])
    assert set(journal.load().generations) == {"r-1", "r-3"}


def test_journal_corrupted_in_the_middle_is_an_input_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.path.write_text(
        "not json\n" + GenerationEntry(request_id="r", text="t", model="m").model_dump_json() + "\n"
    )
    with pytest.raises(InputError, match=r"j\.jsonl:1"):
        journal.load()
