"""Problems found in an exhibit file, reported as ``file:line:col: message (hint)``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in an exhibit file. Lines and columns are 1-based."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ExhibitInvalid(Exception):
    """An exhibit file has problems; nothing may be started from it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest known choice, or listing the few there are."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    if not options:
        return None
    if len(options) <= 8:
        return "expected one of: " + ", ".join(f"`{o}`" for o in options)
    return None
