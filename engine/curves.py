"""Easing curves and durations, as curators write them in exhibit files.

A curve maps progress ``t`` in [0, 1] to an eased progress in [0, 1], with 0 at 0
and 1 at 1 (no curve overshoots, so a fade never leaves the range between its two
ends). Fades, timelines and mappings all use :func:`interpolate`, so a curve
means the same thing everywhere:

``linear``
    ``t``.
``ease-in``
    cubic, ``t³``: starts slowly, arrives at full speed.
``ease-out``
    cubic, ``1 − (1 − t)³``: starts at full speed, settles gently.
``ease-in-out``
    cubic (not smoothstep): ``4t³`` for the first half, ``1 − (2 − 2t)³ / 2`` for the second.
``exponential``
    ``(100^t − 1) / 99``: for perceptually even dimming. The eye judges light by
    ratios, so the level grows by the same factor in equal slices of time (×10 per
    half fade); the ``− 1`` and ``/ 99`` make it start at exactly 0 and end at exactly
    1. :func:`interpolate` mirrors it (``1 − f(1 − t)``) when the value falls, so a
    fade-out drops quickly while bright and lingers near dark, as a fade-in does.
``steps(n)``
    ``n`` equal jumps of ``1/n``, at ``t = 1/n, 2/n, …, 1`` (the last one at the end,
    like CSS ``jump-end``); ``steps(4)`` gives 0, ¼, ½, ¾ then 1.
``hold``
    0 until ``t`` reaches 1, then 1: one jump at the end (the same as ``steps(1)``).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

CURVE_NAMES = ("linear", "ease-in", "ease-out", "ease-in-out", "exponential", "hold", "steps(n)")
"""Every curve a curator may name; ``steps(n)`` stands for ``steps(1)``, ``steps(2)``..."""

EXPONENTIAL_BASE = 100.0
"""Ratio between the last and first 1 % of an ``exponential`` curve (a 40 dB range, ample for 8-bit DMX)."""

_STEPS = re.compile(r"^steps\(\s*([0-9]+)\s*\)$")
_STEP_TOLERANCE = 1e-9
"""Progress this close below a step counts as on it, so float noise in tick times never delays a jump by a tick."""

CurveFunction = Callable[[float], float]


def _clamp01(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else t


def _linear(t: float) -> float:
    return _clamp01(t)


def _ease_in(t: float) -> float:
    t = _clamp01(t)
    return t * t * t


def _ease_out(t: float) -> float:
    u = 1.0 - _clamp01(t)
    return 1.0 - u * u * u


def _ease_in_out(t: float) -> float:
    t = _clamp01(t)
    if t < 0.5:
        return 4.0 * t * t * t
    u = 2.0 - 2.0 * t
    return 1.0 - u * u * u / 2.0


def _exponential(t: float) -> float:
    return _clamp01((EXPONENTIAL_BASE ** _clamp01(t) - 1.0) / (EXPONENTIAL_BASE - 1.0))


def _steps(n: int) -> CurveFunction:
    def steps(t: float) -> float:
        return min(n, math.floor(_clamp01(t) * n + _STEP_TOLERANCE)) / n

    return steps


_NAMED: dict[str, CurveFunction] = {
    "linear": _linear,
    "ease-in": _ease_in,
    "ease-out": _ease_out,
    "ease-in-out": _ease_in_out,
    "exponential": _exponential,
    "hold": _steps(1),
}


def validate_curve(name: str) -> str:
    """The canonical spelling of a curve name (``steps( 4 )`` → ``steps(4)``); ValueError with a hint otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"a curve is a name such as `ease-in-out`, not {type(name).__name__} `{name}`")
    if name in _NAMED:
        return name
    steps = _STEPS.match(name)
    if steps:
        n = int(steps.group(1))
        if n < 1:
            raise ValueError(f"`{name}` needs at least one step: write `steps(n)` with n of 1 or more")
        return f"steps({n})"
    raise ValueError(_unknown_curve_message(name))


def _unknown_curve_message(name: str) -> str:
    valid = ", ".join(f"`{n}`" for n in CURVE_NAMES)
    message = f"unknown curve `{name}`; the curves are {valid}"
    guess = _guess_curve(name)
    return f"{message}; did you mean `{guess}`?" if guess else message


def _guess_curve(name: str) -> str | None:
    lowered = name.strip().lower().replace("_", "-").replace(" ", "-")
    if lowered in _NAMED:
        return lowered
    number = re.search(r"[0-9]+", lowered)
    if lowered.startswith("step") and number and int(number.group()) >= 1:
        return f"steps({int(number.group())})"
    prefixed = [known for known in _NAMED if len(lowered) >= 3 and known.startswith(lowered)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(lowered, [*_NAMED, "steps(4)"], n=1, cutoff=0.6)
    return close[0] if close else None


@functools.cache
def curve_function(name: str) -> CurveFunction:
    """The function of a curve name (see the module docstring); ValueError listing the names if unknown."""
    canonical = validate_curve(name)
    if canonical in _NAMED:
        return _NAMED[canonical]
    return _steps(int(canonical[len("steps(") : -1]))


def interpolate(curve: str, start: float, end: float, t: float) -> float:
    """The value at progress ``t`` of a move from ``start`` to ``end`` along ``curve``.

    Exactly ``start`` at ``t <= 0`` and exactly ``end`` at ``t >= 1``; always between
    the two, float rounding included. ``exponential`` is mirrored when falling (see
    the module docstring) so that dimming down is as even to the eye as dimming up.
    """
    if t <= 0.0:
        return start
    if t >= 1.0:
        return end
    shape = curve_function(curve)
    progress = 1.0 - shape(1.0 - t) if end < start and curve == "exponential" else shape(t)
    value = start + (end - start) * progress
    low, high = (start, end) if start <= end else (end, start)
    return low if value < low else high if value > high else value


CURVE_SCHEMA = {
    "type": "string",
    "pattern": r"^(linear|ease-in|ease-out|ease-in-out|exponential|hold|steps\(\s*[1-9][0-9]*\s*\))$",
    "description": "Easing curve: " + ", ".join(CURVE_NAMES) + ".",
}

Curve = Annotated[str, AfterValidator(validate_curve), WithJsonSchema(CURVE_SCHEMA)]
"""A curve name in a pydantic model, checked and made canonical (``steps(4)``)."""


_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|min)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "min": 60.0}
_DURATION_EXAMPLES = "a number of seconds or a string such as `5s`, `500ms` or `2min`"


def parse_duration(value: Any) -> float:
    """Seconds from a number or a ``5s`` / ``500ms`` / ``2min`` string; ValueError with the accepted forms."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a duration is {_DURATION_EXAMPLES}, not {type(value).__name__} `{value}`")
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            negative = value.strip().startswith("-")
            reason = "a duration cannot be negative" if negative else f"`{value}` is not a duration"
            raise ValueError(f"{reason}: write {_DURATION_EXAMPLES}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, not `{value}`: write {_DURATION_EXAMPLES}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative (`{value}`): write {_DURATION_EXAMPLES}")
    return seconds


DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": _DURATION.pattern},
    ],
    "description": "Seconds, or a string with a unit: `5s`, `500ms`, `2min`.",
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]
"""Seconds (float) in a pydantic model, written as a number or as ``5s``, ``500ms``, ``2min``."""
