"""Checks of Vertex AI Gemini tuning examples."""

from __future__ import annotations

from typing import Any

from ftwizard.datasets.checked import Checked, json_type
from ftwizard.datasets.openai_checks import KNOWN_ROLES, check_unknown_top
from ftwizard.datasets.problems import Code

_GEMINI_TOP_KEYS = frozenset({"contents", "systemInstruction", "system_instruction"})
_GEMINI_ROLES = frozenset({"user", "model"})
_GEMINI_PART_KEYS = frozenset(
    {
        "text",
        "fileData",
        "file_data",
        "inlineData",
        "inline_data",
        "functionCall",
        "functionResponse",
        "function_call",
        "function_response",
    }
)


def check_gemini(data: dict[str, Any], out: Checked) -> None:
    """Vertex Gemini SFT: ``contents`` of user and model turns, optional system instruction."""
    contents = data.get("contents")
    messages: list[dict[str, Any]] = []
    if not isinstance(contents, list):
        out.errors.append(
            (
                Code.MISSING_MESSAGES_LIST,
                '"contents" is missing or not a list; add "contents": [{"role": "user", '
                '"parts": [{"text": "..."}]}, ...]',
            )
        )
    elif not contents:
        out.errors.append((Code.EMPTY_MESSAGES, '"contents" is empty; add user and model turns'))
    else:
        answer = None
        for i, turn in enumerate(contents, start=1):
            if not isinstance(turn, dict):
                out.errors.append(
                    (
                        Code.MESSAGE_DATA_TYPE,
                        f'turn {i} is a JSON {json_type(turn)}; write {{"role": ..., '
                        '"parts": [...]}',
                    )
                )
                continue
            role = turn.get("role")
            if "role" not in turn:
                out.errors.append(
                    (Code.MESSAGE_MISSING_KEY, f'turn {i} has no "role"; add "user" or "model"')
                )
            elif role not in _GEMINI_ROLES:
                hint = {
                    "assistant": 'use "model"',
                    "system": 'move it to "systemInstruction"',
                }.get(str(role), 'use "user" or "model"')
                code = Code.ROLE_NOT_ALLOWED if role in KNOWN_ROLES else Code.UNRECOGNIZED_ROLE
                out.errors.append((code, f"turn {i}: Gemini does not accept role {role!r}; {hint}"))
            unknown = [k for k in turn if k not in ("role", "parts")]
            if unknown:
                out.errors.append(
                    (
                        Code.MESSAGE_UNRECOGNIZED_KEY,
                        f"turn {i} has unrecognized key(s) {', '.join(map(repr, sorted(unknown)))};"
                        ' a turn holds only "role" and "parts"',
                    )
                )
            text = _check_parts(turn.get("parts"), out, where=f"turn {i}")
            messages.append(
                {"role": "assistant" if role == "model" else str(role), "content": text}
            )
            if role == "model":
                answer = text
        roles = {t.get("role") for t in contents if isinstance(t, dict)}
        # a turn with role "assistant" was already reported; one fix solves both
        if "model" not in roles and "assistant" not in roles:
            out.errors.append(
                (
                    Code.EXAMPLE_MISSING_ASSISTANT_MESSAGE,
                    'no model turn; add the answer as {"role": "model", "parts": [{"text": ...}]}',
                )
            )
        out.answer = answer
    system = data.get("systemInstruction", data.get("system_instruction"))
    if system is not None:
        if not isinstance(system, dict):
            out.errors.append(
                (
                    Code.INVALID_FIELD,
                    '"systemInstruction" must be an object {"parts": [{"text": ...}]}',
                )
            )
        else:
            text = _check_parts(system.get("parts"), out, where="systemInstruction")
            messages.insert(0, {"role": "system", "content": text})
    elif messages:
        out.warnings.append(
            (
                Code.MISSING_SYSTEM_MESSAGE,
                "no systemInstruction; add one if you will use a system prompt at inference",
            )
        )
    check_unknown_top(data, _GEMINI_TOP_KEYS, out)
    out.messages = messages


