"""YAML loading that keeps where every key and value was written.

ruamel.yaml is used because it follows YAML 1.2 (``on``/``no`` stay strings,
which curators expect), rejects duplicate keys and records positions.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.problems import ExhibitInvalid, Problem

YamlPath = tuple[str | int, ...]


@dataclass
class PositionedData:
    """Plain Python data (dict/list/scalars) and the 1-based positions it came from."""

    file: str
    data: Any
    keys: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    values: dict[YamlPath, tuple[int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    """The source text's lines, to place a problem inside a string (an expression)."""

    def position(self, path: YamlPath, *, key: bool = False) -> tuple[int, int]:
        """Where ``path`` was written; falls back to the nearest written ancestor."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return (1, 1)

    def problem(self, path: YamlPath, message: str, hint: str | None = None, *, key: bool = False) -> Problem:
        line, col = self.position(path, key=key)
        return Problem(self.file, line, col, message, hint)

    def problem_in_string(self, path: YamlPath, offset: int, message: str, hint: str | None = None) -> Problem:
        """A problem ``offset`` characters into the string value at ``path`` (past its opening quote)."""
        line, col = self.position(path)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if col - 1 < len(text) and text[col - 1] in "'\"":
            col += 1
        return Problem(self.file, line, col + offset, message, hint)


def load_yaml(text: str, file: str) -> PositionedData:
    """Parse ``text``; a syntax error raises :class:`ExhibitInvalid` with its position."""
    yaml = YAML(typ="rt", pure=True)
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in message:
            message = message.replace('found duplicate key "', "duplicate key `").split('" with value')[0] + "`"
        hint = None
        if (
            "duplicate key" not in message
            and exc.context
            and exc.context_mark
            and exc.problem_mark
            and exc.context_mark.line != exc.problem_mark.line
        ):
            hint = f"{exc.context.strip()} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        raise ExhibitInvalid([Problem(file, line, col, f"YAML syntax error: {message}", hint)]) from None
    except YAMLError as exc:
        raise ExhibitInvalid([Problem(file, 1, 1, f"YAML syntax error: {exc}")]) from None
    out = PositionedData(file=file, data=None, lines=text.splitlines())
    out.values[()] = (1, 1)
    out.data = _plain(raw, (), out)
    return out


def _plain(node: Any, path: YamlPath, out: PositionedData) -> Any:
    """Convert ruamel's round-trip types to plain Python, recording positions."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            plain_key = _scalar(key)
            child = (*path, str(plain_key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            out.keys[child] = (kl + 1, kc + 1)
            out.values[child] = (vl + 1, vc + 1)
            result[str(plain_key) if not isinstance(plain_key, str) else plain_key] = _plain(value, child, out)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            out.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(value, (*path, index), out))
        return items
    return _scalar(node)


def _scalar(value: Any) -> Any:
    # ruamel wraps scalars in subclasses (ScalarFloat, ScalarBoolean...); unwrap them.
    if value is None or isinstance(value, datetime.date):
        return value
    if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
