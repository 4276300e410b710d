"""Keyboard actions of replay files: key names, key sequences and terminal sizes.

A replay can drive the wizard like a person at the keyboard (``keys: "tab tab enter"``,
``type: "text"``) and run at any terminal size (``--size 80x24``); this module checks what
those say before anything runs.
"""

from __future__ import annotations

import re
import unicodedata

# Key names as Textual spells them: letters, digits, underscores, optional modifiers, or a
# single printable character.
KEY_NAME = re.compile(r"^((ctrl|shift|alt|super|meta)\+)*([a-z0-9_]+|[A-Z]|[^\sA-Za-z0-9])$")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*$")

# The terminal a replay runs in unless --size says otherwise.
REPLAY_SIZE = (120, 40)
# Smaller than this, the wizard cannot show a step's frame at all.
MIN_SIZE = (40, 12)
MAX_SIZE = (1000, 1000)


def split_keys(text: str) -> list[str]:
    """The key names of a ``keys:`` value, space separated (``"tab tab enter"``)."""
    return text.split()


# Keys with names of their own; printable characters are named by their Unicode name
# (question_mark, full_stop) or are the character itself.
_NAMED_KEYS = frozenset(
    [
        "enter",
        "tab",
        "escape",
        "space",
        "backspace",
        "delete",
        "insert",
        "home",
        "end",
        "pageup",
        "pagedown",
        "up",
        "down",
        "left",
        "right",
    ]
)
_FUNCTION_KEY = re.compile(r"^f([1-9]|1[0-9]|2[0-4])$")


def is_key_name(key: str) -> bool:
    """Whether ``key`` names a key as Textual does (``ctrl+n``, ``f5``, ``question_mark``)."""
    match = KEY_NAME.match(key)
    if match is None:
        return False
    name = match.group(3)
    if len(name) == 1 or name in _NAMED_KEYS or _FUNCTION_KEY.match(name):
        return True
    try:
        unicodedata.lookup(name.replace("_", " ").upper())
    except KeyError:
        return False
    return True


def bad_key(keys: list[str]) -> str | None:
    """The first name in ``keys`` that is not a Textual key name, or None."""
    for key in keys:
        if not is_key_name(key):
            return key
    return None


def parse_size(text: str) -> tuple[int, int]:
    """``"80x24"`` -> ``(80, 24)``; raises ValueError with a message a person can act on."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not a size; write COLSxROWS, e.g. 80x24")
    cols, rows = int(match.group(1)), int(match.group(2))
    if cols < MIN_SIZE[0] or rows < MIN_SIZE[1]:
        raise ValueError(
            f"{cols}x{rows} is too small; the wizard needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]}"
        )
    if cols > MAX_SIZE[0] or rows > MAX_SIZE[1]:
        raise ValueError(f"{cols}x{rows} is too large (at most {MAX_SIZE[0]}x{MAX_SIZE[1]})")
    return cols, rows


def keyboard_problem(kind: str, value: str | None) -> str | None:
    """What is wrong with a ``keys:`` or ``type:`` action's value, or None."""
    if kind == "type":
        return None if value else "'type' needs the text to type"
    keys = split_keys(value or "")
    if not keys:
        return "'keys' needs at least one key name, e.g. \"tab tab enter\""
    bad = bad_key(keys)
    if bad is not None:
        return f"'{bad}' is not a key name (Textual's names: tab, enter, ctrl+n, f5, a, ...)"
    return None
