"""The run-time pieces of functions: ``any``/``all``/``count`` over a collection, and the arithmetic ones
(``clamp``, ``lerp``, ``map_range``, ``smoothstep``, ``abs``, ``round``, ``floor``, ``ceil``, ``min``, ``max``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from engine.expressions.runtime import _Missing, _truth
from engine.expressions.values import Compiled, Fn


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
