"""Continuous mappings from a signal to a device property: input range to output
range, through a curve, with a dead-band and optional smoothing; and fan-out, where
each visitor drives its own device."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from engine.curves import curve_function
from engine.model import Mapping, OneEuroSmoothing
from engine.provenance import Cause
from engine.signals import Signal, SignalStore
from engine.smoothing import OneEuro, Slew


@dataclass(frozen=True, slots=True)
class LinearMap:
    """Input range to output range; either range may run backwards (``[1, 0]``)."""

    in_from: float
    in_to: float
    out_from: float
    out_to: float
    clamp: bool = True

    def __call__(self, x: float) -> float:
        t = (x - self.in_from) / (self.in_to - self.in_from)
        if self.clamp:
            t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
        return self.out_from + t * (self.out_to - self.out_from)


PropertySetter = Callable[[str, float], None]


class Transfer:
    """One input value to one output value: dead-band, smoothing, range and curve."""

    def __init__(self, mapping: Mapping, output: tuple[float, float]) -> None:
        self.mapping = mapping
        self.output = output
        self.linear = mapping.curve == "linear"
        self.curve = curve_function(mapping.curve)
        self.range = LinearMap(mapping.input[0], mapping.input[1], 0.0, 1.0, mapping.clamp)
        self.smoother: OneEuro | Slew | None = None
        if isinstance(mapping.smoothing, OneEuroSmoothing):
            self.smoother = OneEuro(mapping.smoothing.min_cutoff, mapping.smoothing.beta)
        elif mapping.smoothing is not None:
            # The slew is in output units per second; the filter works in input units.
            span_in = abs(mapping.input[1] - mapping.input[0])
            span_out = abs(output[1] - output[0]) or 1.0
            self.smoother = Slew(mapping.smoothing.slew * span_in / span_out)
        self._last_input: float | None = None
        self.last_output: float | None = None
        """The last value it gave (kept for the inspector's explanation)."""

    def describe(self, source: str) -> str:
        """Why its output is what it is: `controls.wash = 0.42 → 107 (input [0, 1], output [0, 255])`."""
        x, y = self._last_input, self.last_output
        if x is None or y is None:
            return f"{source} has given no value yet"
        shape = [f"input [{_num(self.mapping.input[0])}, {_num(self.mapping.input[1])}]"]
        shape.append(f"output [{_num(self.output[0])}, {_num(self.output[1])}]")
        if not self.linear:
            shape.append(f"curve {self.mapping.curve}")
        if self.smoother is not None:
            shape.append("smoothed")
        return f"{source} = {_num(x)} → {_num(y)} ({', '.join(shape)})"

    def __call__(self, x: float, t: float) -> float | None:
        """The output for input ``x`` at time ``t``; None when inside the dead-band (no change)."""
        if self.mapping.deadband and self._last_input is not None and abs(x - self._last_input) < self.mapping.deadband:
            return None
        self._last_input = x
        if self.smoother is not None:
            x = self.smoother(x, t)
        u = self.range(x)
        if not self.linear:
            # Curves shape 0..1; outside it (unclamped mappings) the curve ends are held.
            u = self.curve(min(1.0, max(0.0, u))) if self.mapping.clamp else self.curve(u)
        low, high = self.output
        y = low + u * (high - low)
        self.last_output = y
        return y


def _num(value: float) -> str:
    return f"{value:.4g}"


def mapping_cause(transfer: Transfer, source: str, target: str) -> Cause:
    """The cause a mapping's writes record, built once when it is bound; its detail is formatted on read."""
    return Cause("mapping", f"{source} → {target}", explain=lambda: transfer.describe(source))


def _number(value: Any) -> float | None:
    """The value as a number to map, or None (held: the output stays where it is). Not a number, and
    infinities too: one infinite input would turn a One Euro filter into NaN for good."""
    if not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def bind_mapping(
    mapping: Mapping,
    output: tuple[float, float],
    store: SignalStore,
    set_property: PropertySetter,
    enabled: Callable[[], bool] | None = None,
    transfer: Transfer | None = None,
) -> Callable[[], None]:
    """Drive ``set_property(prop, value)`` from the mapping's signal; returns an unbind function.
    While ``enabled()`` is false (the mapping's `when`), the output is left to other logic.
    ``transfer``: the one to use (the show keeps it, to explain the output), else a new one."""
    transfer = transfer if transfer is not None else Transfer(mapping, output)
    prop = mapping.target.split(".", 1)[1]

    def on_signal(signal: Signal) -> None:
        if enabled is not None and not enabled():
            return
        x = None if signal.stale else _number(signal.value)
        if x is None:
            return  # stale or unknown (distance with no shoulders in view): hold the last output
        y = transfer(x, signal.timestamp or 0.0)
        if y is not None:
            set_property(prop, y)

    return store.subscribe(mapping.source, on_signal)


def fan_out_slots(mapping: Mapping, targets: Collection[str]) -> list[str]:
    """The devices a fan-out mapping drives: `spot1`, `spot2`... for as long as they exist."""
    slots: list[str] = []
    while (name := mapping.slot_target(len(slots) + 1).split(".", 1)[0]) in targets:
        slots.append(name)
    return slots


def bind_fan_out(
    mapping: Mapping,
    slots: list[tuple[str, tuple[float, float]]],
    store: SignalStore,
    set_target: Callable[[str, str, float], None],
    enabled: Callable[[], bool] | None = None,
    transfers: list[Transfer] | None = None,
) -> Callable[[], None]:
    """Each visitor in ``mapping.source`` (a collection) drives the device of its slot.

    ``slots`` lists, for slot 1, 2..., the device name and its output range. A visitor
    keeps its slot while present; a freed slot goes to the start of its output range.
    ``transfers``: one per slot to use (the show keeps them, to explain the outputs), else new ones.
    """
    prop = mapping.target.rsplit(".", 1)[1]
    field = mapping.field or ""
    transfers = transfers if transfers is not None else [Transfer(mapping, output) for _, output in slots]
    holders: list[int | None] = [None] * len(slots)

    def on_visitors(signal: Signal) -> None:
        if enabled is not None and not enabled():
            return
        visitors = {getattr(v, "id", None): v for v in (signal.value or ())} if not signal.stale else {}
        for slot, holder in enumerate(holders):
            if holder is not None and holder not in visitors:
                holders[slot] = None
                set_target(slots[slot][0], prop, slots[slot][1][0])
        for visitor_id in sorted(k for k in visitors if k is not None and k not in holders):
            if None in holders:
                holders[holders.index(None)] = visitor_id
        for slot, holder in enumerate(holders):
            if holder is None:
                continue
            item = visitors[holder]
            x = _number(getattr(item, field, getattr(getattr(item, "features", None), field, None)))
            if x is not None and (y := transfers[slot](x, signal.timestamp or 0.0)) is not None:
                set_target(slots[slot][0], prop, y)

    return store.subscribe(mapping.source, on_visitors)


@dataclass
class BoundMapping:
    """A mapping as the show bound it, for the inspector: what it drives, its `when`, and its causes."""

    spec: Mapping
    targets: list[tuple[str, str]]
    """The (device, property) pairs it drives: one, or one per fan-out slot."""
    causes: list[Cause]
    """The cause each target's writes record, in the same order."""
    when: Callable[[], bool] | None = None
    """Its `when:` condition, compiled; None if it always drives."""
