"""The one error of the expression language: a mistake found when an expression is compiled."""

from __future__ import annotations


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
