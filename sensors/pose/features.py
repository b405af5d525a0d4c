"""Body signals for curators, computed from one visitor's landmarks.

Everything here is a pure function of one ``Landmarks`` array. Landmarks whose
visibility is below 0.5 are not trusted: a feature that needs them is
``nan`` (never a guess that would drive a light to a wrong value), unless a
documented fallback from body proportions exists.

Body proportions used for fallbacks, in *torso lengths* (hip-mid to
shoulder-mid = 1): shoulder width 0.8, nose 0.45 above the shoulders, top of
the head 0.25 above the nose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sensors.pose.types import Landmark, Landmarks, Points

MIN_VISIBILITY = 0.5
"""Below this a landmark is treated as not seen."""

SHOULDER_WIDTH_M = 0.40
"""Typical distance between the shoulder landmarks of an adult, metres."""

# Body proportions in torso lengths (see the module docstring).
_TORSO_PER_SHOULDER_WIDTH = 1.25
_NOSE_ABOVE_SHOULDERS = 0.45
_HEAD_TOP_ABOVE_NOSE = 0.25
_WELL_ABOVE_HEAD = 1.2
"""Hand height (body units) at which ``hands_raised`` reaches 1: about a hand's length above the head."""
_HAND_HEIGHT_RANGE = (-0.5, 1.5)

SHOULDERS = (Landmark.LEFT_SHOULDER, Landmark.RIGHT_SHOULDER)
HIPS = (Landmark.LEFT_HIP, Landmark.RIGHT_HIP)
FEET = (Landmark.LEFT_ANKLE, Landmark.RIGHT_ANKLE, Landmark.LEFT_HEEL, Landmark.RIGHT_HEEL)

"""An (x, y) pair as float64."""


def visible(landmarks: Landmarks, index: int, min_visibility: float = MIN_VISIBILITY) -> bool:
    """Whether one landmark is trusted."""
    return bool(landmarks[index, 3] >= min_visibility)


def mean_point(landmarks: Landmarks, indices: Sequence[int], min_visibility: float = MIN_VISIBILITY) -> Points | None:
    """Mean (x, y) of the visible landmarks among ``indices``; None if none is visible."""
    rows = [i for i in indices if visible(landmarks, i, min_visibility)]
    if not rows:
        return None
    return np.asarray(landmarks[rows, :2], dtype=np.float64).mean(axis=0)


def body_centre(landmarks: Landmarks, min_visibility: float = MIN_VISIBILITY) -> tuple[float, float]:
    """Robust body centre in image coordinates: mean of visible shoulders and hips.

    Falls back to the mean of all visible landmarks (a visitor seen only from
    the chest up, or only their legs); ``(nan, nan)`` when nothing is visible.
    """
    centre = mean_point(landmarks, (*SHOULDERS, *HIPS), min_visibility)
    if centre is None:
        centre = mean_point(landmarks, range(len(landmarks)), min_visibility)
    if centre is None:
        return math.nan, math.nan
    return float(centre[0]), float(centre[1])


def shoulder_width(landmarks: Landmarks, min_visibility: float = MIN_VISIBILITY) -> float:
    """Shoulder-to-shoulder distance in normalised image units; nan unless both are visible."""
    if not all(visible(landmarks, i, min_visibility) for i in SHOULDERS):
        return math.nan
    left, right = landmarks[SHOULDERS[0], :2], landmarks[SHOULDERS[1], :2]
    return float(np.hypot(*(np.asarray(left, np.float64) - right)))


def apparent_size(landmarks: Landmarks, min_visibility: float = MIN_VISIBILITY) -> float:
    """How big a visitor looks: the larger of shoulder width and torso height (normalised units).

    Bigger means nearer the camera. Torso height survives a visitor turning
    sideways (which shrinks shoulder width); shoulder width survives hips out
    of frame. nan when neither can be measured.
    """
    sizes = [shoulder_width(landmarks, min_visibility)]
    shoulders = mean_point(landmarks, SHOULDERS, min_visibility)
    hips = mean_point(landmarks, HIPS, min_visibility)
    if shoulders is not None and hips is not None:
        sizes.append(abs(float(hips[1] - shoulders[1])))
    finite = [s for s in sizes if math.isfinite(s)]
    return max(finite) if finite else math.nan


