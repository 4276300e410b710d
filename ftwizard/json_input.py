"""Decoding JSON and YAML a user gave us: the one policy, with depth and alias limits.

YAML (:func:`compose_yaml`, :func:`load_yaml`): nesting deeper than :data:`MAX_YAML_DEPTH`,
an anchor that refers to itself, or aliases that would expand the document by more than
:data:`MAX_YAML_EXPANSION` nodes (a "billion laughs" alias bomb, which took a minute and 4.9 GB
before it failed) are refused at once, before anything walks the tree.

JSON: the two failures :mod:`json` does not report as bad JSON.

``json.loads`` raises :class:`RecursionError` (not a ``ValueError``) on deeply nested input
such as 100,000 nested arrays, and accepts a lone UTF-16 surrogate (``"\\ud800"``), which no
UTF-8 file can hold, so it only fails much later when the text is written. Every reader of
user files (data lines, grader files, session files) decodes through here so both become an
ordinary :class:`ValueError` whose message says what to fix.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

MAX_YAML_DEPTH = 200
MAX_YAML_EXPANSION = 100_000

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONInputError(ValueError):
    """JSON text that parses by the grammar but cannot be used; ``field`` is where, if known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


_SURROGATE_MESSAGE = (
    "holds a lone UTF-16 surrogate (an escape like \\ud800 without its pair), which UTF-8 "
    "cannot store; remove it or write the whole character"
)
TOO_DEEP = "JSON nested too deeply to read; flatten the structure (Python reads about 1,000 levels)"


def loads(text: str | bytes) -> Any:
    """``json.loads`` that reports too-deep nesting and lone surrogates as :class:`JSONInputError`.

    Other malformed JSON raises :class:`json.JSONDecodeError` as usual.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONInputError(TOO_DEEP) from None
    check_surrogates(text, value)
    return value


def check_surrogates(text: str | bytes, value: Any) -> None:
    """Raise :class:`JSONInputError` naming the field when ``value`` holds a lone surrogate.

    ``text`` is what ``value`` was decoded from; a quick look at it skips the walk in the
    common case (a pair like ``\\ud83d\\ude00`` decodes to one character and is fine).
    """
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if not _SURROGATE_ESCAPE.search(raw):
        return
    where = _surrogate_field(value, "")
    if where is not None:
        raise JSONInputError(_SURROGATE_MESSAGE, field=where or None)


def _surrogate_field(value: Any, path: str) -> str | None:
    # Iterative, so a deep structure that json accepted cannot overflow the stack here.
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return where
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of a YAML document (``None`` when empty), checked for depth and aliases.

    Raises ``yaml.YAMLError`` for malformed YAML and :class:`JSONInputError` (a ``ValueError``)
    for a document too deep or whose aliases expand too far.
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except RecursionError:
        raise JSONInputError(TOO_DEEP.replace("JSON", "YAML")) from None
    except yaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "") or ""):  # libyaml's own limit
            raise JSONInputError(TOO_DEEP.replace("JSON", "YAML")) from None
        raise
    if node is not None:
        _check_yaml_tree(node)
    return node


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` under :func:`compose_yaml`'s limits."""
    node = compose_yaml(text)
    return None if node is None else construct_yaml(node)


def construct_yaml(node: yaml.Node) -> Any:
    """The Python value of a node tree from :func:`compose_yaml` (safe types only)."""
    import yaml

    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_document(node)
    except RecursionError:
        raise JSONInputError(TOO_DEEP.replace("JSON", "YAML")) from None
    finally:
        loader.dispose()
    # YAML's "\ud800" escape makes a lone surrogate, which no UTF-8 file can hold.
    where = _surrogate_field(value, "")
    if where is not None:
        raise JSONInputError(_SURROGATE_MESSAGE, field=where or None)
    return value


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_yaml_tree(root: Any) -> None:
    # Iterative, and each shared node is sized once: an alias bomb is found in linear time.
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, bool, int]] = [(root, False, 1)]
    while stack:
        node, done, depth = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[key] = size
            if size - distinct > MAX_YAML_EXPANSION:
                raise JSONInputError(
                    f"YAML aliases (*name) expand this document past {MAX_YAML_EXPANSION:,} "
                    "values; write the values out instead of repeating aliases"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise JSONInputError(f"a YAML anchor (&name) on line {line} refers to itself")
        if depth > MAX_YAML_DEPTH:
            raise JSONInputError(
                f"YAML nested more than {MAX_YAML_DEPTH} levels deep; flatten the structure"
            )
        on_path.add(key)
        distinct += 1
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in _children(node))
