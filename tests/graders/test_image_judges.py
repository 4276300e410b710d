"""Judges receive the row's images: ``input_image`` parts in a grader spec (OpenAI's shape) are
sent to any judge, and a row's images reach a judge whose grader names none."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from ftwizard.graders.export_openai import openai_schema_problems, to_openai_grader
from ftwizard.graders.loading import parse_grader
from ftwizard.graders.results import Sample
from ftwizard.graders.runner import GraderRunner
from ftwizard.graders.samples import grading_item
from ftwizard.providers.base import ChatMessage, GenerationRequest
from ftwizard.providers.vertex.chat import VertexChatProvider
from tests.fakes.images import png
from tests.scripted_judge import ScriptedJudge

JUDGE = {
    "type": "score_model",
    "name": "judge",
    "model": "gpt-4o-2024-08-06",
    "range": [0, 1],
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Reference: {{ item.reference_answer }}"},
                {"type": "input_text", "text": "Answer: {{ sample.output_text }}"},
            ],
        }
    ],
}


def _reply(_: GenerationRequest) -> str:
    return json.dumps({"steps": [{"description": "d", "conclusion": "ok"}], "result": 1})


def _row(image: str) -> dict[str, Any]:
    return {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Which colour?"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            },
            {"role": "assistant", "content": "red"},
        ]
    }


def _grade(spec: dict[str, Any], rows: list[dict[str, Any]]) -> ScriptedJudge:
    judge = ScriptedJudge(_reply)
    with GraderRunner(parse_grader(spec), judge=judge) as runner:
        results = runner.grade_sync(rows, [Sample.from_output("red") for _ in rows])
    assert all(r.error is None for r in results), results
    return judge


def test_a_rows_image_reaches_a_judge_whose_grader_names_none(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png())
    judge = _grade(JUDGE, [_row(str(tmp_path / "red.png"))])
    [request] = judge.requests
    [image] = request.messages[-1].images
    assert base64.b64decode(image.split(",", 1)[1]) == png()


def test_input_image_parts_render_their_template(tmp_path: Path) -> None:
    spec = json.loads(json.dumps(JUDGE))
    spec["input"][0]["content"].append(
        {"type": "input_image", "image_url": "{{ item.image_url }}", "detail": "auto"}
    )
    judge = _grade(spec, [_row("https://example.com/cat.png")])
    assert judge.requests[0].messages[-1].images == ["https://example.com/cat.png"]


def test_text_rows_send_no_images() -> None:
    row = {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
    assert "image_url" not in grading_item(row)
    judge = _grade(JUDGE, [row])
    assert all(not m.images for m in judge.requests[0].messages)


def test_openai_grader_export_shows_the_image_and_matches_the_schema() -> None:
    exported = to_openai_grader(parse_grader(JUDGE), with_images=True)
    parts = exported["input"][-1]["content"]
    assert parts[-1] == {
        "type": "input_image",
        "image_url": "{{ item.image_url }}",
        "detail": "auto",
    }
    assert openai_schema_problems(exported) == []
    plain = to_openai_grader(parse_grader(JUDGE))
    assert all(p["type"] == "input_text" for p in plain["input"][-1]["content"])


def _image_request() -> GenerationRequest:
    uri = "data:image/png;base64," + base64.b64encode(png()).decode()
    return GenerationRequest(
        model="m",
        messages=[ChatMessage(role="user", content="Which colour?", images=[uri])],
    )


def test_gemini_gets_inline_data_parts() -> None:
    [turn] = VertexChatProvider.build_contents(_image_request())
    image, text = turn["parts"]
    assert image["inline_data"]["mime_type"] == "image/png"
    assert text == {"text": "Which colour?"}


def test_a_local_image_path_is_sent_to_gemini_as_inline_data(tmp_path: Path) -> None:
    (tmp_path / "red.png").write_bytes(png())
    request = GenerationRequest(
        model="m",
        messages=[ChatMessage(role="user", content="Colour?", images=[str(tmp_path / "red.png")])],
    )
    [turn] = VertexChatProvider.build_contents(request)
    assert base64.b64decode(turn["parts"][0]["inline_data"]["data"]) == png()
