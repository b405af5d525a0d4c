"""Data passed along the pose pipeline: camera frame -> detections -> visitors -> signals.

Coordinates are MediaPipe's normalised image coordinates: x and y in 0..1 of
the frame's width and height (y grows downwards), z a relative depth (smaller
is nearer the camera), and a visibility in 0..1. No image ever leaves the
inference worker; only these numbers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

N_LANDMARKS = 33
Landmarks = npt.NDArray[np.float32]
"""Shape (33, 4): x, y, z, visibility per landmark, in MediaPipe's order."""


class Landmark(IntEnum):
    """MediaPipe BlazePose landmark indices."""

    NOSE = 0
    LEFT_EYE_INNER = 1
    LEFT_EYE = 2
    LEFT_EYE_OUTER = 3
    RIGHT_EYE_INNER = 4
    RIGHT_EYE = 5
    RIGHT_EYE_OUTER = 6
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    LEFT_SHOULDER = 11
    RIGHT_SHOULDER = 12
    LEFT_ELBOW = 13
    RIGHT_ELBOW = 14
    LEFT_WRIST = 15
    RIGHT_WRIST = 16
    LEFT_PINKY = 17
    RIGHT_PINKY = 18
    LEFT_INDEX = 19
    RIGHT_INDEX = 20
    LEFT_THUMB = 21
    RIGHT_THUMB = 22
    LEFT_HIP = 23
    RIGHT_HIP = 24
    LEFT_KNEE = 25
    RIGHT_KNEE = 26
    LEFT_ANKLE = 27
    RIGHT_ANKLE = 28
    LEFT_HEEL = 29
    RIGHT_HEEL = 30
    LEFT_FOOT_INDEX = 31
    RIGHT_FOOT_INDEX = 32


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
