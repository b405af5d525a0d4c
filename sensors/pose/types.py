"""Data passed along the pose pipeline: camera frame -> detections -> visitors -> signals.

Coordinates are MediaPipe's normalised image coordinates: x and y in 0..1 of
the frame's width and height (y grows downwards), z a relative depth (smaller
is nearer the camera), and a visibility in 0..1. No image ever leaves the
inference worker; only these numbers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from engine.landmarks import N_LANDMARKS, Landmark

Landmarks = npt.NDArray[np.float32]
"""Shape (33, 4): x, y, z, visibility per landmark, in MediaPipe's order."""
Points = npt.NDArray[np.float64]
"""Points, positions and speeds computed from landmarks."""


@dataclass(frozen=True, slots=True)
class PoseFrame:
    """What inference found in one camera frame (never the image itself)."""

    index: int
    """Frame number from the source, counting from 0."""
    timestamp: float
    """Capture time, seconds on the monotonic clock (for replays: seconds from the recording's start)."""
    width: int
    height: int
    people: tuple[Landmarks, ...] = field(default_factory=tuple)


__all__ = ["N_LANDMARKS", "Landmark", "Landmarks", "Points", "PoseFrame"]
