"""What the parts of the language share: a compiled piece (:data:`Fn`), a comparison slot (:data:`Slot`), the
result types known at compile time, and :class:`Compiled`, what compiling one node gives."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Fn = Callable[[], Any]
"""A compiled piece of an expression: call it to get its value."""
Slot = tuple[Callable[[Any, Any], Any], Any, Any]
"""``(test, cell, constant)``: a comparison of a signal with a constant, computed as ``test(cell.value, constant)``."""

INF = math.inf
NAN = math.nan

# Result types known at compile time ("any" when only the run time knows).
NUMBER, BOOL, TEXT, EVENT, OBJECT, ANY = "number", "bool", "str", "event", "object", "any"


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
