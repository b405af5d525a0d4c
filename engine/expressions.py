"""Expressions: the small language curators write conditions and values in.

Conditions decide when things happen (``when:`` of rules and transitions);
values compute numbers sent to devices (``expr:`` of actions). Examples::

    body.count > 0
    body.count > 0 for 0.5s                       # a condition held for half a second
    plinth.button and not stale(plinth.button)
    body.nearest.hands_raised > 0.2 or controls.wash > 0.5
    map_range(body.nearest.distance, 1, 4, 255, 0)  # closer visitor, brighter light
    clamp(body.count * 20, 0, 100)
    since(body.wave) < 2s                         # waved in the last two seconds
    count(body.visitors, hands_raised > 0.5) >= 2  # at least two visitors with raised hands
    any(body.visitors, x < 0.3)                   # someone on the left of the picture
    "night" if controls.season == 2 else "day"

**Values.** Numbers (``2``, ``0.5``, ``1e3``), ``true`` and ``false``, text in
single or double quotes (``"day"``, ``'it\\'s'``), and durations, which are
numbers of seconds: ``500ms`` (0.5), ``0.5s``, ``2min`` (120), ``1h`` (3600).

**Names** are signals, written with dots: ``body.count``, ``plinth.button``,
``controls.wash``, ``var.visits``. ``visitors.…`` reads the pose sensor when the
exhibit has exactly one. An event (``body.wave``) has no value of its own: ask
``since(body.wave)``. A collection (``body.visitors``) is used through ``count``,
``any`` and ``all``.

**Operators**, loosest first, as in Python:

* ``a if condition else b``
* ``or``, then ``and``, then ``not``
* comparisons ``<  <=  >  >=  ==  !=`` (one per comparison: write
  ``0 < x and x < 1``, not ``0 < x < 1``)
* ``+  -``, then ``*  /  %``, then a leading ``-``
* parentheses group: ``(a + b) * 2``

``and``/``or`` stop as soon as the answer is known and give the operand that
decided it, like Python. ``true``/``false`` count as 1/0 in arithmetic. Text can
be compared with text, never with numbers (``controls.mode == 2`` where the mode
is text is an error). Dividing by zero gives infinity (or "not a number" for
``0 / 0``) instead of stopping the show; ``%`` is the remainder, with the sign
of the divisor as in Python (``-7 % 3`` is 2).

**Functions:**

* ``clamp(x, lo, hi)``: x kept within lo..hi
* ``lerp(a, b, t)``: a when t is 0, b when t is 1, in between proportionally
* ``map_range(x, in_lo, in_hi, out_lo, out_hi)``: x moved from one range to the
  other, kept within out_lo..out_hi
* ``smoothstep(edge0, edge1, x)``: 0 below edge0, 1 above edge1, an S-curve between
* ``min(a, b, ...)``, ``max(a, b, ...)``, ``abs(x)``
* ``round(x)`` (halves away from zero), ``floor(x)``, ``ceil(x)``
* ``since(event)``: seconds since the event last happened (infinite if never)
* ``stale(name)``: true while the signal's source is offline or has never spoken
* ``any(visitors, test)``, ``all(visitors, test)``, ``count(visitors, test)``:
  whether any / every visitor passes the test, or how many do; inside the test,
  plain names are that visitor's fields: ``id``, ``hands_raised``,
  ``hand_height``, ``x``, ``distance``... (looked up on the visitor, then on its
  body features); dotted names are still signals. ``count(visitors)`` is how
  many there are.

**Missing values.** A signal that has never been set has no value; an
expression that needs it gives "nothing" (``None``), and a condition that needs
it is false. Nothing an expression does at run time can raise an error.

**Mistakes** are reported when the exhibit loads, each at its place in the
expression (columns in messages count from 1)::

    body.cout > 1        unknown name `body.cout` (did you mean `body.count`?)
    clamp(x, 0           expected `)` to close `(` at column 6
    clamp(x, 0)          `clamp` takes 3 arguments, got 2
    0 < x < 1            a comparison cannot be chained: write `a < b and b < c`
    controls.mode > 1    cannot compare text with a number (when the mode is text)
    body.count > 0 for 2 the hold `2` needs a unit (write `for 2s`)

For programmers: the source is tokenized and parsed (recursive descent) into a
small syntax tree, which is compiled into nested Python closures; Python's
``eval``/``exec``/``compile`` are never used, so an expression can reach only
the names its :class:`Resolver` gives it. Names are looked up once, at compile
time, and signal reads are plain attribute reads on the captured
:class:`~engine.signals.Signal` objects. Every compile error is an
:class:`ExpressionError` with the 0-based offset of the problem in the source.
"""

from __future__ import annotations

import math
import numbers
import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.problems import did_you_mean
from engine.signals import SignalStore

Fn = Callable[[], Any]
"""A compiled piece of an expression: call it to get its value."""
Slot = tuple[Callable[[Any, Any], Any], Any, Any]
"""``(test, cell, constant)``: a comparison of a signal with a constant, computed as ``test(cell.value, constant)``."""

INF = math.inf
NAN = math.nan

# --- errors ---------------------------------------------------------------------------------------------------------


class ExpressionError(Exception):
    """A mistake in an expression, at ``offset`` (0-based) for ``length`` characters."""

    def __init__(self, message: str, offset: int, length: int = 1, hint: str | None = None) -> None:
        self.message = message
        self.offset = offset
        self.length = length
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)

    @property
    def column(self) -> int:
        """1-based column of the problem within the expression."""
        return self.offset + 1


