"""The run-time pieces of operators: the closures a compiled expression is made of for constants, item fields,
arithmetic, comparisons, ``and``/``or``, and the truth of a value; :class:`_Missing` stops an evaluation that lacks
a value it needs."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Sequence
from typing import Any

from engine.expressions.values import ANY, BOOL, INF, NAN, Compiled, Fn


class _Missing(Exception):
    """A value needed at run time is not there (a signal never set, a field an item lacks)."""


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
