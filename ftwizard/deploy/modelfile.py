"""An Ollama Modelfile written from the training tokenizer's own chat template.

Ollama's templates are Go ``text/template``; the tokenizer's are Jinja. Rather than keep a
table of families, the TEMPLATE is read off the tokenizer by rendering its chat template for a
conversation of marker strings (user, answer, user, answer, user, with the generation prompt;
once more with a system message first) and cutting the text between the markers:

- the head: what comes before the first user message (with ``{{ .System }}`` where the
  system marker lands, when there is one);
- what joins a user message to the answer after it, and an answer to the next user message;
- the tail: what follows the last user message, ending in the generation prompt.

The TEMPLATE ranges over ``.Messages``, which Ollama fills with the whole history on every
``/api/chat`` call, and writes these pieces between the contents. So the prompt Ollama builds,
from the first turn on and at every later one, is byte for byte the prompt the model was
trained on (minus a leading BOS token when the GGUF says llama.cpp adds it). A template with
``.Prompt``/``.Response`` only is not enough: Ollama repeats it once per exchange, so whatever
the chat template writes once (a default system prompt) or only at the end of a conversation
(an eos token) lands in every turn.

Every special token in the end of turn, the eos token and the generation config's eos ids
become ``PARAMETER stop`` lines; without them Ollama generates past the end of the answer. A
template that cannot be cut this way (the text before an answer is not the generation prompt,
the pieces differ from one turn to the next, the system prompt is not written first) is refused
with a message rather than approximated. What cannot be expressed at all: a template that
rewrites the content of earlier messages (Qwen 3 drops ``<think>`` blocks of earlier answers)
gets the content as sent, since Go templates cannot search a string.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ftwizard.errors import InputError

SYSTEM_MARK = "FTWSYSTEMMARK"
PROMPT_MARK = "FTWPROMPTMARK"
ANSWER_MARK = "FTWANSWERMARK"
GO_SYSTEM = "{{ .System }}"
# Three user turns and two answers: enough to see a piece that changes after the first turn
# (a default system prompt) or at the last one (the generation prompt).
_TURNS = 3


class ModelfileParts(BaseModel):
    """The pieces of a Modelfile read off a tokenizer."""

    template: str
    stops: list[str]
    system_supported: bool


def _go_literal(text: str) -> str:
    # Literal "{{" would start a Go action; emit it from a string constant instead.
    return text.replace("{{", '{{ "{{" }}')


def _render(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    return str(
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    )


def _strip_bos(rendered: str, bos: str | None) -> str:
    return rendered[len(bos) :] if bos and rendered.startswith(bos) else rendered


def _conversation(system: bool) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": SYSTEM_MARK}] if system else []
    for turn in range(_TURNS):
        messages.append({"role": "user", "content": f"{PROMPT_MARK}{turn}"})
        if turn < _TURNS - 1:
            messages.append({"role": "assistant", "content": f"{ANSWER_MARK}{turn}"})
    return messages


def _pieces(rendered: str, messages: list[dict[str, str]]) -> list[str] | None:
    # The text around each content; None when a content is not written exactly once, in order.
    marks = [m["content"] for m in messages]
    pieces = re.split("(" + "|".join(re.escape(m) for m in marks) + ")", rendered)
    if pieces[1::2] != marks:
        return None
    return pieces[0::2]


class _Cut(BaseModel):
    head: str
    user_to_answer: str
    answer_to_user: str
    tail: str


def _cut(pieces: list[str] | None) -> _Cut | None:
    # pieces: head, then after user 0, answer 0, user 1, answer 1, user 2 (the tail).
    if pieces is None:
        return None
    between = pieces[1:-1]
    user_to_answer, answer_to_user = set(between[0::2]), set(between[1::2])
    if len(user_to_answer) != 1 or len(answer_to_user) != 1:
        return None
    return _Cut(
        head=pieces[0],
        user_to_answer=user_to_answer.pop(),
        answer_to_user=answer_to_user.pop(),
        tail=pieces[-1],
    )


def _go_template(cut: _Cut, system_head: str | None) -> str:
    """The TEMPLATE: head, then each user/answer content joined by the cut pieces, then the tail.

    System messages are skipped in the range: Ollama gathers them all into ``.System``. One
    line with no ``{{-`` trimming, since the literal pieces' own whitespace is part of the prompt.
    """
    head = _go_literal(cut.head)
    if system_head is not None:
        head = f"{{{{ if .System }}}}{system_head}{{{{ else }}}}{head}{{{{ end }}}}"
    user_to_answer, answer_to_user = (
        _go_literal(cut.user_to_answer),
        _go_literal(cut.answer_to_user),
    )
    return (
        f'{head}{{{{ $prev := "" }}}}{{{{ range .Messages }}}}'
        f'{{{{ if eq .Role "user" }}}}'
        f'{{{{ if eq $prev "assistant" }}}}{answer_to_user}{{{{ end }}}}'
        f'{{{{ .Content }}}}{{{{ $prev = "user" }}}}'
        f'{{{{ else if eq .Role "assistant" }}}}'
        f'{{{{ if eq $prev "user" }}}}{user_to_answer}{{{{ end }}}}'
        f'{{{{ .Content }}}}{{{{ $prev = "assistant" }}}}'
        f"{{{{ end }}}}{{{{ end }}}}"
        f'{{{{ if eq $prev "user" }}}}{_go_literal(cut.tail)}{{{{ end }}}}'
    )


def _refuse(why: str) -> InputError:
    return InputError(
        f"the chat template {why}, so no Ollama TEMPLATE can reproduce it", field="chat_template"
    )


def _stops(tokenizer: Any, end_of_turn: str, eos_ids: list[int]) -> list[str]:
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    special.update(str(t) for t in (tokenizer.get_added_vocab() or {}))
    found = [token for token in sorted(special, key=end_of_turn.find) if token in end_of_turn]
    stops = [t for t in found if t]
    extra = [tokenizer.eos_token] if tokenizer.eos_token else []
    extra += [tokenizer.convert_ids_to_tokens(i) for i in eos_ids]
    for token in extra:
        if token and token not in stops:
            stops.append(str(token))
    return stops


def modelfile_parts(
    tokenizer: Any, *, adds_bos: bool, eos_ids: list[int] | None = None
) -> ModelfileParts:
    """The TEMPLATE and stop tokens for ``tokenizer``'s chat template.

    ``adds_bos``: llama.cpp prepends the BOS token itself (the GGUF's ``add_bos_token``), so a
    BOS written by the chat template is left out of the TEMPLATE.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template to write a TEMPLATE from")
    bos = tokenizer.bos_token if adds_bos else None
    user = {"role": "user", "content": PROMPT_MARK}
    plain_prompt = _render(tokenizer, [user], True)
    answered = _render(tokenizer, [user, {"role": "assistant", "content": ANSWER_MARK}], False)
    cut_at = answered.rfind(ANSWER_MARK)
    if cut_at < 0 or answered[:cut_at] != plain_prompt:
        raise _refuse("does not write the generation prompt before an answer")
    end_of_turn = answered[cut_at + len(ANSWER_MARK) :]

    plain = _conversation(system=False)
    cut = _cut(_pieces(_strip_bos(_render(tokenizer, plain, True), bos), plain))
    # A template that counts messages could join a one-turn chat differently: check it too.
    if cut is None or _strip_bos(plain_prompt, bos) != f"{cut.head}{PROMPT_MARK}{cut.tail}":
        raise _refuse("does not join the turns of a conversation the same way each time")
    with_system = _conversation(system=True)
    try:
        rendered = _strip_bos(_render(tokenizer, with_system, True), bos)
        one_turn = _strip_bos(_render(tokenizer, [*with_system[:1], user], True), bos)
    except Exception:  # a template may raise on a system message (Gemma 2 style)
        rendered = one_turn = ""
    system_supported = SYSTEM_MARK in rendered
    system_head = None
    if system_supported:
        pieces = _pieces(rendered, with_system)
        # pieces[0] is before the system prompt; the rest must cut like the plain chat, except
        # the text up to the first user message.
        system_cut = _cut(pieces[1:]) if pieces else None
        if (
            pieces is None
            or system_cut is None
            or system_cut.model_copy(update={"head": cut.head}) != cut
            or one_turn != f"{pieces[0]}{SYSTEM_MARK}{system_cut.head}{PROMPT_MARK}{cut.tail}"
        ):
            raise _refuse("does not write the system prompt once, before the conversation")
        system_head = f"{_go_literal(pieces[0])}{GO_SYSTEM}{_go_literal(system_cut.head)}"
    template = _go_template(cut, system_head)
    stops = _stops(tokenizer, end_of_turn, eos_ids or [])
    return ModelfileParts(template=template, stops=stops, system_supported=system_supported)


def _quoted(value: str, what: str) -> str:
    if '"""' in value:
        raise InputError(f'the {what} contains """, which a Modelfile cannot quote', field=what)
    return f'"""{value}"""'


def render_modelfile(gguf_name: str, parts: ModelfileParts, system: str | None) -> str:
    """The Modelfile text: FROM, TEMPLATE, one PARAMETER stop per stop token, SYSTEM."""
    lines = [
        "# Written by ftwizard from the training tokenizer's chat template.",
        "# Run: ollama create NAME -f Modelfile",
        f"FROM ./{gguf_name}",
        f"TEMPLATE {_quoted(parts.template, 'template')}",
    ]
    lines += [f"PARAMETER stop {_json_string(stop)}" for stop in parts.stops]
    if system and parts.system_supported:
        lines.append(f"SYSTEM {_quoted(system, 'system prompt')}")
    return "\n".join(lines) + "\n"


def _json_string(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def write_modelfile(
    folder: Path,
    gguf_name: str,
    tokenizer: Any,
    *,
    adds_bos: bool,
    eos_ids: list[int],
    system: str | None,
) -> tuple[Path, ModelfileParts]:
    """Write ``folder/Modelfile`` for the GGUF beside it; return its path and parts."""
    parts = modelfile_parts(tokenizer, adds_bos=adds_bos, eos_ids=eos_ids)
    path = folder / "Modelfile"
    path.write_text(render_modelfile(gguf_name, parts, system), encoding="utf-8")
    return path, parts


__all__ = ["ModelfileParts", "modelfile_parts", "render_modelfile", "write_modelfile"]
