"""The ``multi`` grader's ``calculate_output`` formula: parsed into a tree, never ``eval``-ed.

Grammar (``^`` binds tighter than unary minus and is right-associative, as in OpenAI's docs)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := "-" unary | "+" unary | power
    power := atom ("^" unary)?
    atom  := NUMBER | NAME | FUNC "(" expr ("," expr)* ")" | "(" expr ")"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FUNCTIONS: dict[str, tuple[int, int | None]] = {
    # name: (fewest arguments, most arguments or None for any number)
    "min": (1, None),
    "max": (1, None),
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "log": (1, 1),
}

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-+*/^(),]))"
)


# Bounds that keep parsing and evaluating far from Python's recursion limit.
MAX_FORMULA_TOKENS = 1000
MAX_FORMULA_DEPTH = 50


class FormulaError(ValueError):
    """A formula that cannot be parsed (with its 1-based column) or evaluated."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.column = column
        super().__init__(f"{message} at column {column}" if column else message)


@dataclass(frozen=True, slots=True)
class Num:
    value: float


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Node, ...]


Node = Num | Var | Unary | Binary | Call


@dataclass(frozen=True, slots=True)
class Formula:
    """A parsed formula: its text, its tree and the grader names it reads."""

    text: str
    tree: Node

    @property
    def names(self) -> set[str]:
        """Every variable (grader key) the formula uses."""
        out: set[str] = set()
        _collect(self.tree, out)
        return out

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value for these sub-grader scores; ``FormulaError`` on a math error."""
        result = _eval(self.tree, values)
        if not math.isfinite(result):
            raise FormulaError(f"formula '{self.text}' gave {result}")
        return result

    def linear_weights(self) -> dict[str, float] | None:
        """``{name: weight}`` when the formula is ``w1 * a + w2 * b + ...``, else ``None``."""
        weights: dict[str, float] = {}
        if not _linear(self.tree, 1.0, weights):
            return None
        return weights


def _collect(node: Node, out: set[str]) -> None:
    if isinstance(node, Var):
        out.add(node.name)
    elif isinstance(node, Unary):
        _collect(node.operand, out)
    elif isinstance(node, Binary):
        _collect(node.left, out)
        _collect(node.right, out)
    elif isinstance(node, Call):
        for a in node.args:
            _collect(a, out)


def _linear(node: Node, factor: float, weights: dict[str, float]) -> bool:
    if isinstance(node, Var):
        weights[node.name] = weights.get(node.name, 0.0) + factor
        return True
    if isinstance(node, Unary):
        return _linear(node.operand, -factor if node.op == "-" else factor, weights)
    if isinstance(node, Binary) and node.op in "+-":
        sign = -1.0 if node.op == "-" else 1.0
        return _linear(node.left, factor, weights) and _linear(node.right, sign * factor, weights)
    if isinstance(node, Binary) and node.op == "*":
        if isinstance(node.left, Num):
            return _linear(node.right, factor * node.left.value, weights)
        if isinstance(node.right, Num):
            return _linear(node.left, factor * node.right.value, weights)
    if isinstance(node, Binary) and node.op == "/" and isinstance(node.right, Num):
        return node.right.value != 0 and _linear(node.left, factor / node.right.value, weights)
    return False


_UNARY_FUNCS: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "floor": lambda x: float(math.floor(x)),
    "ceil": lambda x: float(math.ceil(x)),
    "exp": math.exp,
    "sqrt": math.sqrt,
    "log": math.log,
}


def _eval(node: Node, values: Mapping[str, float]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        if node.name not in values:
            raise FormulaError(f"no score named '{node.name}'", node.column)
        return float(values[node.name])
    if isinstance(node, Unary):
        v = _eval(node.operand, values)
        return -v if node.op == "-" else v
    if isinstance(node, Binary):
        a = _eval(node.left, values)
        b = _eval(node.right, values)
        try:
            if node.op == "+":
                return a + b
            if node.op == "-":
                return a - b
            if node.op == "*":
                return a * b
            if node.op == "/":
                return a / b
            return float(a**b)
        except ZeroDivisionError:
            raise FormulaError("division by zero") from None
        except (OverflowError, TypeError):
            raise FormulaError(f"{a} {node.op} {b} cannot be computed") from None
    args = [_eval(a, values) for a in node.args]
    if node.func == "min":
        return min(args)
    if node.func == "max":
        return max(args)
    try:
        return _UNARY_FUNCS[node.func](args[0])
    except (ValueError, OverflowError):
        raise FormulaError(f"{node.func}({args[0]}) is undefined") from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN_RE.match(text, pos)
            if m is None or m.end() == pos:
                col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
                raise FormulaError(f"unexpected character '{text[col - 1]}'", col)
            kind = m.lastgroup or "op"
            self.tokens.append((kind, m.group(kind), m.start(kind) + 1))
            if len(self.tokens) > MAX_FORMULA_TOKENS:
                raise FormulaError(
                    f"formula is longer than {MAX_FORMULA_TOKENS} tokens; simplify it",
                    m.start(kind) + 1,
                )
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise FormulaError("formula ends too early", len(self.text) + 1)
        self.i += 1
        return tok

    def expect(self, op: str) -> None:
        if self.peek() is None:
            raise FormulaError(f"expected '{op}' but the formula ends", len(self.text) + 1)
        tok = self.take()
        if tok[1] != op:
            raise FormulaError(f"expected '{op}' but found '{tok[1]}'", tok[2])

    def parse(self) -> Node:
        if not self.tokens:
            raise FormulaError("formula is empty")
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            raise FormulaError(f"unexpected '{tok[1]}'", tok[2])
        return node

    def expr(self) -> Node:
        node = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.i += 1
            node = Binary(tok[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while (tok := self.peek()) is not None and tok[1] in ("*", "/"):
            self.i += 1
            node = Binary(tok[1], node, self.unary())
        return node

    def unary(self) -> Node:
        tok = self.peek()
        self.depth += 1
        if self.depth > MAX_FORMULA_DEPTH:
            col = tok[2] if tok is not None else len(self.text) + 1
            raise FormulaError(f"formula nested more than {MAX_FORMULA_DEPTH} levels deep", col)
        try:
            if tok is not None and tok[1] in ("-", "+"):
                self.i += 1
                return Unary(tok[1], self.unary())
            return self.power()
        finally:
            self.depth -= 1

    def power(self) -> Node:
        base = self.atom()
        tok = self.peek()
        if tok is not None and tok[1] == "^":
            self.i += 1
            return Binary("^", base, self.unary())
        return base

    def atom(self) -> Node:
        kind, text, col = self.take()
        if kind == "num":
            return Num(float(text))
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                if text not in FUNCTIONS:
                    known = ", ".join(FUNCTIONS)
                    raise FormulaError(f"unknown function '{text}' (known: {known})", col)
                self.i += 1
                args = [self.expr()]
                while (t := self.peek()) is not None and t[1] == ",":
                    self.i += 1
                    args.append(self.expr())
                self.expect(")")
                low, high = FUNCTIONS[text]
                if len(args) < low or (high is not None and len(args) > high):
                    want = str(low) if high == low else f"at least {low}"
                    raise FormulaError(f"{text}() takes {want} argument(s), got {len(args)}", col)
                return Call(text, tuple(args))
            if text in FUNCTIONS:
                raise FormulaError(f"'{text}' is a function; call it as {text}(...)", col)
            return Var(text, col)
        if text == "(":
            node = self.expr()
            self.expect(")")
            return node
        raise FormulaError(f"unexpected '{text}'", col)


def parse_formula(text: str) -> Formula:
    """Parse ``text`` into a :class:`Formula`; ``FormulaError`` says what is wrong and where."""
    return Formula(text, _Parser(text).parse())
