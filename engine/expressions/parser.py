"""The syntax tree and the recursive-descent :class:`Parser` that builds it (:func:`parse`), the functions and their
arities (:data:`FUNCTIONS`), and the split of a condition's hold (:func:`parse_condition`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.expressions.errors import ExpressionError
from engine.expressions.lexer import _PYTHONISMS, COMPARISONS, DUR, END, KW, NAME, NUM, OP, STR, UNITS, Token, tokenize
from engine.expressions.values import BOOL, NUMBER, TEXT
from engine.problems import did_you_mean


@dataclass(frozen=True, slots=True)
class Node:
    """A piece of the expression spanning ``offset`` to ``end`` in the source."""

    offset: int
    end: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Any
    type: str


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    """``-`` or ``not``."""
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    """An arithmetic operator or a comparison."""
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Logic(Node):
    op: str
    """``and`` or ``or``, over two or more operands."""
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    then: Node
    condition: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str
    args: tuple[Node, ...]


FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "clamp": (3, 3),
    "lerp": (3, 3),
    "map_range": (5, 5),
    "smoothstep": (3, 3),
    "min": (2, None),
    "max": (2, None),
    "abs": (1, 1),
    "round": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "since": (1, 1),
    "stale": (1, 1),
    "any": (2, 2),
    "all": (2, 2),
    "count": (1, 2),
}
"""Every function, with its smallest and largest number of arguments (None: no limit)."""

MAX_NESTING = 20
"""Parentheses, calls and prefix operators nested deeper than this are refused (keeps the parser's stack small)."""


class Parser:
    """Recursive descent over the tokens, one method per precedence level."""

    def __init__(self, source: str, tokens: list[Token]) -> None:
        self.source = source
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, *texts: str) -> bool:
        token = self.peek
        return token.kind == kind and token.text in texts

    def parse(self) -> Node:
        if self.peek.kind == END:
            raise ExpressionError("empty expression", 0)
        node = self.expression()
        if self.peek.kind != END:
            raise self._trailing(self.peek)
        return node

    def expression(self) -> Node:
        self._enter()
        then = self.disjunction()
        if self.at(KW, "if"):
            self.take()
            condition = self.disjunction()
            if not self.at(KW, "else"):
                raise self._expected("`else`", hint="write `a if condition else b`")
            self.take()
            otherwise = self.expression()
            then = Conditional(then.offset, otherwise.end, then, condition, otherwise)
        self.nesting -= 1
        return then

    def disjunction(self) -> Node:
        return self._logic("or", self.conjunction)

    def conjunction(self) -> Node:
        return self._logic("and", self.negation)

    def _logic(self, op: str, operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self.at(KW, op):
            self.take()
            operands.append(operand())
        if len(operands) == 1:
            return operands[0]
        return Logic(operands[0].offset, operands[-1].end, op, tuple(operands))

    def negation(self) -> Node:
        if not self.at(KW, "not"):
            return self.comparison()
        token = self.take()
        self._enter()
        operand = self.negation()
        self.nesting -= 1
        return Unary(token.offset, operand.end, "not", operand)

    def comparison(self) -> Node:
        left = self.sum()
        if not self._at_comparison():
            return left
        op = self.take()
        right = self.sum()
        if self._at_comparison():
            second = self.peek
            middle = self.source[right.offset : right.end]
            rewrite = (
                f"{self.source[left.offset : left.end]} {op.text} {middle} and {middle} {second.text} "
                f"{self.source[second.offset + len(second.text) :].strip()}"
            )
            raise ExpressionError(
                "a comparison cannot be chained: write `a < b and b < c`",
                second.offset,
                len(second.text),
                hint=f"here: `{rewrite}`",
            )
        return Binary(left.offset, right.end, op.text, left, right)

    def _at_comparison(self) -> bool:
        return self.peek.kind == OP and self.peek.text in COMPARISONS

    def sum(self) -> Node:
        return self._binary(("+", "-"), self.product)

    def product(self) -> Node:
        return self._binary(("*", "/", "%"), self.unary)

    def _binary(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        left = operand()
        while self.at(OP, *ops):
            op = self.take()
            right = operand()
            left = Binary(left.offset, right.end, op.text, left, right)
        return left

    def unary(self) -> Node:
        if not self.at(OP, "-"):
            return self.primary()
        token = self.take()
        self._enter()
        operand = self.unary()
        self.nesting -= 1
        return Unary(token.offset, operand.end, "-", operand)

    def primary(self) -> Node:
        token = self.peek
        if token.kind in (NUM, DUR):
            self.take()
            return Literal(token.offset, token.offset + len(token.text), token.value, NUMBER)
        if token.kind == STR:
            self.take()
            return Literal(token.offset, token.offset + len(token.text), token.value, TEXT)
        if token.kind == KW and token.text in ("true", "false"):
            self.take()
            return Literal(token.offset, token.offset + len(token.text), token.text == "true", BOOL)
        if token.kind == NAME:
            self.take()
            if self.at(OP, "("):
                return self.call(token)
            return Identifier(token.offset, token.offset + len(token.text), token.text)
        if token.kind == OP and token.text == "(":
            self.take()
            inner = self.expression()
            self._close(token)
            return inner
        raise self._missing_value(token)

    def call(self, name: Token) -> Node:
        opening = self.take()
        if name.text not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function `{name.text}`", name.offset, len(name.text), hint=did_you_mean(name.text, FUNCTIONS)
            )
        args: list[Node] = []
        if not self.at(OP, ")"):
            args.append(self.expression())
            while self.at(OP, ","):
                self.take()
                args.append(self.expression())
        end = self._close(opening, hint="separate arguments with `,`")
        _check_arity(name, len(args), end)
        return Call(name.offset, end, name.text, tuple(args))

    def _close(self, opening: Token, hint: str | None = None) -> int:
        """Take the `)` matching ``opening``; returns the offset after it."""
        if not self.at(OP, ")"):
            found = self.peek
            raise ExpressionError(
                f"expected `)` to close `(` at column {opening.offset + 1}",
                found.offset,
                max(1, len(found.text)),
                hint=None if found.kind == END else hint,
            )
        return self.take().offset + 1

    def _enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise ExpressionError(f"expression nested too deeply (more than {MAX_NESTING} levels)", self.peek.offset)

    def _expected(self, what: str, hint: str | None = None) -> ExpressionError:
        found = self.peek
        shown = "the end" if found.kind == END else f"`{found.text}`"
        return ExpressionError(f"expected {what}, found {shown}", found.offset, max(1, len(found.text)), hint=hint)

    def _missing_value(self, token: Token) -> ExpressionError:
        if token.kind == END:
            previous = self.tokens[self.index - 1]
            return ExpressionError(f"expected a value after `{previous.text}`", token.offset)
        return ExpressionError(f"unexpected `{token.text}`", token.offset, len(token.text), hint="expected a value")

    def _trailing(self, token: Token) -> ExpressionError:
        length = len(token.text)
        if token.kind == KW and token.text == "for":
            return ExpressionError(
                "`for` can only end a condition", token.offset, 3, hint="a hold like `for 2s` belongs in `when:`"
            )
        if token.text == ")":
            return ExpressionError("unexpected `)`", token.offset, hint="there is no `(` for it to close")
        previous = self.tokens[self.index - 1]
        if token.kind == NAME and token.text in UNITS and previous.kind == NUM:
            hint = f"write durations without a space: `{previous.text}{token.text}`"
        else:
            hint = _PYTHONISMS.get(token.text, "is an operator missing before it?")
        return ExpressionError(f"unexpected `{token.text}`", token.offset, length, hint=hint)


def _check_arity(name: Token, count: int, end: int) -> None:
    low, high = FUNCTIONS[name.text]
    if low <= count and (high is None or count <= high):
        return
    if high is None:
        wanted = f"at least {low} arguments"
    elif low == high:
        wanted = f"{low} argument" + ("" if low == 1 else "s")
    else:
        wanted = f"{low} or {high} arguments"
    raise ExpressionError(f"`{name.text}` takes {wanted}, got {count}", name.offset, end - name.offset)


def parse(source: str) -> Node:
    """The syntax tree of ``source``; raises ExpressionError."""
    return Parser(source, tokenize(source)).parse()


def parse_condition(source: str) -> tuple[str, float | None]:
    """Split ``body.count > 0 for 0.5s`` into the expression and the hold in seconds (None without ``for``).

    The expression part is a prefix of ``source``, so offsets of errors in it are offsets in ``source``.
    """
    tokens = tokenize(source)
    for index, token in enumerate(tokens):
        if token.kind == KW and token.text == "for":
            return _split_hold(source, tokens, index), tokens[index + 1].value
    return source, None


def _split_hold(source: str, tokens: list[Token], index: int) -> str:
    keyword, duration, after = tokens[index], tokens[index + 1], tokens[index + 2 : index + 3]
    if index == 0:
        raise ExpressionError("expected a condition before `for`", 0, 3, hint="write `condition for 2s`")
    if duration.kind == NUM:
        raise ExpressionError(
            f"the hold `{duration.text}` needs a unit",
            duration.offset,
            len(duration.text),
            hint=f"write `for {duration.text}s`",
        )
    if duration.kind != DUR:
        shown = "the end" if duration.kind == END else f"`{duration.text}`"
        raise ExpressionError(
            f"expected a duration after `for`, found {shown}",
            duration.offset,
            max(1, len(duration.text)),
            hint="write like `for 0.5s`",
        )
    if after and after[0].kind != END:
        extra = after[0]
        raise ExpressionError(
            f"unexpected `{extra.text}` after the hold", extra.offset, len(extra.text), hint="`for 2s` ends a condition"
        )
    return source[: keyword.offset].rstrip()
