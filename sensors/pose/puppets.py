"""Simulated visitors for the curator's studio: a few numbers per visitor (where they stand, how tall
they look, how high each hand is) made into the 33 MediaPipe pose landmarks the camera would give, so
that the real pipeline (tracking, smoothing, features, gestures, zones) sees them like anyone else.

The body is laid out in *torso units* (hip-mid to shoulder-mid = 1, x to the image's right, y up), with
the proportions :mod:`sensors.pose.features` assumes (nose 0.45 above the shoulders, the top of the
head 0.25 above the nose, so the head's top is at 1.7), then placed in normalised image coordinates.
The visitor faces the camera: their left side is on the image's right.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from sensors.pose.types import N_LANDMARKS, Landmark, Landmarks

HEAD_TOP = 1.7
"""The top of the head, torso units above the hips."""
FEET = 2.25
"""The feet point (mean of ankles and heels), torso units below the hips."""
BODY_HEIGHT = HEAD_TOP + FEET
"""Feet to the top of the head, torso units."""
WRIST_DOWN = 0.0
"""Wrist height (torso units) of an arm down by the hip: ``left_hand``/``right_hand`` 0."""
WRIST_UP = 2.15
"""Wrist height (torso units) of a hand well above the head: raise 1 (``hands_raised`` 1 needs 2.04)."""
SHOULDER_X = 0.4
_ARM_OUT = 0.5
"""How far the wrist swings out from the body half-way up, torso units."""

# Right side of the head (image left) as (x, y) torso units; as in MediaPipe's landmark order.
HEAD_POINTS = {
    Landmark.NOSE: (0.0, 1.45),
    Landmark.LEFT_EYE_INNER: (0.03, 1.5),
    Landmark.LEFT_EYE: (0.06, 1.5),
    Landmark.LEFT_EYE_OUTER: (0.09, 1.5),
    Landmark.RIGHT_EYE_INNER: (-0.03, 1.5),
    Landmark.RIGHT_EYE: (-0.06, 1.5),
    Landmark.RIGHT_EYE_OUTER: (-0.09, 1.5),
    Landmark.LEFT_EAR: (0.15, 1.45),
    Landmark.RIGHT_EAR: (-0.15, 1.45),
    Landmark.MOUTH_LEFT: (0.05, 1.35),
    Landmark.MOUTH_RIGHT: (-0.05, 1.35),
}
# The left side of the trunk and legs (image right); the right side mirrors it.
TRUNK_AND_LEG_POINTS = {
    "SHOULDER": (SHOULDER_X, 1.0),
    "HIP": (0.25, 0.0),
    "KNEE": (0.22, -1.1),
    "ANKLE": (0.22, -2.2),
    "HEEL": (0.22, -2.3),
    "FOOT_INDEX": (0.3, -2.35),
}
FINGER_LENGTHS = {"PINKY": 0.12, "INDEX": 0.15, "THUMB": 0.08}
"""Finger landmarks beyond the wrist, along the forearm, torso units."""


@dataclass
class Puppet:
    """One simulated visitor, as the studio poses it. Coordinates are normalised image ones (0..1, y down)."""

    id: int
    x: float = 0.5
    """Where the visitor stands across the image (the feet point's x)."""
    y: float = 0.85
    """Where their feet are, image y (larger is nearer the bottom of the picture, usually nearer the camera)."""
    height: float = 0.5
    """Feet to the top of the head, in frame heights (bigger looks nearer: the nearest visitor is the biggest)."""
    left_hand: float = 0.0
    """0: the arm down by the hip; 1: the hand well above the head."""
    right_hand: float = 0.0
    """As ``left_hand``."""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class TooManyPuppets(ValueError):
    """A simulated visitor refused: as many as the sensor tracks (``num_poses``) are in view already.
    Its message is one sentence in English and Chinese."""

    def __init__(self, sensor: str, limit: int) -> None:
        super().__init__(
            f"`{sensor}` tracks at most {limit} visitor{'s' if limit != 1 else ''} (`num_poses`) and has "
            f"{limit} simulated already: remove one first / 模拟观众已达上限（{limit}），请先移除一位"
        )
        self.sensor = sensor
        self.limit = limit


def _lerp(a: float, b: float, w: float) -> float:
    return a + (b - a) * w


def _arm(raise_: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Elbow and wrist of the left arm (torso units) for a raise 0..1: the wrist's height goes linearly from
    the hip to well above the head, swinging out from the body on the way."""
    r = min(1.0, max(0.0, raise_))
    wrist = (SHOULDER_X + 0.05 + _ARM_OUT * math.sin(math.pi * r), _lerp(WRIST_DOWN, WRIST_UP, r))
    mid = ((SHOULDER_X + wrist[0]) / 2, (1.0 + wrist[1]) / 2)
    elbow = (mid[0] + 0.12, mid[1])  # bent a little outwards
    return elbow, wrist


def _side(name: str, left: bool) -> int:
    return int(Landmark[f"{'LEFT' if left else 'RIGHT'}_{name}"])


Arm = tuple[tuple[float, float], tuple[float, float]]
"""An arm's elbow and wrist, (x, y) torso units, on the body's left side (image right)."""


def body_points(left_hand: float, right_hand: float) -> np.ndarray:
    """(33, 2) points in torso units (hips at 0, y up) for the given hand raises."""
    return arms_body_points(_arm(left_hand), _arm(right_hand))


def arms_body_points(left_arm: Arm, right_arm: Arm) -> np.ndarray:
    """(33, 2) points in torso units (hips at 0, y up) with these arms (the right one is mirrored); the fingers
    continue each forearm."""
    pts = np.zeros((N_LANDMARKS, 2))
    for index, xy in HEAD_POINTS.items():
        pts[index] = xy
    for left in (True, False):
        sign = 1.0 if left else -1.0
        for name, (x, y) in TRUNK_AND_LEG_POINTS.items():
            pts[_side(name, left)] = (sign * x, y)
        elbow, wrist = left_arm if left else right_arm
        pts[_side("ELBOW", left)] = (sign * elbow[0], elbow[1])
        pts[_side("WRIST", left)] = (sign * wrist[0], wrist[1])
        forearm = pts[_side("WRIST", left)] - pts[_side("ELBOW", left)]
        forearm = forearm / (np.linalg.norm(forearm) or 1.0)
        for finger, length in FINGER_LENGTHS.items():
            pts[_side(finger, left)] = pts[_side("WRIST", left)] + length * forearm
    return pts


def puppet_landmarks(puppet: Puppet, aspect: float = 640 / 480) -> Landmarks:
    """The 33 landmarks (x, y, z, visibility; float32, shape (33, 4)) a camera frame of width/height
    ``aspect`` would show of ``puppet``: the format of recordings and of :class:`~sensors.pose.types.PoseFrame`."""
    scale = max(puppet.height, 1e-3) / BODY_HEIGHT  # frame heights per torso unit
    hip_y = puppet.y - FEET * scale
    pts = body_points(puppet.left_hand, puppet.right_hand)
    landmarks = np.zeros((N_LANDMARKS, 4), dtype=np.float32)
    landmarks[:, 0] = puppet.x + pts[:, 0] * scale / aspect
    landmarks[:, 1] = hip_y - pts[:, 1] * scale
    landmarks[:, 2] = 0.0
    landmarks[:, 3] = 0.99
    return landmarks


__all__ = ["BODY_HEIGHT", "Arm", "Puppet", "TooManyPuppets", "arms_body_points", "body_points", "puppet_landmarks"]
