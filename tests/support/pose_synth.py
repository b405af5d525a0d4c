"""Synthetic MediaPipe landmarks for the pose tests: plausible bodies and movements, no camera.

A body is laid out in *torso units* (hip-mid to shoulder-mid = 1, x to the
image's right, y up), then placed in normalised image coordinates with its
hip-mid at ``(cx, cy)`` and ``scale`` normalised image heights per torso unit.
``aspect`` is the frame's width / height, so a body looks right on a 16:9 frame.
The person faces the camera, so their left side is on the image's right.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from sensors.pose.puppets import arms_body_points
from sensors.pose.types import N_LANDMARKS, Landmark, Landmarks

ASPECT = 16 / 9
FPS = 30.0

# The body's layout in torso units is the studio's simulated visitors' own (sensors/pose/puppets.py).
# Elbow and wrist of the left arm (image right) per pose; the right arm mirrors it.
ARMS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "down": ((0.45, 0.55), (0.45, 0.1)),
    "up": ((0.5, 1.55), (0.45, 2.1)),
    "t": ((0.85, 1.0), (1.3, 1.0)),
}


def _body_points(left_arm: str, right_arm: str) -> np.ndarray:
    """(33, 2) body-frame points for the given arm poses."""
    return arms_body_points(ARMS[left_arm], ARMS[right_arm])


def person(
    cx: float = 0.5,
    cy: float = 0.55,
    scale: float = 0.15,
    arms: str = "down",
    *,
    left_arm: str | None = None,
    right_arm: str | None = None,
    lean_deg: float = 0.0,
    aspect: float = ASPECT,
    visibility: float = 1.0,
) -> Landmarks:
    """A standing person facing the camera; ``lean_deg`` > 0 tilts the upper body to the image's right."""
    pts = _body_points(left_arm or arms, right_arm or arms)
    if lean_deg:
        a = math.radians(lean_deg)
        upper = pts[:, 1] > 0  # rotate about the hips: legs stay put
        x, y = pts[upper, 0].copy(), pts[upper, 1].copy()
        pts[upper, 0] = x * math.cos(a) + y * math.sin(a)
        pts[upper, 1] = -x * math.sin(a) + y * math.cos(a)
    lm = np.zeros((N_LANDMARKS, 4), dtype=np.float32)
    lm[:, 0] = cx + pts[:, 0] * scale / aspect
    lm[:, 1] = cy - pts[:, 1] * scale
    lm[:, 2] = 0.0
    lm[:, 3] = visibility
    return lm


def set_point(lm: Landmarks, index: int, x: float, y: float) -> Landmarks:
    """A copy of ``lm`` with one landmark moved to image (x, y)."""
    out = lm.copy()
    out[index, :2] = (x, y)
    return out


def hide(lm: Landmarks, *indices: int) -> Landmarks:
    """A copy of ``lm`` with the given landmarks' visibility at 0."""
    out = lm.copy()
    out[list(indices), 3] = 0.0
    return out


def blend(a: Landmarks, b: Landmarks, w: float) -> Landmarks:
    """Linear interpolation between two poses (0 = a, 1 = b)."""
    return (a * (1.0 - w) + b * w).astype(np.float32)


def jitter(lm: Landmarks, rng: np.random.Generator, sigma: float = 0.002) -> Landmarks:
    """Detector noise on x, y and z."""
    out = lm.copy()
    out[:, :3] += rng.normal(0.0, sigma, size=(N_LANDMARKS, 3)).astype(np.float32)
    return out


Sequence = list[tuple[float, Landmarks]]


def times(duration: float, fps: float = FPS, start: float = 0.0) -> Iterator[float]:
    for k in range(round(duration * fps)):
        yield start + k / fps


def sequence(duration: float, pose_at: Callable[[float], Landmarks], seed: int = 0, sigma: float = 0.002) -> Sequence:
    """Samples of ``pose_at(t)`` at :data:`FPS`, with seeded detector jitter."""
    rng = np.random.default_rng(seed)
    return [(t, jitter(pose_at(t), rng, sigma)) for t in times(duration)]


def ramp(t: float, start: float, length: float) -> float:
    """0 before ``start``, rising linearly to 1 over ``length`` seconds."""
    return min(1.0, max(0.0, (t - start) / length))


def still_seq(duration: float = 3.0, seed: int = 0) -> Sequence:
    base = person()
    return sequence(duration, lambda t: base, seed)


def wave_seq(duration: float = 3.0, seed: int = 0, hz: float = 2.0, amplitude: float = 0.05) -> Sequence:
    """Right hand raised (wrist above the elbow) swinging side to side from 0.5 s to 2.5 s."""
    base = person()
    hand_up = person(right_arm="up", left_arm="down")
    wx, wy = (float(v) for v in hand_up[Landmark.RIGHT_WRIST, :2])

    def pose(t: float) -> Landmarks:
        if t < 0.5 or t >= 2.5:
            return base
        x = wx + amplitude * math.sin(2 * math.pi * hz * (t - 0.5))
        return set_point(hand_up, Landmark.RIGHT_WRIST, x, wy)

    return sequence(duration, pose, seed)


def raise_seq(duration: float = 3.0, seed: int = 0) -> Sequence:
    """Arms go up from 0.5 s to 0.8 s, stay up until 2.0 s, then come down."""
    down, up = person(), person(arms="up")
    return sequence(duration, lambda t: blend(down, up, ramp(t, 0.5, 0.3) - ramp(t, 2.0, 0.3)), seed)


def tpose_seq(duration: float = 3.0, seed: int = 0) -> Sequence:
    """Arms go out to a T from 0.5 s to 0.8 s, held until 2.0 s, then come down."""
    down, t_pose = person(), person(arms="t")
    return sequence(duration, lambda t: blend(down, t_pose, ramp(t, 0.5, 0.3) - ramp(t, 2.0, 0.3)), seed)


def step_seq(duration: float = 3.0, seed: int = 0) -> Sequence:
    """One step towards the camera from 0.5 s to 1.0 s: the body grows 30% and moves down the image."""
    return sequence(
        duration, lambda t: person(cy=0.55 + 0.05 * ramp(t, 0.5, 0.5), scale=0.15 * (1 + 0.3 * ramp(t, 0.5, 0.5))), seed
    )


def walk_seq(
    duration: float = 3.0,
    start_x: float = 0.2,
    end_x: float = 0.8,
    seed: int = 0,
    cy: float = 0.55,
    scale: float = 0.15,
) -> Sequence:
    """A person walking across the frame at constant speed."""
    return sequence(duration, lambda t: person(start_x + (end_x - start_x) * t / duration, cy, scale), seed)
