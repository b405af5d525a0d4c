"""The signal store: typed, timestamped values that logic subscribes to.

Setting a signal calls its subscribers synchronously, so a value goes from a
sensor to a device without a queue hop; a subscriber that raises is logged and
counted and never breaks the sensor that set the value.

In a simulated run the curator's studio may *override* an input (:meth:`SignalStore.override`): the
signal holds the pinned value, and what its sensor sets meanwhile is kept aside, not applied, until
:meth:`SignalStore.release` puts the sensor's latest value back. The show *protects* what latches PANIC and
the e-stop (:meth:`SignalStore.protect`): those are never pinned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
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


class ProtectedSignal(ValueError):
    """An override refused: the signal is part of the PANIC and e-stop chain (:meth:`SignalStore.protect`).
    Its message is one sentence in English and Chinese."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"`{name}` is part of the PANIC and e-stop chain: it is never pinned / 紧急停止与急停信号不能覆盖"
        )
        self.name = name


class SignalStore:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or MonotonicClock()
        self._signals: dict[str, Signal] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self.subscriber_errors = 0
        self._overrides: dict[str, Value] = {}
        """Pinned values by signal (empty but in a simulated run whose curator pins an input)."""
        self._held: dict[str, tuple[Any, bool]] = {}
        """Per overridden signal, what its source would have it read: the latest value set meanwhile (or the
        value before the override) and whether it is stale."""
        self._protected: frozenset[str] = frozenset()
        """Signals never pinned (the show's PANIC and e-stop chain); only :meth:`override` reads it."""

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
        if self._overrides and name in self._overrides:
            self._held[name] = (value, False)  # applied when the override is released
            return
        signal.value = value
        signal.timestamp = self._clock.now()
        signal.stale = False
        self._notify(signal)

    def mark_stale(self, prefix: str) -> None:
        """Mark every signal of a source (``controls.``) stale, e.g. when it goes offline. Its health
        (``controls.health.*``) is not: that is what says it is offline. An overridden signal keeps its
        pinned value fresh; it goes stale on release if its source is still offline."""
        health = prefix + "health."
        for name, signal in self._signals.items():
            if name.startswith(prefix) and not name.startswith(health):
                if name in self._overrides:
                    self._held[name] = (self._held[name][0], True)
                elif not signal.stale:
                    signal.stale = True
                    self._notify(signal)

    # --- overrides (simulated runs: the curator's studio) ------------------------------

    @property
    def overrides(self) -> Mapping[str, Value]:
        """The pinned values by signal name (read-only)."""
        return MappingProxyType(self._overrides)

    @property
    def protected(self) -> frozenset[str]:
        """The signals that are never pinned (:meth:`protect`)."""
        return self._protected

    def protect(self, names: Iterable[str]) -> list[str]:
        """Make ``names`` the signals that are never pinned (the show, as it starts: PANIC, the e-stop and
        the e-stop's triggers), in place of those before. A pin on one of them is released at once, so that
        its source's latest value reaches the e-stop; returns the names released (logged)."""
        self._protected = frozenset(names)
        released = sorted(name for name in self._overrides if name in self._protected)
        for name in released:
            self.release(name)
        if released:
            log.warning(
                "released the pin on %s: part of the PANIC and e-stop chain now, never pinned", ", ".join(released)
            )
        return released

    def override(self, name: str, value: Value) -> None:
        """Pin ``name`` to ``value`` (checked as :meth:`set` checks it) and notify; until :meth:`release`,
        values set by its source are kept aside, not applied. Only float, int, bool and str signals, never
        a protected one (:class:`ProtectedSignal`)."""
        signal = self._signals[name]
        if name in self._protected:
            raise ProtectedSignal(name)
        expected = _PYTHON_TYPES.get(signal.type)
        if expected is None:
            raise TypeError(f"signal `{name}` is {signal.type}: only float, int, bool and str signals can be pinned")
        if type(value) is not expected:
            raise TypeError(f"signal `{name}` is {signal.type}, got {type(value).__name__}")
        if name not in self._overrides:
            self._held[name] = (signal.value, signal.stale)
        self._overrides[name] = value
        signal.value = value
        signal.timestamp = self._clock.now()
        signal.stale = False
        self._notify(signal)

    def release(self, name: str) -> bool:
        """Unpin ``name``: it reads what its source set last (while pinned, or before) and subscribers are
        notified. False when it was not pinned."""
        if self._overrides.pop(name, None) is None:
            return False
        value, stale = self._held.pop(name)
        signal = self._signals[name]
        signal.value = value
        signal.timestamp = self._clock.now()
        signal.stale = stale or value is None
        self._notify(signal)
        return True

    def release_all(self) -> list[str]:
        """Unpin every overridden signal; returns their names."""
        names = sorted(self._overrides)
        for name in names:
            self.release(name)
        return names

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
