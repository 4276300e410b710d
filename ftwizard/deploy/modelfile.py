"""An Ollama Modelfile written from the training tokenizer's own chat template.

Ollama's templates are Go ``text/template``; the tokenizer's are Jinja. Rather than keep a
table of families, the TEMPLATE is read off the tokenizer by rendering its chat template with
marker strings and putting ``{{ .System }}``, ``{{ .Prompt }}`` and ``{{ .Response }}`` where
the markers land:

- with a system prompt: ``render([system, user], generation prompt)``;
- without: ``render([user], generation prompt)``;
- after the answer: what the template writes after an assistant message (its end of turn).

So a single-turn prompt Ollama builds is byte for byte the prompt the model was trained on
(minus a leading BOS token when the GGUF says llama.cpp adds it). Every special token in the
end of turn, the eos token and the generation config's eos ids become ``PARAMETER stop``
lines; without them Ollama generates past the end of the answer. A template that cannot be
cut this way (the text before an answer is not the generation prompt) is refused with a
message rather than approximated.
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
GO_SYSTEM, GO_PROMPT, GO_RESPONSE = "{{ .System }}", "{{ .Prompt }}", "{{ .Response }}"


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


def _to_go(rendered: str, bos: str | None) -> str:
    if bos and rendered.startswith(bos):
        rendered = rendered[len(bos) :]
    actions = {SYSTEM_MARK: GO_SYSTEM, PROMPT_MARK: GO_PROMPT}
    pieces = re.split(f"({SYSTEM_MARK}|{PROMPT_MARK})", rendered)
    return "".join(actions.get(piece) or _go_literal(piece) for piece in pieces)


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
    try:
        system_prompt = _render(tokenizer, [{"role": "system", "content": SYSTEM_MARK}, user], True)
        system_supported = SYSTEM_MARK in system_prompt
    except Exception:  # a template may raise on a system message (Gemma 2 style)
        system_prompt, system_supported = plain_prompt, False
    answered = _render(tokenizer, [user, {"role": "assistant", "content": ANSWER_MARK}], False)
    cut = answered.rfind(ANSWER_MARK)
    if cut < 0 or answered[:cut] != plain_prompt:
        raise InputError(
            "the chat template does not write the generation prompt before an answer, so no "
            "Ollama TEMPLATE can reproduce it",
            field="chat_template",
        )
    end_of_turn = answered[cut + len(ANSWER_MARK) :]
    with_system, without = _to_go(system_prompt, bos), _to_go(plain_prompt, bos)
    if system_supported and with_system != without:
        head = f"{{{{ if .System }}}}{with_system}{{{{ else }}}}{without}{{{{ end }}}}"
    else:
        head = without
    template = f"{head}{GO_RESPONSE}{_go_literal(end_of_turn)}"
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
