"""Conversions between the dataset formats, through one neutral conversation shape.

Every format is read into a :class:`Conversation` (chat messages, the rejected answer for
preference data, tools, and any extra item fields) and written out from it. An example that
cannot be expressed in the target format (a chat example has no rejected answer for DPO, a
multi-turn chat is not one prompt/completion) is skipped with a reason, never silently changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ftwizard.datasets.checks import check_example
from ftwizard.datasets.formats import ConversionSkip, DatasetFormat
from ftwizard.datasets.images import find_images, may_hold_images
from ftwizard.datasets.loading import SourceKind, iter_records
from ftwizard.datasets.trl_checks import implicit_prompt
from ftwizard.datasets.writing import write_records
from ftwizard.errors import InputError

REFERENCE_FIELD = "reference_answer"
"""The RFT item field that holds the expected answer when converting from SFT data."""

PREFERENCE_FORMATS = frozenset(
    {DatasetFormat.DPO, DatasetFormat.TRL_DPO, DatasetFormat.GEMINI_PREFERENCE}
)
"""Formats whose examples hold a preferred and a rejected answer."""

ONE_ANSWER_FORMATS = frozenset(
    {
        DatasetFormat.CHAT,
        DatasetFormat.TRL,
        DatasetFormat.RFT,
        DatasetFormat.GEMINI,
        DatasetFormat.PROMPT_COMPLETION,
    }
)
"""Formats that keep one answer per example: preference data loses its rejected answers.