@dataclass(frozen=True, slots=True)
class BodyFeatures:
    """Signals describing one visitor's body. nan means "cannot be measured now".

    Image coordinates are MediaPipe's normalised ones: x and y in 0..1 of the
    frame, y growing downwards. *Body units* measure heights along the body:
    0 at hip level, 1 at the top of the head.
    """

    left_hand_height: float
    """Left wrist height in body units (0 = hips, 1 = top of head, > 1 above the head), clamped to
    -0.5..1.5; nan when the wrist is not visible. Example: `body.nearest.left_hand_height` → tilt of a projected
    bird's left wing."""
    right_hand_height: float
    """Right wrist height, as ``left_hand_height``."""
    hand_height: float
    """The higher visible hand, body units; nan when no hand is visible. Example: `body.nearest.hand_height` →
    water level in a projected canal (lift a hand, the water rises)."""
    hands_raised: float
    """0..1: 0 with both hands at or below the shoulders, 1 with both well above the head (body units 1.2).
    Uses the lower hand, so it needs both; nan unless both wrists are visible. Example: `body.nearest.hands_raised`
    → lantern brightness."""
    both_hands_up: bool
    """Both wrists above the nose (False when either cannot be seen). Example: a cue `when: body.nearest.both_hands_up`
    starts the fireworks scene."""
    arm_span: float
    """Wrist-to-wrist distance in shoulder widths: about 1 with arms down, 2.5-3.5 in a T-pose; nan unless both
    wrists and shoulders are visible. Grows when a visitor turns sideways (shoulders look narrower). Example:
    `body.nearest.arm_span` → width of a projected pair of wings."""
    lean: float
    """-1..1: torso tilt from vertical, the angle of the hip-mid → shoulder-mid line divided by 45°, clamped.
    Positive when the shoulders are to the image's right (larger x) of the hips, as the camera sees it; a mirrored
    (selfie) image flips the sign. nan unless both shoulders and both hips are visible. Example:
    `body.nearest.lean` → pan of a spotlight, or steering a boat."""
    distance: float
    """Estimated metres from the camera, from apparent shoulder width (see :func:`estimate_distance`); nan unless
    both shoulders are visible. Over-estimated when the visitor turns sideways. Example: `body.nearest.distance`
    → volume of a whisper that grows as a visitor comes closer."""
    x: float
    """Body centre (mean of visible shoulders and hips), image x 0..1. Example: `body.nearest.x` → pan of a light."""
    y: float
    """Body centre, image y 0..1 (grows downwards)."""
    floor_x: float
    """Where the visitor stands: mean of visible ankles and heels (falling back to the hips, which puts the
    point too far from the camera when mapped to the floor), image x. Example: feed zones."""
    floor_y: float
    """Feet point, image y (grows downwards)."""


def estimate_distance(width: float, hfov_deg: float = 60.0, shoulder_m: float = SHOULDER_WIDTH_M) -> float:
    """Metres from the camera of shoulders ``width`` (a fraction of the frame's width) apart.

    Pinhole camera: at distance D the frame spans ``2 D tan(hfov / 2)`` metres
    horizontally, so shoulders of ``shoulder_m`` metres cover
    ``w = shoulder_m / (2 D tan(hfov / 2))`` of it, hence
    ``D = shoulder_m / (2 w tan(hfov / 2))``.
    """
    if not (width > 0 and math.isfinite(width)):
        return math.nan
    return shoulder_m / (2.0 * width * math.tan(math.radians(hfov_deg) / 2.0))


@dataclass(frozen=True, slots=True)
class _Frame:
    """Vertical reference levels of one body, in square units (see :func:`body_features`)."""

    hip_y: float
    top_y: float
    shoulder_y: float
    nose_y: float

    def height(self, y: float) -> float:
        """Image y as body units: 0 at hip level, 1 at the top of the head."""
        return (self.hip_y - y) / (self.hip_y - self.top_y)


def _body_frame(points: Points, lm: Landmarks) -> _Frame | None:
    """Reference levels, falling back on body proportions when hips or nose are not visible."""
    shoulder_rows = [i for i in SHOULDERS if visible(lm, i)]
    if not shoulder_rows:
        return None
    shoulders = points[shoulder_rows].mean(axis=0)
    hip_rows = [i for i in HIPS if visible(lm, i)]
    both_shoulders = len(shoulder_rows) == 2
    if hip_rows:
        hips = points[hip_rows].mean(axis=0)
        torso = float(np.hypot(*(shoulders - hips)))
        hip_y = float(hips[1])
    elif both_shoulders:
        # Close to the camera the hips are often out of frame: estimate them.
        torso = _TORSO_PER_SHOULDER_WIDTH * float(np.hypot(*(points[SHOULDERS[0]] - points[SHOULDERS[1]])))
        hip_y = float(shoulders[1]) + torso
    else:
        return None
    if not torso > 0:
        return None
    shoulder_y = float(shoulders[1])
    if visible(lm, Landmark.NOSE):
        nose_y = float(points[Landmark.NOSE, 1])
    else:
        nose_y = shoulder_y - _NOSE_ABOVE_SHOULDERS * torso
    top_y = nose_y - _HEAD_TOP_ABOVE_NOSE * torso
    if not hip_y > top_y:
        return None  # upside down or degenerate: heights would be meaningless
    return _Frame(hip_y=hip_y, top_y=top_y, shoulder_y=shoulder_y, nose_y=nose_y)


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _hand_height(frame: _Frame | None, points: Points, lm: Landmarks, wrist: int) -> float:
    if frame is None or not visible(lm, wrist):
        return math.nan
    return _clamp(frame.height(float(points[wrist, 1])), *_HAND_HEIGHT_RANGE)


