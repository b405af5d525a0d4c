"""One Euro filter (Casiez, Roussel and Vogel, CHI 2012) over all landmarks of one visitor.

A low-pass filter whose cutoff rises with speed: still landmarks are smoothed
hard (no jitter in the lights), fast ones follow closely (little lag in a
gesture). Each of x, y and z of each landmark is filtered on its own;
visibility passes through untouched.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import Field

from engine.model import Strict
from sensors.pose.types import N_LANDMARKS, Landmarks, Points


class OneEuroSettings(Strict):
    """Smoothing of landmark positions. Lower ``min_cutoff`` = less jitter; higher ``beta`` = less lag."""

    min_cutoff: float = Field(
        default=1.0, gt=0, description="Cutoff frequency (Hz) when still: lower smooths more jitter but adds lag."
    )
    beta: float = Field(
        default=0.05,
        ge=0,
        description="How fast the cutoff rises with speed (Hz per normalised unit per second): higher follows "
        "quick movements with less lag.",
    )
    d_cutoff: float = Field(default=1.0, gt=0, description="Cutoff frequency (Hz) used to smooth the speed estimate.")
    min_visibility: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A landmark less visible than this keeps its last filtered position; when seen again it "
        "restarts from its new position rather than sliding from the old one.",
    )


def smoothing_factor(cutoff: Points | float, dt: float) -> Points:
    """Exponential smoothing weight of a first-order low-pass at ``cutoff`` Hz for a step of ``dt`` seconds."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


class LandmarkFilter:
    """One Euro filter for one visitor's landmarks; call it once per frame with increasing timestamps."""

    def __init__(self, settings: OneEuroSettings | None = None) -> None:
        self.settings = settings or OneEuroSettings()
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample passes through unchanged."""
        self._position = np.zeros((N_LANDMARKS, 3))  # last filtered x, y, z
        self._speed = np.zeros((N_LANDMARKS, 3))  # last filtered derivative
        self._tracking = np.zeros(N_LANDMARKS, dtype=bool)  # visible at the previous sample
        self._seen = np.zeros(N_LANDMARKS, dtype=bool)  # has a filtered position at all
        self._last_t: float | None = None

    def __call__(self, landmarks: Landmarks, t: float) -> Landmarks:
        """The filtered landmarks at time ``t`` (seconds); visibility is the new sample's."""
        raw = np.asarray(landmarks, dtype=np.float64)
        visible = raw[:, 3] >= self.settings.min_visibility
        restart = visible & ~self._tracking
        follow = visible & self._tracking
        dt = 0.0 if self._last_t is None else t - self._last_t
        if dt > 0 and follow.any():
            self._step(raw[follow, :3], follow, dt)
        # dt <= 0 (a repeated timestamp): no new information about speed, so
        # continuing landmarks keep their filtered value rather than divide by zero.
        self._position[restart] = raw[restart, :3]
        self._speed[restart] = 0.0
        self._tracking = visible
        self._seen |= visible
        if self._last_t is None or t > self._last_t:
            self._last_t = t
        out = raw.copy()
        out[self._seen, :3] = self._position[self._seen]
        return out.astype(np.float32)

    def _step(self, value: Points, rows: npt.NDArray[np.bool_], dt: float) -> None:
        """One One Euro update of the landmarks in ``rows``."""
        s = self.settings
        previous = self._position[rows]
        speed = (value - previous) / dt
        a_d = smoothing_factor(s.d_cutoff, dt)
        speed_hat = a_d * speed + (1.0 - a_d) * self._speed[rows]
        a = smoothing_factor(s.min_cutoff + s.beta * np.abs(speed_hat), dt)
        self._position[rows] = a * value + (1.0 - a) * previous
        self._speed[rows] = speed_hat
