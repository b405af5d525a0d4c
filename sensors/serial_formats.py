"""Line formats for text-speaking boards: one decoded line in, named fields out.

Pure parsing, no I/O: the serial driver splits the byte stream into lines,
decodes them, and hands each line (without its ending) to a format. A line
that does not fit raises :class:`FormatError`; the driver counts and drops
it, because one garbled line (a half-sent line after a board reset, noise on
a long USB cable) must never stop an exhibit.
"""

from __future__ import annotations

import csv
import json
import math
import re
from abc import ABC, abstractmethod
from typing import Any, Literal

from pydantic import Field, model_validator

from engine.model import Strict

FieldValue = int | float | bool | str
"""What a field can hold; the same scalar types as a signal value."""

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "on": True, "false": False, "off": False}
_DECODER = json.JSONDecoder()
"""Built once: json.loads builds a new decoder per call (1.3 µs of a 4.8 µs line). It reads ``NaN``
and ``Infinity`` as the floats they name; the sensor counts them as bad input."""


class FormatError(ValueError):
    """A line that does not fit its format; ``reason`` says why, briefly, for the drop counter's log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def auto_type(text: str) -> FieldValue:
    """A field's text as the value it most likely means.

    ``true/false/on/off`` (any case) become bools, ASCII integers ints, finite
    decimal numbers floats; anything else, ``nan`` and ``inf`` included (what
    Arduino's ``Serial.print`` writes for a broken float), stays a string, so a
    bad reading shows up as a type error instead of poisoning a mapping.
    Surrounding whitespace is ignored (``Serial.print(", ")`` is common).
    """
    text = text.strip()
    flag = _BOOLS.get(text.lower())
    if flag is not None:
        return flag
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.int_info.default_max_str_digits)
            return text
    if _FLOAT.fullmatch(text):
        value = float(text)
        return value if math.isfinite(value) else text
    return text


class LineFormat(ABC):
    """Turns one line into fields; raises FormatError, and only that, for a line that does not fit."""

    @abstractmethod
    def parse(self, line: str) -> dict[str, FieldValue]:
        """The fields of ``line`` (no line ending), by name."""

    def fields(self) -> list[str] | None:
        """Field names known before any line arrives (CSV columns, regex groups); None if any line may name any."""
        return None


class JsonLinesFormat(LineFormat):
    """One JSON object per line (ArduinoJson's ``serializeJson`` + ``println``).

    Nested objects flatten to dotted names and lists to indexes
    (``{"imu": {"acc": [1, 2]}}`` gives ``imu.acc.0`` and ``imu.acc.1``); null is
    dropped, as a reading that is not there; ``NaN``, ``Infinity`` and ``1e999`` are kept as the
    non-finite floats they are, for the sensor to count as bad input.
    """

    def parse(self, line: str) -> dict[str, FieldValue]:
        if not line.strip():
            raise FormatError("empty line")
        try:
            data = _DECODER.decode(line)
        except RecursionError:
            raise FormatError("JSON nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
            raise FormatError(f"bad JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FormatError(f"expected a JSON object, got {_json_kind(data)}")
        fields: dict[str, FieldValue] = {}
        # Iterative, so nesting depth is bounded only by what json.loads accepted.
        stack: list[tuple[str, Any]] = [(key, value) for key, value in reversed(data.items())]
        while stack:
            name, value = stack.pop()
            if isinstance(value, dict):
                stack.extend((f"{name}.{key}", item) for key, item in reversed(value.items()))
            elif isinstance(value, list):
                stack.extend((f"{name}.{index}", item) for index, item in reversed(list(enumerate(value))))
            elif value is not None:
                fields[name] = value
        return fields


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


class KeyValueFormat(LineFormat):
    """``button=1 distance=532.5 state=open``: pairs split by any of ``pairs``, key and value by ``separator``.

    A space in ``pairs`` stands for any whitespace (tabs too); runs of
    separators count as one, so ``a=1, b=2`` works.
    """

    def __init__(self, separator: str = "=", pairs: str = " ,;") -> None:
        if not separator:
            raise ValueError("separator must not be empty")
        if not pairs:
            raise ValueError("pairs must name at least one character that separates pairs")
        self._split = re.compile("[" + ("\\s" if " " in pairs else "") + re.escape(pairs.replace(" ", "")) + "]+")
        if self._split.search(separator):
            raise ValueError(f"separator {separator!r} contains a character that separates pairs ({pairs!r})")
        self.separator = separator
        self.pairs = pairs

    def parse(self, line: str) -> dict[str, FieldValue]:
        tokens = [token for token in self._split.split(line) if token]
        if not tokens:
            raise FormatError("empty line")
        fields: dict[str, FieldValue] = {}
        for token in tokens:
            key, found, value = token.partition(self.separator)
            if not found:
                raise FormatError(f"{_clip(token)!r} has no {self.separator!r}")
            key = key.strip()
            if not key:
                raise FormatError(f"{_clip(token)!r} has no key before {self.separator!r}")
            fields[key] = auto_type(value)
        return fields


class CsvFormat(LineFormat):
    """Delimited values in a fixed column order (``Serial.print(a); Serial.print(','); ...``); quotes allowed."""

    def __init__(self, columns: list[str], delimiter: str = ",") -> None:
        _check_columns(columns)
        _check_delimiter(delimiter)
        self.columns = list(columns)
        self.delimiter = delimiter

    def parse(self, line: str) -> dict[str, FieldValue]:
        if not line.strip():
            raise FormatError("empty line")
        try:
            rows = list(csv.reader([line], delimiter=self.delimiter, skipinitialspace=True, strict=True))
        except csv.Error as exc:
            raise FormatError(f"bad CSV: {exc}") from None
        values = rows[0] if rows else []
        if len(values) != len(self.columns):
            raise FormatError(f"expected {len(self.columns)} fields, got {len(values)}")
        return {name: auto_type(value) for name, value in zip(self.columns, values, strict=True)}

    def fields(self) -> list[str]:
        return list(self.columns)


class RegexFormat(LineFormat):
    """Free text with a pattern: each named group is a field (``T:(?P<temp>\\S+)``).

    The pattern is searched for anywhere in the line; anchor it with ``^...$``
    to insist on the whole line. Groups that did not take part are left out.
    """

    def __init__(self, pattern: str) -> None:
        self.regex = compile_pattern(pattern)
        self.pattern = pattern

    def parse(self, line: str) -> dict[str, FieldValue]:
        match = self.regex.search(line)
        if match is None:
            raise FormatError("line does not match the pattern")
        return {name: auto_type(value) for name, value in match.groupdict().items() if value is not None}

    def fields(self) -> list[str]:
        return group_names(self.regex)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled; ValueError, with the regex error, if it does not compile or names no group."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern does not compile: {exc}") from None
    if not regex.groupindex:
        raise ValueError("pattern has no named groups; name each field as (?P<name>...)")
    return regex


def group_names(regex: re.Pattern[str]) -> list[str]:
    """Named groups in the order they appear in the pattern."""
    return [name for name, _ in sorted(regex.groupindex.items(), key=lambda item: item[1])]


def _check_columns(columns: list[str]) -> None:
    if not columns:
        raise ValueError("columns must name at least one field")
    if any(not name.strip() for name in columns):
        raise ValueError("column names must not be empty")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ValueError(f"column names must be unique; repeated: {', '.join(repeated)}")


def _check_delimiter(delimiter: str) -> None:
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be exactly one character, not {delimiter!r}")
    if delimiter in '"\r\n':
        raise ValueError(f"delimiter cannot be {delimiter!r}")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LineFormatSettings(Strict):
    """How a board's text lines become fields."""

    format: Literal["json", "keyvalue", "csv", "regex"] = Field(
        default="json",
        description="`json`: one JSON object per line (nested keys joined with dots); "
        "`keyvalue`: `button=1 distance=532.5`; `csv`: values in a fixed column order; "
        "`regex`: free text matched by a pattern with named groups.",
    )
    columns: list[str] | None = Field(
        default=None, description="csv only: the field name of each column, in order (e.g. `[button, distance]`)."
    )
    delimiter: str = Field(default=",", description="csv only: the one character between values (`,`, `;`, tab).")
    separator: str = Field(default="=", description="keyvalue only: what separates a key from its value (`=` or `:`).")
    pattern: str | None = Field(
        default=None,
        description="regex only: a Python regular expression; each named group `(?P<name>...)` is a field, "
        "e.g. `T:(?P<temp>\\S+) H:(?P<humidity>\\S+)`. Searched anywhere in the line unless anchored with `^...$`.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LineFormatSettings:
        if self.format == "csv" and self.columns is None:
            raise ValueError("the csv format needs `columns`: the field name of each column, in order")
        if self.format != "csv" and self.columns is not None:
            raise ValueError(f"`columns` is for the csv format only, not {self.format}")
        if self.format == "regex" and self.pattern is None:
            raise ValueError("the regex format needs a `pattern` with named groups, e.g. `T:(?P<temp>\\S+)`")
        if self.format != "regex" and self.pattern is not None:
            raise ValueError(f"`pattern` is for the regex format only, not {self.format}")
        if self.format != "csv" and "delimiter" in self.model_fields_set:
            raise ValueError(f"`delimiter` is for the csv format only, not {self.format}")
        if self.format != "keyvalue" and "separator" in self.model_fields_set:
            raise ValueError(f"`separator` is for the keyvalue format only, not {self.format}")
        self.build()  # the formats' own checks: columns, delimiter, separator, pattern
        return self

    def fields(self) -> list[str] | None:
        """Field names known in advance: csv columns or regex group names; None for json and keyvalue."""
        if self.format == "csv" and self.columns is not None:
            return list(self.columns)
        if self.format == "regex" and self.pattern is not None:
            return group_names(compile_pattern(self.pattern))
        return None

    def build(self) -> LineFormat:
        """The format these settings describe; ValueError if they are inconsistent."""
        if self.format == "csv":
            if self.columns is None:
                raise ValueError("the csv format needs `columns`")
            return CsvFormat(self.columns, self.delimiter)
        if self.format == "regex":
            if self.pattern is None:
                raise ValueError("the regex format needs a `pattern`")
            return RegexFormat(self.pattern)
        if self.format == "keyvalue":
            return KeyValueFormat(self.separator)
        return JsonLinesFormat()
