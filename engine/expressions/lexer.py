"""Tokens: the source split into numbers, durations, text, names, operators and keywords (:func:`tokenize`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.expressions.errors import ExpressionError

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