(``prompt_only`` keeps no answer at all, by definition, and ``text`` is refused per example.)
"""

PREFERRED_ONLY_FLAG = "--preferred-only"


def drops_rejected(src: DatasetFormat, dst: DatasetFormat) -> bool:
    """Whether converting ``src`` to ``dst`` would keep the preferred answers and drop the rest."""
    return src in PREFERENCE_FORMATS and dst in ONE_ANSWER_FORMATS


def _lossless_target(dst: DatasetFormat) -> str:
    """The preference format(s) that keep both answers, for someone who asked for ``dst``."""
    return "gemini_preference" if dst is DatasetFormat.GEMINI else "dpo or trl_dpo"


def rejected_answers_message(src: DatasetFormat, dst: DatasetFormat) -> str:
    """Why a preference-to-one-answer conversion is refused, and how to do it on purpose."""
    keep = _lossless_target(dst)
    return (
        f"{src.value} is preference data and {dst.value} has no place for the rejected "
        "answers: converting would drop every rejected answer and keep only the preferred "
        f"ones. Convert to {keep} to keep both, or pass {PREFERRED_ONLY_FLAG} to make "
        f"{dst.value} data from the preferred answers on purpose "
        f"(ftwizard convert IN OUT --to {dst.value} {PREFERRED_ONLY_FLAG})"
    )


@dataclass(slots=True)
class Conversation:
    """The neutral shape every format converts through."""

    messages: list[dict[str, Any]]
    rejected: dict[str, Any] | None = None
    tools: list[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def to_conversation(data: dict[str, Any], fmt: DatasetFormat) -> Conversation:
    """Read one (already validated) example of format ``fmt``."""
    if fmt in (DatasetFormat.CHAT, DatasetFormat.TRL):
        return Conversation([dict(m) for m in data["messages"]], tools=data.get("tools"))
    if fmt is DatasetFormat.RFT:
        extra = {k: v for k, v in data.items() if k not in ("messages", "tools")}
        messages = [
            {**m, "role": "system"} if m.get("role") == "developer" else dict(m)
            for m in data["messages"]
        ]
        reference = extra.get(REFERENCE_FIELD)
        if isinstance(reference, str) and messages and messages[-1].get("role") != "assistant":
            # the expected answer of an RFT item is what SFT formats train on
            messages.append({"role": "assistant", "content": extra.pop(REFERENCE_FIELD)})
        return Conversation(messages, tools=data.get("tools"), extra=extra)
    if fmt is DatasetFormat.DPO:
        messages = [dict(m) for m in data["input"]["messages"]]
        messages.append(dict(data["preferred_output"][0]))
        return Conversation(
            messages,
            rejected=dict(data["non_preferred_output"][0]),
            tools=data["input"].get("tools"),
        )
    if fmt is DatasetFormat.GEMINI:
        messages = []
        system = data.get("systemInstruction", data.get("system_instruction"))
        if isinstance(system, dict):
            messages.append({"role": "system", "content": _gemini_text(system)})
        for turn in data["contents"]:
            role = "assistant" if turn["role"] == "model" else turn["role"]
            messages.append({"role": role, "content": _gemini_text(turn)})
        return Conversation(messages)
    if fmt is DatasetFormat.GEMINI_PREFERENCE:
        prompt = to_conversation(
            {k: v for k, v in data.items() if k != "completions"}, DatasetFormat.GEMINI
        )
        by_score = {c["score"]: c["completion"] for c in data["completions"]}
        chosen = {"role": "assistant", "content": _gemini_text(by_score[1])}
        rejected = {"role": "assistant", "content": _gemini_text(by_score[0])}
        return Conversation([*prompt.messages, chosen], rejected=rejected)
    if fmt is DatasetFormat.PROMPT_COMPLETION:
        return Conversation(
            _turns(data["prompt"], "user") + _turns(data["completion"], "assistant"),
            extra={k: v for k, v in data.items() if k not in ("prompt", "completion")},
        )
    if fmt is DatasetFormat.PROMPT_ONLY:
        return Conversation(
            _turns(data["prompt"], "user"), extra={k: v for k, v in data.items() if k != "prompt"}
        )
    if fmt is DatasetFormat.TRL_DPO:
        if "prompt" in data:
            shared, chosen_part, rejected_part = data["prompt"], data["chosen"], data["rejected"]
        else:
            shared, chosen_part, rejected_part = implicit_prompt(data["chosen"], data["rejected"])
        prompt = _turns(shared, "user")
        chosen = _turns(chosen_part, "assistant")
        rejected = _turns(rejected_part, "assistant")
        return Conversation(prompt + chosen, rejected=rejected[-1])
    if fmt is DatasetFormat.TEXT:
        raise ConversionSkip(
            "is plain text (TRL language modelling) with no prompt and answer to tell apart"
        )
    raise ValueError(f"unknown format {fmt}")


def _turns(value: Any, role: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [dict(m) for m in value]


def _gemini_text(turn: dict[str, Any]) -> str:
    parts = turn.get("parts") or []
    if any(isinstance(p, dict) and "text" not in p for p in parts):
        raise ConversionSkip("has non-text parts (files or function calls) that only Gemini reads")
    return "".join(p["text"] for p in parts if isinstance(p, dict))


def from_conversation(conv: Conversation, fmt: DatasetFormat) -> dict[str, Any]:
    """Write ``conv`` as one example of ``fmt``; raises :class:`ConversionSkip` when it can't."""
    messages = conv.messages
    if conv.rejected is not None and fmt in ONE_ANSWER_FORMATS:
        # Never quietly turn preference pairs into one-answer examples: the caller strips the
        # rejected answer itself when that is what the user asked for (--preferred-only).
        raise ConversionSkip(
            f"is preference data; {fmt.value} data would keep only the preferred answer. "
            f"Convert to {_lossless_target(fmt)} to keep both, or pass {PREFERRED_ONLY_FLAG} "
            "to keep only the preferred answer"
        )
    if fmt is DatasetFormat.CHAT:
        out: dict[str, Any] = {"messages": _require_answer(messages)}
        if conv.tools:
            out["tools"] = conv.tools
        return out
    if fmt is DatasetFormat.TRL:
        plain = []
        for m in _require_answer(messages):
            item = {"role": m["role"], "content": _text(m.get("content"))}
            if m.get("tool_calls"):
                item["tool_calls"] = m["tool_calls"]
            plain.append(item)
        out = {"messages": plain}
        if conv.tools:
            out["tools"] = conv.tools
        return out
    if fmt is DatasetFormat.RFT:
        prompt = list(messages)
        extra = dict(conv.extra)
        if prompt and prompt[-1].get("role") == "assistant":
            extra.setdefault(REFERENCE_FIELD, _text(prompt.pop().get("content")))
        if not prompt:
            raise ConversionSkip("has no prompt messages")
        prompt = [{**m, "role": "developer"} if m.get("role") == "system" else m for m in prompt]
        out = {"messages": prompt, **extra}
        if conv.tools:
            out["tools"] = conv.tools
        return out
    if fmt is DatasetFormat.DPO:
        prompt, chosen, rejected = _preference(conv)
        inp: dict[str, Any] = {"messages": prompt}
        if conv.tools:
            inp["tools"] = conv.tools
        return {"input": inp, "preferred_output": [chosen], "non_preferred_output": [rejected]}
    if fmt is DatasetFormat.TRL_DPO:
        prompt, chosen, rejected = _preference(conv)
        return {
            "prompt": [{"role": m["role"], "content": _text(m.get("content"))} for m in prompt],
            "chosen": [chosen],
            "rejected": [rejected],
        }
    if fmt is DatasetFormat.GEMINI:
        return _to_gemini(_require_answer(messages))
    if fmt is DatasetFormat.GEMINI_PREFERENCE:
        prompt, chosen, rejected = _preference(conv)
        out = _to_gemini(prompt)
        if "systemInstruction" in out:
            # the preference-tuning guide writes it in snake case
            out["system_instruction"] = {"parts": out.pop("systemInstruction")["parts"]}
        if not out["contents"] or out["contents"][-1]["role"] != "user":
            raise ConversionSkip("does not end with a user turn before the answers")
        out["completions"] = [
            {"score": 1, "completion": _to_gemini([chosen])["contents"][0]},
            {"score": 0, "completion": _to_gemini([rejected])["contents"][0]},
        ]
        return out
    if fmt is DatasetFormat.PROMPT_ONLY:
        prompt = list(messages)
        if prompt and prompt[-1].get("role") == "assistant":
            prompt.pop()
        if not prompt:
            raise ConversionSkip("has no prompt messages")
        return {
            "prompt": [{"role": m["role"], "content": _text(m.get("content"))} for m in prompt],
            **conv.extra,
        }
    if fmt is DatasetFormat.TEXT:
        raise ConversionSkip(
            "would lose its roles as plain text; TRL's SFT reads the conversational trl format"
        )
    if fmt is DatasetFormat.PROMPT_COMPLETION:
        turns = _require_answer(messages)
        if [m["role"] for m in turns] != ["user", "assistant"]:
            raise ConversionSkip(
                "is not a single user turn and answer (system or multi-turn messages); "
                "convert to chat or trl instead"
            )
        return {
            "prompt": _text(turns[0].get("content")),
            "completion": _text(turns[1].get("content")),
            **conv.extra,
        }
    raise ValueError(f"unknown format {fmt}")


