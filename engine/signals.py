"""The signal store: typed, timestamped values that logic subscribes to.

Setting a signal calls its subscribers synchronously, so a value goes from a
sensor to a device without a queue hop; a subscriber that raises is logged and
counted and never breaks the sensor that set the value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.clock import Clock, MonotonicClock
from engine.model import StoreType

log = logging.getLogger("engine.signals")

Value = float | int | bool | str
Payload = Any
"""An event's payload (a visitor id...) or an object snapshot (the visitors)."""
Subscriber = Callable[["Signal"], None]

_PYTHON_TYPES: dict[StoreType, type] = {"float": float, "int": int, "bool": bool, "str": str}


@dataclass(slots=True)
class Signal:
    name: str
    type: StoreType
    value: Any = None
    """A Value for float/int/bool/str signals; an event's payload; an object snapshot; None before the first."""
    timestamp: float | None = None
    stale: bool = True
    """True until the first value, and again while its source is offline."""


class SignalStore:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or MonotonicClock()
        self._signals: dict[str, Signal] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self.subscriber_errors = 0

    def declare(self, name: str, type_: StoreType) -> Signal:
        if name in self._signals:
            raise ValueError(f"signal `{name}` is declared twice")
        signal = Signal(name, type_)
        self._signals[name] = signal
        return signal

    def __contains__(self, name: object) -> bool:
        return name in self._signals

    def __len__(self) -> int:
        return len(self._signals)

    def get(self, name: str) -> Signal:
        return self._signals[name]

    def names(self) -> list[str]:
        return sorted(self._signals)

    def set(self, name: str, value: Value | Payload) -> None:
        """Set a value (or fire an event with its payload) and notify subscribers."""
        signal = self._signals[name]
        expected = _PYTHON_TYPES.get(signal.type)
        if expected is not None and type(value) is not expected:
            raise TypeError(f"signal `{name}` is {signal.type}, got {type(value).__name__}")
        signal.value = value
        signal.timestamp = self._clock.now()
        signal.stale = False
        self._notify(signal)

    def mark_stale(self, prefix: str) -> None:
        """Mark every signal of a source (``controls.``) stale, e.g. when it goes offline. Its health
        (``controls.health.*``) is not: that is what says it is offline."""
        health = prefix + "health."
        for name, signal in self._signals.items():
            if name.startswith(prefix) and not name.startswith(health) and not signal.stale:
                signal.stale = True
                self._notify(signal)

    def subscribe(self, name: str, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(signal)`` on every change; returns a function that unsubscribes."""
        self._signals[name]
        listeners = self._subscribers.setdefault(name, [])
        listeners.append(callback)
        return lambda: listeners.remove(callback) if callback in listeners else None

    def _notify(self, signal: Signal) -> None:
        for callback in self._subscribers.get(signal.name, ()):
            try:
                callback(signal)
            except Exception:
                self.subscriber_errors += 1
                log.exception("subscriber of %s failed", signal.name)
