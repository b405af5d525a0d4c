"""Continuous mappings from a signal to a device property."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from engine.model import Mapping
from engine.signals import Signal, SignalStore


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


def bind_mapping(
    mapping: Mapping, output: tuple[float, float], store: SignalStore, set_property: PropertySetter
) -> Callable[[], None]:
    """Drive ``set_property(prop, value)`` from the mapping's signal; returns an unbind function."""
    curve = LinearMap(mapping.input[0], mapping.input[1], output[0], output[1], mapping.clamp)
    prop = mapping.target.split(".", 1)[1]

    def on_signal(signal: Signal) -> None:
        if signal.stale or not isinstance(signal.value, int | float):
            return  # a stale source holds the last output rather than jumping
        x = float(signal.value)
        if math.isnan(x):
            return  # an unknown value (e.g. distance with no shoulders in view) holds the output too
        set_property(prop, curve(x))

    return store.subscribe(mapping.source, on_signal)