def _require_answer(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not any(m.get("role") == "assistant" for m in messages):
        raise ConversionSkip("has no assistant answer to train on")
    return messages


def _preference(
    conv: Conversation,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    if conv.rejected is None:
        raise ConversionSkip("has no rejected answer; preference data needs one")
    prompt = list(conv.messages)
    if not prompt or prompt[-1].get("role") != "assistant":
        raise ConversionSkip("does not end with the preferred assistant answer")
    chosen = prompt.pop()
    return (
        prompt,
        {"role": "assistant", "content": _text(chosen.get("content"))},
        {"role": "assistant", "content": _text(conv.rejected.get("content"))},
    )


def _to_gemini(messages: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    contents = []
    for m in messages:
        role = m.get("role")
        text = _text(m.get("content"))
        if role in ("system", "developer"):
            if contents or "systemInstruction" in out:
                raise ConversionSkip("has a system message after the first turn")
            out["systemInstruction"] = {"role": "system", "parts": [{"text": text}]}
        elif role in ("user", "assistant"):
            if m.get("tool_calls") or not text:
                raise ConversionSkip(
                    "has tool calls or empty turns that Gemini text tuning cannot hold"
                )
            contents.append(
                {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
            )
        else:
            raise ConversionSkip(f"has a {role!r} message that Gemini text tuning cannot hold")
    out["contents"] = contents
    return out


def convert_example(
    data: Any,
    src: DatasetFormat,
    dst: DatasetFormat,
    *,
    preferred_only: bool = False,
    base_dir: Path | None = None,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """Convert one example; raises :class:`ConversionSkip` with the reason when it can't.

    Preference data converts to a one-answer format only with ``preferred_only``, which
    drops the rejected answer and keeps the preferred one. Images keep their user turn;
    relative image paths are resolved against ``base_dir`` (the input file's folder).
    """
    checked = check_example(data, src)
    if checked.errors:
        code, message = checked.errors[0]
        raise ConversionSkip(f"is not valid {src.value} data ({code.value}: {message})")
    images: list[Any] = []
    if may_hold_images(raw, data) and find_images(data):
        from ftwizard.datasets.image_conversion import take_images

        data, images = take_images(data, base_dir)
    conv = to_conversation(data, src)
    if preferred_only and dst in ONE_ANSWER_FORMATS:
        conv.rejected = None
    out = from_conversation(conv, dst)
    if images:
        from ftwizard.datasets.image_conversion import put_images

        put_images(out, images, dst)
    return out


class Skipped(BaseModel):
    """An input line that was not written, and why."""

    line: int
    message: str


class ConversionResult(BaseModel):
    """What ``convert_file`` wrote."""

    input: str
    output: str
    from_format: DatasetFormat
    to_format: DatasetFormat
    written: int = 0
    skipped: list[Skipped] = Field(default_factory=list)
    rejected_dropped: int = 0
    """Rejected answers left out on purpose (``preferred_only``): one per written example."""


def convert_records(
    path: str | Path,
    src: DatasetFormat,
    dst: DatasetFormat,
    *,
    mapping: Mapping[str, str] | None = None,
    kind: SourceKind | None = None,
    skipped: list[Skipped] | None = None,
    preferred_only: bool = False,
) -> Iterator[dict[str, Any]]:
    """Stream converted examples; lines that can't be converted go to ``skipped``."""
    base_dir = Path(path).parent
    for rec in iter_records(path, kind=kind, mapping=mapping, on_error="keep"):
        if rec.error is not None:
            if skipped is not None:
                skipped.append(Skipped(line=rec.line, message=rec.error))
            continue
        try:
            yield convert_example(
                rec.data,
                src,
                dst,
                preferred_only=preferred_only,
                base_dir=base_dir,
                raw=rec.raw,
            )
        except ConversionSkip as exc:
            if skipped is not None:
                skipped.append(Skipped(line=rec.line, message=f"example {exc}"))


def convert_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    to: DatasetFormat | str,
    from_format: DatasetFormat | str | None = None,
    mapping: Mapping[str, str] | None = None,
    preferred_only: bool = False,
) -> ConversionResult:
    """Convert a dataset file to format ``to``, never touching the input file.

    The output is JSONL, or CSV / Parquet when ``output_path`` ends in ``.csv`` / ``.parquet``
    (structured fields as JSON text); it is written atomically. Preference data (dpo,
    trl_dpo, gemini_preference) converts to a one-answer format (chat, trl, rft, gemini,
    prompt_completion) only with ``preferred_only``, which drops the rejected answers and says
    how many in ``rejected_dropped``; without it the file is refused with :class:`InputError`.
    """
    from ftwizard.datasets.validation import detect_file_format

    src_path, out_path = Path(input_path), Path(output_path)
    dst = DatasetFormat(to)
    if from_format is None:
        detected = detect_file_format(src_path, mapping=mapping)
        if detected is None:
            raise InputError(
                "could not recognise the dataset format; name it with --from", path=src_path
            )
        src = detected
    else:
        src = DatasetFormat(from_format)
    if drops_rejected(src, dst) and not preferred_only:
        raise InputError(rejected_answers_message(src, dst), path=src_path)
    if out_path.exists() and out_path.resolve() == src_path.resolve():
        raise InputError("output would overwrite the input; choose another OUT path", path=out_path)
    result = ConversionResult(
        input=str(src_path), output=str(out_path), from_format=src, to_format=dst
    )
    records = convert_records(
        src_path, src, dst, mapping=mapping, skipped=result.skipped, preferred_only=preferred_only
    )
    result.written = write_records(out_path, records)
    if preferred_only and drops_rejected(src, dst):
        # every written example of preference data had exactly one rejected answer
        result.rejected_dropped = result.written
    return result