def _hands_raised(frame: _Frame | None, left: float, right: float) -> float:
    if frame is None or math.isnan(left) or math.isnan(right):
        return math.nan
    shoulder = frame.height(frame.shoulder_y)
    return _clamp((min(left, right) - shoulder) / (_WELL_ABOVE_HEAD - shoulder), 0.0, 1.0)


def _both_hands_up(frame: _Frame | None, points: Points, lm: Landmarks) -> bool:
    wrists = (Landmark.LEFT_WRIST, Landmark.RIGHT_WRIST)
    if frame is None or not all(visible(lm, w) for w in wrists):
        return False
    return all(points[w, 1] < frame.nose_y for w in wrists)


def _arm_span(points: Points, lm: Landmarks) -> float:
    needed = (*SHOULDERS, Landmark.LEFT_WRIST, Landmark.RIGHT_WRIST)
    if not all(visible(lm, i) for i in needed):
        return math.nan
    shoulders = float(np.hypot(*(points[SHOULDERS[0]] - points[SHOULDERS[1]])))
    wrists = float(np.hypot(*(points[Landmark.LEFT_WRIST] - points[Landmark.RIGHT_WRIST])))
    return wrists / shoulders if shoulders > 0 else math.nan


def _lean(points: Points, lm: Landmarks) -> float:
    if not all(visible(lm, i) for i in (*SHOULDERS, *HIPS)):
        return math.nan
    dx, dy = points[list(SHOULDERS)].mean(axis=0) - points[list(HIPS)].mean(axis=0)
    if dx == 0 and dy == 0:
        return math.nan
    angle = math.degrees(math.atan2(dx, -dy))  # y grows down, so "up" is -dy
    return _clamp(angle / 45.0, -1.0, 1.0)


def _floor_point(lm: Landmarks) -> tuple[float, float]:
    feet = mean_point(lm, FEET)
    if feet is None:
        feet = mean_point(lm, HIPS)
    if feet is None:
        return math.nan, math.nan
    return float(feet[0]), float(feet[1])


def body_features(landmarks: Landmarks, hfov_deg: float = 60.0, aspect: float = 16 / 9) -> BodyFeatures:
    """All :class:`BodyFeatures` of one visitor.

    ``hfov_deg`` is the camera's horizontal field of view (for ``distance``);
    ``aspect`` the frame's width / height (``PoseFrame.width / PoseFrame.height``),
    so that angles and proportions are measured in square pixels rather than in
    normalised units, which stretch x on a wide frame.
    """
    lm = np.asarray(landmarks)
    # Square units: x scaled by the aspect ratio, so both axes count frame heights.
    points = np.asarray(lm[:, :2], dtype=np.float64) * np.array([aspect, 1.0])
    frame = _body_frame(points, lm)
    left = _hand_height(frame, points, lm, Landmark.LEFT_WRIST)
    right = _hand_height(frame, points, lm, Landmark.RIGHT_WRIST)
    visible_hands = [h for h in (left, right) if not math.isnan(h)]
    x, y = body_centre(lm)
    floor_x, floor_y = _floor_point(lm)
    return BodyFeatures(
        left_hand_height=left,
        right_hand_height=right,
        hand_height=max(visible_hands) if visible_hands else math.nan,
        hands_raised=_hands_raised(frame, left, right),
        both_hands_up=_both_hands_up(frame, points, lm),
        arm_span=_arm_span(points, lm),
        lean=_lean(points, lm),
        distance=estimate_distance(_width_fraction(points, lm, aspect), hfov_deg),
        x=x,
        y=y,
        floor_x=floor_x,
        floor_y=floor_y,
    )


def _width_fraction(points: Points, lm: Landmarks, aspect: float) -> float:
    """Shoulder width as a fraction of the frame's width (square units divided by the aspect)."""
    if not all(visible(lm, i) for i in SHOULDERS):
        return math.nan
    return float(np.hypot(*(points[SHOULDERS[0]] - points[SHOULDERS[1]]))) / aspect