# --- resolving names ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameInfo:
    """What a name means: its type and how to read it."""

    type: str
    """``float``, ``int``, ``bool``, ``str``, ``event`` or ``object``."""
    get: Fn
    """Reads the current value (None while there is none)."""
    stale: Callable[[], bool] | None = None
    """Whether the source is offline or has never spoken."""
    since: Callable[[], float] | None = None
    """For events: seconds since the last one (``inf`` if never)."""
    cell: Any = None
    """Optional object whose ``.value`` is ``get()`` and ``.stale`` is ``stale()`` (a Signal): read without a call."""
    key: str | None = None
    """The signal's name in the store (after aliases), listed in :attr:`Expression.names`; default: the name."""
    fields: Mapping[str, str] | None = None
    """For collections: the item fields and their types, so misspelt fields are compile errors."""


class Resolver(Protocol):
    """Tells the compiler what names mean."""

    def resolve(self, name: str) -> NameInfo | None:
        """The meaning of ``name``, or None if there is no such name."""

    def names(self) -> Iterable[str]:
        """Every known name, for did-you-mean hints."""


class StoreResolver:
    """Names are signals of a :class:`SignalStore`, captured once at compile time.

    ``event_times(name)`` gives an event's last time (default: the signal's
    timestamp); ``now`` must be the clock the store stamps with. ``aliases``
    maps a prefix to another (``{"visitors": "body"}`` makes ``visitors.count``
    read ``body.count``). ``item_fields`` gives, per collection signal, its
    items' fields and types, so that tests in ``any``/``all``/``count`` are checked.
    """

    def __init__(
        self,
        store: SignalStore,
        event_times: Callable[[str], float | None] | None = None,
        now: Callable[[], float] = time.monotonic,
        aliases: Mapping[str, str] | None = None,
        item_fields: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.store = store
        self.event_times = event_times
        self.now = now
        # Longest prefix first, so a more specific alias wins.
        self.aliases = sorted((aliases or {}).items(), key=lambda item: -len(item[0]))
        self.item_fields = dict(item_fields or {})

    def canonical(self, name: str) -> str:
        """The store name ``name`` stands for (after aliases)."""
        if self._declared(name):
            return name
        for alias, target in self.aliases:
            if name == alias or name.startswith(alias + "."):
                return target + name[len(alias) :]
        return name

    def _declared(self, name: str) -> bool:
        try:
            self.store.get(name)
        except KeyError:
            return False
        return True

    def resolve(self, name: str) -> NameInfo | None:
        key = self.canonical(name)
        if not self._declared(key):
            return None
        signal = self.store.get(key)
        since = self._since(key, signal) if signal.type == "event" else None
        return NameInfo(
            type=signal.type,
            get=lambda: signal.value,
            stale=lambda: signal.stale,
            since=since,
            cell=signal,
            key=key,
            fields=self.item_fields.get(key),
        )

    def names(self) -> list[str]:
        names = self.store.names()
        extra = [
            alias + name[len(target) :]
            for alias, target in self.aliases
            for name in names
            if name.startswith(target + ".")
        ]
        return names + extra

    def _since(self, key: str, signal: Any) -> Callable[[], float]:
        now, event_times = self.now, self.event_times

        def since() -> float:
            last = signal.timestamp if event_times is None else event_times(key)
            return INF if last is None else now() - last

        return since


# --- tokens ---------------------------------------------------------------------------------------------------------

NUM, DUR, STR, NAME, OP, KW, END = "number", "duration", "text", "name", "operator", "keyword", "end"
KEYWORDS = frozenset({"and", "or", "not", "if", "else", "true", "false", "for"})
UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}
COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_OPERATORS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]*")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_]+")
_DIGITS = frozenset("0123456789")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}
_WRONG_OPERATORS = {
    "&&": "write `and`",
    "||": "write `or`",
    "&": "write `and`",
    "|": "write `or`",
    "=": "write `==` to compare",
    "!": "write `not`, or `!=` for “not equal”",
}
_PYTHONISMS = {
    "True": "write `true`",
    "False": "write `false`",
    "None": "there is no `None`: a missing value makes the whole expression give nothing",
    "is": "write `==`",
    "AND": "write `and`",
    "OR": "write `or`",
    "NOT": "write `not`",
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    offset: int
    value: Any = None


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with an ``end`` token; raises ExpressionError."""
    tokens: list[Token] = []
    pos, size = 0, len(source)
    while pos < size:
        char = source[pos]
        if char in " \t\r\n":
            pos += 1
            continue
        if char in _DIGITS or (char == "." and pos + 1 < size and source[pos + 1] in _DIGITS):
            token = _number(source, pos)
        elif char == "_" or (char.isascii() and char.isalpha()):
            token = _name(source, pos)
        elif char in "'\"":
            token = _string(source, pos)
        else:
            token = _operator(source, pos)
        tokens.append(token)
        pos = token.offset + len(token.text)
    tokens.append(Token(END, "", size))
    return tokens


def _number(source: str, pos: int) -> Token:
    match = _NUMBER.match(source, pos)
    assert match is not None  # the caller saw a digit (or a dot and a digit)
    digits = match.group()
    tail = _NUMBER_TAIL.match(source, match.end())
    unit = tail.group() if tail else ""
    text = digits + unit
    if unit and unit not in UNITS:
        hint = "durations end in `ms`, `s`, `min` or `h`, like `0.5s`" if unit[0].isalpha() else None
        raise ExpressionError(f"bad number `{text}`", pos, len(text), hint=hint)
    try:
        number: float | int = float(digits) if any(c in digits for c in ".eE") else int(digits)
    except ValueError:  # more digits than Python converts (about 4300)
        raise ExpressionError(f"the number `{digits[:12]}…` is too long", pos, len(text)) from None
    if unit:
        return Token(DUR, text, pos, float(number) * UNITS[unit])
    return Token(NUM, text, pos, number)


def _name(source: str, pos: int) -> Token:
    match = _IDENTIFIER.match(source, pos)
    assert match is not None  # the caller saw a letter or `_`
    end = match.end()
    while end < len(source) and source[end] == ".":
        segment = _SEGMENT.match(source, end + 1)
        if segment is None:
            raise ExpressionError(
                f"a name cannot end with `.`: `{source[pos : end + 1]}`", end, hint="write names like `body.count`"
            )
        end = segment.end()
    text = source[pos:end]
    return Token(KW if text in KEYWORDS else NAME, text, pos)


def _string(source: str, pos: int) -> Token:
    quote, index = source[pos], pos + 1
    chars: list[str] = []
    while index < len(source):
        char = source[index]
        if char == quote:
            return Token(STR, source[pos : index + 1], pos, "".join(chars))
        if char == "\\" and index + 1 < len(source):
            following = source[index + 1]
            chars.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        chars.append(char)
        index += 1
    raise ExpressionError("unterminated text", pos, len(source) - pos, hint=f"close it with `{quote}`")


def _operator(source: str, pos: int) -> Token:
    for op in _OPERATORS:
        if source.startswith(op, pos):
            return Token(OP, op, pos)
    for wrong, hint in _WRONG_OPERATORS.items():
        if source.startswith(wrong, pos):
            raise ExpressionError(f"`{wrong}` is not an operator", pos, len(wrong), hint=hint)
    char = source[pos]
    if char == "`":
        raise ExpressionError("unexpected backtick", pos, hint="write names without quotes, like `body.count`")
    shown = char if char.isprintable() else f"U+{ord(char):04X}"
    raise ExpressionError(f"unexpected character `{shown}`", pos)


# --- syntax tree ----------------------------------------------------------------------------------------------------


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
class Name(Node):
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


# Result types known at compile time ("any" when only the run time knows).
NUMBER, BOOL, TEXT, EVENT, OBJECT, ANY = "number", "bool", "str", "event", "object", "any"
_SIGNAL_TYPES = {"float": NUMBER, "int": NUMBER, "bool": BOOL, "str": TEXT, "event": EVENT, "object": OBJECT}

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
MAX_DEPTH = 64
"""Syntax trees deeper than this are refused (keeps evaluation's stack small)."""


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
            return Name(token.offset, token.offset + len(token.text), token.text)
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


# --- compiling ------------------------------------------------------------------------------------------------------


class _Missing(Exception):
    """A value needed at run time is not there (a signal never set, a field an item lacks)."""


@dataclass(slots=True)
class Compiled:
    """One compiled node: its closure and what is known about it at compile time."""

    fn: Fn
    type: str
    maybe_none: bool = False
    """Whether ``fn`` can return None (a missing value that consumers must pass on)."""
    const: bool = False
    cell: Any = None
    """Set when ``fn`` just reads ``cell.value``: lets parents read it without a call."""
    stale_cell: Any = None
    """Set when ``fn`` just reads ``cell.stale``."""
    slot: Slot | None = None
    """Set when ``fn`` is ``test(cell.value, constant)``: a piece :func:`_plan_chain` can inline."""
    watched: Any = None
    """Set when ``fn`` is ``not cell.stale`` (the usual ``not stale(x)``), for :func:`_plan_chain`."""
    parts: list[Compiled] | None = None
    """For ``and`` chains: the compiled operands, for :func:`_plan_chain`."""


@dataclass(slots=True)
class _Scope:
    """Inside ``any``/``all``/``count``: plain names are fields of the current item."""

    slot: list[Any]
    fields: Mapping[str, str] | None


@dataclass
class Compiler:
    source: str
    resolver: Resolver
    names: set[str] = field(default_factory=set)
    time_dependent: bool = False
    scopes: list[_Scope] = field(default_factory=list)
    depth: int = 0

    def compile(self, node: Node) -> Compiled:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression too long or nested (more than {MAX_DEPTH} levels)", node.offset)
        try:
            return self._compile(node)
        finally:
            self.depth -= 1

    def _compile(self, node: Node) -> Compiled:
        if isinstance(node, Literal):
            return _constant(node.value, node.type)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            return self.negation(node) if node.op == "not" else self.minus(node)
        if isinstance(node, Binary):
            return self.comparison(node) if node.op in COMPARISONS else self.arithmetic(node)
        if isinstance(node, Logic):
            return self.logic(node)
        if isinstance(node, Conditional):
            return self.conditional(node)
        if isinstance(node, Call):
            return self.call(node)
        raise TypeError(f"not a syntax node: {node!r}")  # unreachable: the parser makes only the nodes above

    # --- names ---

    def name(self, node: Name) -> Compiled:
        found = self.lookup(node)
        if isinstance(found, Compiled):
            return found
        kind = _SIGNAL_TYPES.get(found.type, ANY)
        if kind == EVENT:
            raise ExpressionError(
                f"`{node.name}` is an event: it has no value",
                node.offset,
                len(node.name),
                hint=f"for “happened recently” write `since({node.name}) < 2s`",
            )
        if kind == OBJECT:
            raise ExpressionError(
                f"`{node.name}` is a collection",
                node.offset,
                len(node.name),
                hint=f"use it in `count({node.name})`, `any({node.name}, ...)` or `all({node.name}, ...)`",
            )
        cell = found.cell
        if cell is not None:
            slot = (operator.is_, cell, True) if kind == BOOL else None
            return Compiled(lambda: cell.value, kind, maybe_none=True, cell=cell, slot=slot)
        return Compiled(found.get, kind, maybe_none=True)

    def lookup(self, node: Name) -> NameInfo | Compiled:
        """A field of the current item (as compiled code), or a signal's NameInfo."""
        name = node.name
        if "." not in name and not name.startswith("_"):
            for scope in reversed(self.scopes):
                if scope.fields is None or name in scope.fields:
                    kind = ANY if scope.fields is None else _SIGNAL_TYPES.get(scope.fields[name], ANY)
                    return Compiled(_field_reader(scope.slot, name), kind, maybe_none=True)
        info = None if any(part.startswith("__") for part in name.split(".")) else self.resolver.resolve(name)
        if info is None:
            raise self.unknown(node)
        self.names.add(info.key or name)
        return info

    def signal(self, node: Node, function: str) -> NameInfo:
        """The signal named as the argument of ``since``/``stale``/``any``..., which must be a plain name."""
        if not isinstance(node, Name):
            raise ExpressionError(
                f"`{function}` needs a signal name here", node.offset, node.end - node.offset, hint=_USAGE[function]
            )
        found = self.lookup(node)
        if isinstance(found, Compiled):
            raise ExpressionError(
                f"`{node.name}` is a field of each item here, not a signal", node.offset, len(node.name)
            )
        return found

    def unknown(self, node: Name) -> ExpressionError:
        choices = list(self.resolver.names())
        for scope in self.scopes:
            choices.extend(scope.fields or ())
        hint = _PYTHONISMS.get(node.name) or did_you_mean(node.name, choices)
        return ExpressionError(f"unknown name `{node.name}`", node.offset, len(node.name), hint=hint)

    # --- operators ---

    def minus(self, node: Unary) -> Compiled:
        operand = self.numeric(node.operand, "-")
        f = operand.fn
        return _fold(Compiled(lambda: -f(), NUMBER, const=operand.const))

    def negation(self, node: Unary) -> Compiled:
        operand = self.compile(node.operand)
        f, cell, stale_cell = operand.fn, operand.cell, operand.stale_cell
        if stale_cell is not None:
            return Compiled(lambda: not stale_cell.stale, BOOL, watched=stale_cell)
        if cell is not None:

            def not_cell() -> Any:
                value = cell.value
                return None if value is None else not value

            slot = (operator.is_, cell, False) if operand.type == BOOL else None
            return Compiled(not_cell, BOOL, maybe_none=True, slot=slot)
        if not operand.maybe_none:
            return _fold(Compiled(lambda: not f(), BOOL, const=operand.const))

        def not_value() -> Any:
            value = f()
            return None if value is None else not value

        return Compiled(not_value, BOOL, maybe_none=True)

    def arithmetic(self, node: Binary) -> Compiled:
        left, right = self.numeric(node.left, node.op), self.numeric(node.right, node.op)
        fn = _ARITHMETIC[node.op](left, right)
        return _fold(Compiled(fn, NUMBER, const=left.const and right.const))

    def numeric(self, node: Node, what: str) -> Compiled:
        """Compile an operand that must be a number (true/false count as 1/0)."""
        compiled = self.compile(node)
        if compiled.type == TEXT:
            raise ExpressionError(f"`{what}` needs numbers, got text", node.offset, node.end - node.offset)
        if compiled.type == ANY:
            compiled = Compiled(_checked_number(compiled.fn), NUMBER)
        return compiled

    def comparison(self, node: Binary) -> Compiled:
        left, right = self.compile(node.left), self.compile(node.right)
        kinds = {left.type, right.type}
        if TEXT in kinds and kinds & {NUMBER, BOOL}:
            raise ExpressionError(
                f"cannot compare {_DESCRIBE[left.type]} with {_DESCRIBE[right.type]}",
                node.offset,
                node.end - node.offset,
                hint="text is only equal to text" if node.op in ("==", "!=") else None,
            )
        return _fold(_compare(node.op, left, right))

    def logic(self, node: Logic) -> Compiled:
        operands = [self.compile(operand) for operand in node.operands]
        kinds = {operand.type for operand in operands}
        kind = kinds.pop() if len(kinds) == 1 else ANY
        maybe_none = any(operand.maybe_none for operand in operands)
        fns = [operand.fn for operand in operands]
        if node.op == "and":
            return Compiled(_all_of(fns), kind, maybe_none=maybe_none, parts=operands)
        return Compiled(_first_of(fns, [operand.maybe_none for operand in operands]), kind, maybe_none=maybe_none)

    def conditional(self, node: Conditional) -> Compiled:
        then, condition, otherwise = (self.compile(n) for n in (node.then, node.condition, node.otherwise))
        kind = then.type if then.type == otherwise.type else ANY
        a, test, b = then.fn, condition.fn, otherwise.fn
        if condition.maybe_none:

            def choose() -> Any:
                chosen = test()
                if chosen is None:
                    return None
                return a() if chosen else b()
        else:

            def choose() -> Any:
                return a() if test() else b()

        return Compiled(choose, kind, maybe_none=then.maybe_none or otherwise.maybe_none or condition.maybe_none)

    # --- functions ---

    def call(self, node: Call) -> Compiled:
        function = node.function
        if function in ("any", "all", "count"):
            return self.collection(node)
        if function == "since":
            info = self.signal(node.args[0], "since")
            if info.since is None or info.type != "event":
                name = node.args[0]
                raise ExpressionError(
                    f"`since` needs an event; `{self.source[name.offset : name.end]}` is not one",
                    name.offset,
                    name.end - name.offset,
                    hint=_USAGE["since"],
                )
            self.time_dependent = True
            return Compiled(info.since, NUMBER)
        if function == "stale":
            return self.stale(node)
        args = [self.numeric(arg, function) for arg in node.args]
        fn = _MATH[function](*[arg.fn for arg in args]) if function in _MATH else _extremum(function, args)
        return _fold(Compiled(fn, NUMBER, const=all(arg.const for arg in args)))

    def stale(self, node: Call) -> Compiled:
        info = self.signal(node.args[0], "stale")
        cell = info.cell
        if cell is not None:
            return Compiled(lambda: cell.stale, BOOL, stale_cell=cell)
        if info.stale is None:
            name = node.args[0]
            raise ExpressionError(
                f"cannot tell whether `{self.source[name.offset : name.end]}` is stale",
                name.offset,
                name.end - name.offset,
            )
        return Compiled(info.stale, BOOL)

    def collection(self, node: Call) -> Compiled:
        function, source = node.function, node.args[0]
        info = self.signal(source, function)
        if info.type != "object":
            raise ExpressionError(
                f"`{function}` needs a collection such as `body.visitors`; "
                f"`{self.source[source.offset : source.end]}` is {_DESCRIBE[_SIGNAL_TYPES.get(info.type, ANY)]}",
                source.offset,
                source.end - source.offset,
            )
        cell = info.cell
        items: Fn = (lambda: cell.value) if cell is not None else info.get
        if len(node.args) == 1:
            if function != "count":
                raise ExpressionError(f"`{function}` needs a test", node.offset, node.end - node.offset)
            return Compiled(lambda: len(items()), NUMBER)
        scope = _Scope([None], info.fields)
        self.scopes.append(scope)
        try:
            test = self.compile(node.args[1])
        finally:
            self.scopes.pop()
        return Compiled(_COLLECTIONS[function](items, scope.slot, test.fn), BOOL if function != "count" else NUMBER)


_DESCRIBE = {
    NUMBER: "a number",
    BOOL: "true/false",
    TEXT: "text",
    EVENT: "an event",
    OBJECT: "a collection",
    ANY: "a value",
}
_USAGE = {
    "since": "write like `since(body.wave)`",
    "stale": "write like `stale(plinth.button)`",
    "any": "write like `any(body.visitors, hands_raised > 0.5)`",
    "all": "write like `all(body.visitors, distance < 3)`",
    "count": "write like `count(body.visitors, x < 0.5)`",
}

# --- run-time pieces ------------------------------------------------------------------------------------------------


def _constant(value: Any, kind: str) -> Compiled:
    return Compiled(lambda: value, kind, const=True)


def _fold(compiled: Compiled) -> Compiled:
    """Evaluate a node whose operands are all constants once, now."""
    if not compiled.const:
        return compiled
    try:
        value = compiled.fn()
    except Exception:  # e.g. round(1e400): leave it to run time, where it gives None like any failure
        return Compiled(compiled.fn, compiled.type)
    return _constant(value, compiled.type)


def _field_reader(slot: list[Any], name: str) -> Fn:
    """Reads ``name`` of the current item: its attribute, else its ``features``' (decided once per item type)."""
    accessors: dict[type, Callable[[Any], Any]] = {}

    def read() -> Any:
        item = slot[0]
        accessor = accessors.get(type(item))
        if accessor is None:
            accessor = accessors[type(item)] = _accessor(item, name)
        return accessor(item)

    return read


def _accessor(item: Any, name: str) -> Callable[[Any], Any]:
    if hasattr(item, name):
        return operator.attrgetter(name)
    if hasattr(getattr(item, "features", None), name):
        return operator.attrgetter("features." + name)
    return _no_field(name)


def _no_field(name: str) -> Callable[[Any], Any]:
    def missing(item: Any) -> Any:
        raise _Missing(f"{type(item).__name__} has no field `{name}`")

    return missing


def _checked_number(f: Fn) -> Fn:
    """A value only the run time knows the type of, used as a number: anything else is a failure."""

    def number() -> Any:
        value = f()
        if isinstance(value, numbers.Real):
            return value
        raise _Missing(f"not a number: {value!r}")

    return number


def _divide(a: Fn, b: Fn) -> Fn:
    def divide() -> Any:
        x, y = a(), b()
        if y == 0 and isinstance(y, numbers.Real):
            if x is None:
                raise _Missing("no value to divide")
            return _ieee_divide(x, y)
        return x / y

    return divide


def _ieee_divide(x: Any, y: Any) -> float:
    """``x / 0`` as IEEE 754 has it: ±inf, or nan for 0/0 and nan/0."""
    if x != x or x == 0:
        return NAN
    return math.copysign(INF, x) * math.copysign(1.0, y)


def _modulo(a: Fn, b: Fn) -> Fn:
    def modulo() -> Any:
        x, y = a(), b()
        if y == 0 and isinstance(y, numbers.Real):
            if x is None:
                raise _Missing("no value to divide")
            return NAN
        return x % y

    return modulo


def _plus(left: Compiled, right: Compiled) -> Fn:
    a, b = left.fn, right.fn
    if right.const:
        c = b()
        return lambda: a() + c
    return lambda: a() + b()


def _minus(left: Compiled, right: Compiled) -> Fn:
    a, b = left.fn, right.fn
    if right.const:
        c = b()
        return lambda: a() - c
    return lambda: a() - b()


def _times(left: Compiled, right: Compiled) -> Fn:
    a, b = left.fn, right.fn
    if right.const:
        c = b()
        return lambda: a() * c
    if left.const:
        c = a()
        return lambda: c * b()
    return lambda: a() * b()


_ARITHMETIC: dict[str, Callable[[Compiled, Compiled], Fn]] = {
    "+": _plus,
    "-": _minus,
    "*": _times,
    "/": lambda left, right: _divide(left.fn, right.fn),
    "%": lambda left, right: _modulo(left.fn, right.fn),
}

_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _compare(op: str, left: Compiled, right: Compiled) -> Compiled:
    """The closure for a comparison, specialised for the common shapes (signal against constant)."""
    const = left.const and right.const
    if ANY in (left.type, right.type):
        return Compiled(_compare_checked(op, left.fn, right.fn), BOOL, maybe_none=True)
    if left.const and not right.const:
        left, right, op = right, left, _FLIPPED[op]
    maybe_none = op in ("==", "!=") and (left.maybe_none or right.maybe_none)
    slot = None
    if right.const and not left.const:
        c = right.fn()
        fn = _compare_cell(op, left.cell, c) if left.cell is not None else _compare_constant(op, left.fn, c)
        if left.cell is not None and op != "!=":  # `None != c` is true: a missing value must not pass
            slot = (_COMPARE[op], left.cell, c)
    else:
        fn = _compare_values(op, left.fn, right.fn)
    return Compiled(fn, BOOL, maybe_none=maybe_none, const=const, slot=slot)


def _compare_cell(op: str, cell: Any, c: Any) -> Fn:
    """A signal against a constant: one attribute read, one comparison."""
    if op == "<":
        return lambda: cell.value < c
    if op == "<=":
        return lambda: cell.value <= c
    if op == ">":
        return lambda: cell.value > c
    if op == ">=":
        return lambda: cell.value >= c
    if op == "==":

        def equal() -> Any:
            value = cell.value
            return None if value is None else value == c

        return equal

    def not_equal() -> Any:
        value = cell.value
        return None if value is None else value != c

    return not_equal


def _compare_constant(op: str, f: Fn, c: Any) -> Fn:
    if op == "<":
        return lambda: f() < c
    if op == "<=":
        return lambda: f() <= c
    if op == ">":
        return lambda: f() > c
    if op == ">=":
        return lambda: f() >= c
    test = _COMPARE[op]

    def equality() -> Any:
        value = f()
        return None if value is None else test(value, c)

    return equality


def _compare_values(op: str, f: Fn, g: Fn) -> Fn:
    test = _COMPARE[op]
    if op not in ("==", "!="):
        return lambda: test(f(), g())

    def equality() -> Any:
        a, b = f(), g()
        return None if a is None or b is None else test(a, b)

    return equality


def _compare_checked(op: str, f: Fn, g: Fn) -> Fn:
    """Operands whose types only the run time knows: values that cannot be compared are unequal, not a failure."""
    test = _COMPARE[op]

    def compare() -> Any:
        a, b = f(), g()
        if a is None or b is None:
            return None
        if isinstance(a, str) != isinstance(b, str):
            return op == "!="
        try:
            return test(a, b)
        except TypeError:  # e.g. a tuple against a number: as with text, simply not true
            return op == "!="

    return compare


def _all_of(fns: Sequence[Fn]) -> Fn:
    """``a and b and ...``: a flat closure for up to six operands; longer chains become a shallow tree."""
    fns = list(fns)
    while len(fns) > 6:
        fns = [_all_of(fns[i : i + 6]) for i in range(0, len(fns), 6)]
    if len(fns) == 1:
        return fns[0]
    if len(fns) == 2:
        a, b = fns
        return lambda: a() and b()
    if len(fns) == 3:
        a, b, c = fns
        return lambda: a() and b() and c()
    if len(fns) == 4:
        a, b, c, d = fns
        return lambda: a() and b() and c() and d()
    if len(fns) == 5:
        a, b, c, d, e = fns
        return lambda: a() and b() and c() and d() and e()
    a, b, c, d, e, g = fns
    return lambda: a() and b() and c() and d() and e() and g()


def _first_of(fns: Sequence[Fn], maybe_none: Sequence[bool]) -> Fn:
    """``a or b or ...``: a missing value stops the chain (it might have been true). Long chains become a balanced
    tree of pairs (the grouping does not change the result), so evaluation never nests deeply."""
    items = list(zip(fns, maybe_none, strict=True))
    while len(items) > 1:
        pairs = [
            (_either(f, g, f_none), f_none or g_none)
            for (f, f_none), (g, g_none) in zip(items[0::2], items[1::2], strict=False)
        ]
        items = pairs + items[len(pairs) * 2 :]
    return items[0][0]


def _either(a: Fn, b: Fn, maybe_none: bool) -> Fn:
    if not maybe_none:
        return lambda: a() or b()

    def either() -> Any:
        value = a()
        if value is None:
            return None
        return value or b()

    return either


def _truth(value: Any) -> bool:
    """Truth of a condition's value: nothing and nan are false."""
    if value is True:
        return True
    if value is None or value is False or value != value:
        return False
    return bool(value)


def _test(value: Any) -> bool:
    """Truth of one item's test in ``any``/``all``/``count``: a missing value is a failure of the whole."""
    if value is None:
        raise _Missing("a test gave no value")
    return _truth(value)


def _any(items: Fn, slot: list[Any], test: Fn) -> Fn:
    def any_() -> bool:
        for item in items():
            slot[0] = item
            if _test(test()):
                return True
        return False

    return any_


def _all(items: Fn, slot: list[Any], test: Fn) -> Fn:
    def all_() -> bool:
        for item in items():
            slot[0] = item
            if not _test(test()):
                return False
        return True

    return all_


def _count(items: Fn, slot: list[Any], test: Fn) -> Fn:
    def count() -> int:
        n = 0
        for item in items():
            slot[0] = item
            if _test(test()):
                n += 1
        return n

    return count


_COLLECTIONS = {"any": _any, "all": _all, "count": _count}


def _clamp(x: Fn, lo: Fn, hi: Fn) -> Fn:
    def clamp() -> Any:
        value, low, high = x(), lo(), hi()
        return low if value < low else high if value > high else value

    return clamp


def _lerp(a: Fn, b: Fn, t: Fn) -> Fn:
    def lerp() -> Any:
        start = a()
        return start + (b() - start) * t()

    return lerp


def _unit(x: Any, low: Any, high: Any) -> Any:
    """Where x lies from low (0) to high (1), kept within 0..1; a step at low when the range is empty."""
    if high == low:
        return 0.0 if x < low else 1.0
    t = (x - low) / (high - low)
    return 0.0 if t < 0 else 1.0 if t > 1 else t


def _map_range(x: Fn, in_lo: Fn, in_hi: Fn, out_lo: Fn, out_hi: Fn) -> Fn:
    def map_range() -> Any:
        t = _unit(x(), in_lo(), in_hi())
        low = out_lo()
        return low + (out_hi() - low) * t

    return map_range


def _smoothstep(edge0: Fn, edge1: Fn, x: Fn) -> Fn:
    def smoothstep() -> Any:
        low, high = edge0(), edge1()
        t = _unit(x(), low, high)
        return t * t * (3 - 2 * t)

    return smoothstep


def _round_half_away(x: Any) -> Any:
    if not math.isfinite(x):
        return x
    whole = math.floor(abs(x))
    if abs(x) - whole >= 0.5:
        whole += 1
    return whole if x >= 0 else -whole


def _finite_or_same(rounding: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """floor/ceil that give inf and nan back unchanged instead of failing."""
    return lambda x: rounding(x) if math.isfinite(x) else x


def _one(function: Callable[[Any], Any]) -> Callable[[Fn], Fn]:
    return lambda x: lambda: function(x())


_MATH: dict[str, Callable[..., Fn]] = {
    "clamp": _clamp,
    "lerp": _lerp,
    "map_range": _map_range,
    "smoothstep": _smoothstep,
    "abs": _one(abs),
    "round": _one(_round_half_away),
    "floor": _one(_finite_or_same(math.floor)),
    "ceil": _one(_finite_or_same(math.ceil)),
}


def _extremum(function: str, args: list[Compiled]) -> Fn:
    pick = min if function == "min" else max
    fns = [arg.fn for arg in args]
    if len(fns) == 2:
        a, b = fns
        return lambda: pick(a(), b())
    return lambda: pick([f() for f in fns])


# --- fused conditions -----------------------------------------------------------------------------------------------
# The usual condition is an `and` of comparisons of signals with constants (`body.count > 0 and plinth.button and
# not stale(body.count)`). As a tree of closures that costs one Python call per operand; here the whole chain runs
# in one frame, each comparison an inline `test(cell.value, constant)` with `test` from `operator` (a C call, no
# frame), and the root's `try` in the same frame. Python cannot build such a frame for any length without `exec`,
# so there is one per length, 1 to 6; other operands (and those beyond six) become one more slot that calls them.
# The operands are all true/false tests that only read values, so their order does not change a true result; a false
# or failed chain is handed to the root (`on_false`/`on_error`), which for `evaluate()` evaluates the exact tree
# when the answer may be None rather than False (a missing value).

OnError = Callable[[Exception], Any]


@dataclass(frozen=True, slots=True)
class _Watch:
    """Stands for the signal a chain checks staleness of, when it checks none."""

    stale: bool = False


@dataclass(frozen=True, slots=True)
class _Holder:
    """Holds the call to the other operands as a slot's ``cell``: ``operator.call(holder.value, None)``."""

    value: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Chain:
    """How an `and` of true/false tests runs in one frame."""

    slots: list[Slot]
    watched: Any
    """Whose staleness the chain checks (``not stale(x)``); a never-stale stand-in when none."""
    has_rest: bool
    """Whether the last slot calls the operands that are no comparison (or beyond six)."""

    def build(self, on_error: OnError, on_false: Fn) -> Fn:
        return _CHAINS[len(self.slots) - 1](self.slots, self.watched, on_error, on_false)

    def exact_when_false(self, exact: Fn) -> Fn:
        """What a false chain gives for ``evaluate()``: False, or the exact value when it may be None.

        Comparisons of a missing value with `<`... raise (handled by ``on_error``), but `==` and the bare reads of a
        true/false signal give False; only then, or when other operands ran, is the exact tree evaluated again.
        """
        if self.has_rest:
            return exact
        quiet = [cell for test, cell, _ in self.slots if test is operator.eq or test is operator.is_]
        if not quiet:
            return bool  # bool() is False, and a C call
        if len(quiet) == 1:
            (a,) = quiet
            return lambda: exact() if a.value is None else False
        if len(quiet) == 2:
            a, b = quiet
            return lambda: exact() if a.value is None or b.value is None else False

        def when_false() -> Any:
            for cell in quiet:
                if cell.value is None:
                    return exact()
            return False

        return when_false


def _plan_chain(compiled: Compiled) -> _Chain | None:
    """The one-frame plan for an `and` of true/false tests, or None when the expression is not one."""
    parts = compiled.parts or ([compiled] if compiled.slot is not None else None)
    if parts is None or any(part.type != BOOL for part in parts):
        return None
    slots: list[Slot] = []
    watched: Any = None
    others: list[Fn] = []
    for part in parts:
        if part.slot is not None:
            slots.append(part.slot)
        elif part.watched is not None and watched is None:
            watched = part.watched
        else:
            others.append(part.fn)
    if not slots:
        return None
    has_rest = bool(others) or len(slots) > len(_CHAINS)
    if has_rest:
        room = len(_CHAINS) - 1
        rest = _all_of(others + [_slot_fn(slot) for slot in slots[room:]])
        slots = [*slots[:room], (operator.call, _Holder(lambda _unused: rest()), None)]
    return _Chain(slots, _Watch() if watched is None else watched, has_rest)


def _slot_fn(slot: Slot) -> Fn:
    test, cell, constant = slot
    return lambda: test(cell.value, constant)


def _chain1(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    ((o1, c1, k1),) = slots

    def chain() -> Any:
        try:
            return (o1(c1.value, k1) and not watched.stale) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


def _chain2(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    (o1, c1, k1), (o2, c2, k2) = slots

    def chain() -> Any:
        try:
            return (o1(c1.value, k1) and o2(c2.value, k2) and not watched.stale) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


def _chain3(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    (o1, c1, k1), (o2, c2, k2), (o3, c3, k3) = slots

    def chain() -> Any:
        try:
            return (o1(c1.value, k1) and o2(c2.value, k2) and o3(c3.value, k3) and not watched.stale) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


def _chain4(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    (o1, c1, k1), (o2, c2, k2), (o3, c3, k3), (o4, c4, k4) = slots

    def chain() -> Any:
        try:
            return (
                o1(c1.value, k1) and o2(c2.value, k2) and o3(c3.value, k3) and o4(c4.value, k4) and not watched.stale
            ) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


def _chain5(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    (o1, c1, k1), (o2, c2, k2), (o3, c3, k3), (o4, c4, k4), (o5, c5, k5) = slots

    def chain() -> Any:
        try:
            return (
                o1(c1.value, k1)
                and o2(c2.value, k2)
                and o3(c3.value, k3)
                and o4(c4.value, k4)
                and o5(c5.value, k5)
                and not watched.stale
            ) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


def _chain6(slots: Sequence[Slot], watched: Any, on_error: OnError, on_false: Fn) -> Fn:
    (o1, c1, k1), (o2, c2, k2), (o3, c3, k3), (o4, c4, k4), (o5, c5, k5), (o6, c6, k6) = slots

    def chain() -> Any:
        try:
            return (
                o1(c1.value, k1)
                and o2(c2.value, k2)
                and o3(c3.value, k3)
                and o4(c4.value, k4)
                and o5(c5.value, k5)
                and o6(c6.value, k6)
                and not watched.stale
            ) or on_false()
        except Exception as error:  # handed to the root: counted as false, or evaluated again exactly
            return on_error(error)

    return chain


_CHAINS = (_chain1, _chain2, _chain3, _chain4, _chain5, _chain6)


# --- the compiled expression ----------------------------------------------------------------------------------------


class Expression:
    """A compiled expression. ``evaluate()`` gives its value (None when a value it needs is missing);
    ``evaluate_bool()`` its truth as a condition (false when missing). Neither ever raises."""

    __slots__ = ("evaluate", "evaluate_bool", "failures", "last_failure", "names", "source", "time_dependent", "type")

    evaluate: Callable[[], Any]
    evaluate_bool: Callable[[], bool]

    def __init__(self, source: str, compiled: Compiled, names: frozenset[str], time_dependent: bool) -> None:
        self.source = source
        self.names = names
        """The store names of the signals it reads (to re-evaluate when they change)."""
        self.time_dependent = time_dependent
        """Whether it uses ``since()``: its value changes with time alone, so it must be polled."""
        self.type = compiled.type
        """``number``, ``bool``, ``str`` or ``any``."""
        self.failures = 0
        """Evaluations stopped by a run-time problem (a missing value, a wrong type): they gave None/False."""
        self.last_failure: str | None = None
        exact = self._value_root(compiled.fn)
        chain = _plan_chain(compiled)
        if chain is None:
            self.evaluate = exact
            self.evaluate_bool = self._bool_root(compiled.fn)
        else:
            self.evaluate = chain.build(lambda _error: exact(), chain.exact_when_false(exact))
            self.evaluate_bool = chain.build(self._failed_false, bool)

    def _failed(self, error: Exception) -> None:
        self.failures += 1
        self.last_failure = f"{type(error).__name__}: {error}"

    def _failed_false(self, error: Exception) -> bool:
        self._failed(error)
        return False

    def _value_root(self, fn: Fn) -> Fn:
        failed = self._failed

        def evaluate() -> Any:
            try:
                return fn()
            except Exception as error:  # never raise at run time (foreign getters included): counted instead
                failed(error)
                return None

        return evaluate

    def _bool_root(self, fn: Fn) -> Callable[[], bool]:
        failed = self._failed

        def evaluate_bool() -> bool:
            try:
                value = fn()
                return value is True or (value is not False and _truth(value))
            except Exception as error:  # as in evaluate()
                failed(error)
                return False

        return evaluate_bool

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str, resolver: Resolver) -> Expression:
    """Compile ``source`` with names from ``resolver``; raises ExpressionError."""
    tree = parse(source)
    compiler = Compiler(source, resolver)
    compiled = compiler.compile(tree)
    return Expression(source, compiled, frozenset(compiler.names), compiler.time_dependent)


def compile_condition(source: str, resolver: Resolver) -> tuple[Expression, float | None]:
    """A condition with an optional hold (``... for 0.5s``): the expression and the hold in seconds."""
    expression_source, hold = parse_condition(source)
    return compile_expression(expression_source, resolver), hold
