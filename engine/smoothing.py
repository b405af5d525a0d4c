"""Smoothing a continuous signal before it drives a device: a One Euro filter (little
lag when moving fast, little jitter when still) or a slew limit (at most so many
units per second)."""

from __future__ import annotations

import math


class OneEuro:
    """Casiez, Roussel and Vogel's One Euro filter for one value (times in seconds)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: float | None = None
        self._dx = 0.0
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: float, t: float) -> float:
        if self._x is None:
            self._x, self._t = x, t
            return x
        dt = t - self._t
        if dt <= 0:
            return self._x
        self._t = t
        dx = (x - self._x) / dt
        self._dx += self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * abs(self._dx)
        self._x += self._alpha(cutoff, dt) * (x - self._x)
        return self._x


class Slew:
    """Moves towards each new value at most ``rate`` units per second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._x: float | None = None
        self._t = 0.0

    def __call__(self, x: float, t: float) -> float:
        if self._x is None:
            self._x, self._t = x, t
            return x
        step = self.rate * max(0.0, t - self._t)
        self._t = t
        self._x += max(-step, min(step, x - self._x))
        return self._x