def _check_parts(parts: Any, out: Checked, *, where: str) -> str:
    if not isinstance(parts, list) or not parts:
        out.errors.append(
            (Code.MISSING_PARTS, f'{where} has no "parts" list; add "parts": [{{"text": "..."}}]')
        )
        return ""
    texts: list[str] = []
    for j, part in enumerate(parts, start=1):
        if not isinstance(part, dict) or not part or any(k not in _GEMINI_PART_KEYS for k in part):
            out.errors.append(
                (
                    Code.INVALID_PART,
                    f'{where} part {j} must be an object like {{"text": ...}} '
                    'or {"fileData": {"mimeType": ..., "fileUri": ...}}',
                )
            )
            continue
        if "text" in part:
            if not isinstance(part["text"], str) or not part["text"]:
                out.errors.append(
                    (Code.MISSING_CONTENT, f"{where} part {j} has empty or non-string text")
                )
            else:
                texts.append(part["text"])
    return "".join(texts)


def check_gemini_preference(data: dict[str, Any], out: Checked) -> None:
    """Vertex preference tuning: ``contents`` ending with a user turn, and ``completions``, a
    preferred (score 1) and a dispreferred (score 0) model turn."""
    prompt = {k: v for k, v in data.items() if k != "completions"}
    contents = data.get("contents")
    # the prompt is checked as SFT contents, less the rule that it holds a model turn
    check_gemini(prompt, out)
    out.errors = [e for e in out.errors if e[0] is not Code.EXAMPLE_MISSING_ASSISTANT_MESSAGE]
    out.warnings = [w for w in out.warnings if w[0] is not Code.UNRECOGNIZED_KEY]
    check_unknown_top(data, _GEMINI_TOP_KEYS | {"completions"}, out)
    last = contents[-1] if isinstance(contents, list) and contents else None
    if isinstance(last, dict) and last.get("role") != "user":
        out.errors.append(
            (
                Code.INVALID_FIELD,
                '"contents" must end with a user turn; the answers go in "completions"',
            )
        )
    completions = data.get("completions")
    if not isinstance(completions, list) or len(completions) != 2:
        out.errors.append(
            (
                Code.INVALID_PREFERENCE_OUTPUT,
                '"completions" must be a list of two: {"score": 1, "completion": {"role": '
                '"model", "parts": [...]}} and one with "score": 0',
            )
        )
        return
    by_score: dict[Any, str] = {}
    well_formed = 0
    for i, item in enumerate(completions, start=1):
        turn = item.get("completion") if isinstance(item, dict) else None
        score = item.get("score") if isinstance(item, dict) else None
        if not isinstance(turn, dict) or turn.get("role") != "model":
            out.errors.append(
                (
                    Code.INVALID_PREFERENCE_OUTPUT,
                    f'completion {i} must hold "completion": {{"role": "model", "parts": [...]}}',
                )
            )
            continue
        if isinstance(score, bool) or score not in (0, 1):
            out.errors.append(
                (Code.INVALID_PREFERENCE_OUTPUT, f'completion {i}: "score" must be 0 or 1')
            )
            continue
        by_score[score] = _check_parts(turn.get("parts"), out, where=f"completion {i}")
        well_formed += 1
    if well_formed == 2 and set(by_score) != {0, 1}:
        out.errors.append(
            (
                Code.INVALID_PREFERENCE_OUTPUT,
                "the two completions need one score of 1 (preferred) and one of 0",
            )
        )
    preferred, dispreferred = by_score.get(1), by_score.get(0)
    if preferred is not None:
        out.answer = preferred
        out.messages.append({"role": "assistant", "content": preferred})
    if dispreferred is not None:
        out.messages.append({"role": "assistant", "content": dispreferred})
