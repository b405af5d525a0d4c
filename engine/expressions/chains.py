"""Fused conditions: an ``and`` of true/false tests of signals, run in one Python frame (:func:`_plan_chain`)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.expressions.runtime import _all_of
from engine.expressions.values import BOOL, Compiled, Fn, Slot

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
