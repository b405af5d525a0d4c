"""Gestures as events: wave, raise both hands, T-pose, step forward.

Each gesture is *edge-triggered*: it fires once when it is recognised, then
must end (its condition becomes false) before it can fire again, and never
sooner than ``refractory`` seconds after it last fired. State is kept per
visitor id, so two visitors waving fire two events.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from pydantic import Field

from engine.model import Strict
from sensors.pose.features import SHOULDERS, BodyFeatures, body_features, shoulder_width, visible
from sensors.pose.types import Landmark, Landmarks

GESTURES = ("wave", "raise_both_hands", "t_pose", "step_forward")


class GestureSettings(Strict):
    """Thresholds of the gestures. Distances are normalised image units (fractions of the frame)."""

    wave_min_swings: int = Field(
        default=3, ge=1, description="Direction changes of a raised wrist's side-to-side movement that make a wave."
    )
    wave_min_amplitude: float = Field(
        default=0.04,
        gt=0,
        description="Smallest side-to-side swing of the wrist that counts, in fractions of the frame's width.",
    )
    wave_window: float = Field(default=1.5, gt=0, description="Seconds within which the swings must happen.")
    raise_hold: float = Field(
        default=0.3, ge=0, description="Seconds both wrists must stay above the nose for `raise_both_hands`."
    )
    tpose_tolerance: float = Field(
        default=0.08,
        gt=0,
        description="Largest vertical distance between each wrist and its shoulder in a T-pose, in fractions of "
        "the frame's height (about 13 cm for a visitor 2.5 m from a 60° camera).",
    )
    tpose_min_span: float = Field(
        default=2.3,
        gt=0,
        description="Smallest wrist-to-wrist distance, in shoulder widths, for a T-pose (arms down: ~1).",
    )
    tpose_hold: float = Field(default=0.5, ge=0, description="Seconds the T-pose must be held.")
    step_min_growth: float = Field(
        default=0.15,
        gt=0,
        description="Growth of apparent shoulder width (0.15 = 15%) that means the visitor stepped towards the "
        "camera. Turning from side-on to facing the camera also widens the shoulders.",
    )
    step_window: float = Field(default=1.0, gt=0, description="Seconds within which the growth must happen.")
    refractory: float = Field(default=1.0, ge=0, description="Seconds after a gesture fires before it can fire again.")


_WIDTH_TAU = 0.15
"""Seconds: time constant smoothing shoulder width, so detector jitter (a few % of it) is not a step."""


@dataclass(slots=True)
class _Trigger:
    """Edge trigger: fires once per stretch of a true condition, after ``hold`` s, outside the refractory time."""

    since: float | None = None
    fired: bool = False
    last_fired: float = -math.inf

    def step(self, condition: bool, t: float, hold: float, refractory: float) -> bool:
        if not condition:
            self.since, self.fired = None, False
            return False
        if self.since is None:
            self.since = t
        if self.fired or t - self.since < hold or t - self.last_fired < refractory:
            return False
        self.fired, self.last_fired = True, t
        return True


@dataclass(slots=True)
class _Swings:
    """Direction changes of one wrist's x, with hysteresis so jitter below the amplitude does not count."""

    low: float = math.inf
    high: float = -math.inf
    direction: int = 0
    extreme: float = 0.0
    reversals: deque[float] = field(default_factory=deque)

    def clear(self) -> None:
        self.low, self.high, self.direction = math.inf, -math.inf, 0
        self.reversals.clear()

    def add(self, x: float, t: float, amplitude: float) -> None:
        if self.direction == 0:
            self.low, self.high = min(self.low, x), max(self.high, x)
            if x - self.low >= amplitude:
                self.direction, self.extreme = 1, x
            elif self.high - x >= amplitude:
                self.direction, self.extreme = -1, x
        elif (x - self.extreme) * self.direction > 0:
            self.extreme = x  # still moving the same way: a new extreme
        elif abs(x - self.extreme) >= amplitude:
            self.reversals.append(t)
            self.direction, self.extreme = -self.direction, x

    def count(self, t: float, window: float) -> int:
        while self.reversals and self.reversals[0] < t - window:
            self.reversals.popleft()
        return len(self.reversals)


@dataclass(slots=True)
class _VisitorState:
    hands: tuple[_Swings, _Swings] = field(default_factory=lambda: (_Swings(), _Swings()))
    widths: deque[tuple[float, float]] = field(default_factory=deque)  # (t, smoothed shoulder width)
    width: float = math.nan  # smoothed shoulder width
    width_t: float = -math.inf
    triggers: dict[str, _Trigger] = field(default_factory=lambda: {name: _Trigger() for name in GESTURES})


_ARMS = ((Landmark.LEFT_WRIST, Landmark.LEFT_ELBOW), (Landmark.RIGHT_WRIST, Landmark.RIGHT_ELBOW))


class GestureDetector:
    """Recognises gestures per visitor; feed it every frame of each visitor, in time order."""

    def __init__(self, settings: GestureSettings | None = None) -> None:
        self.settings = settings or GestureSettings()
        self._visitors: dict[int, _VisitorState] = {}

    def update(self, visitor_id: int, landmarks: Landmarks, t: float, body: BodyFeatures | None = None) -> list[str]:
        """The gestures (names from :data:`GESTURES`) that fire at this sample, at time ``t`` seconds.

        ``body`` passes features already computed for this sample, so they are not computed twice.
        """
        s = self.settings
        state = self._visitors.setdefault(visitor_id, _VisitorState())
        body = body or body_features(landmarks)
        conditions = {
            "wave": self._waving(state, landmarks, t),
            "raise_both_hands": body.both_hands_up,
            "t_pose": self._t_pose(landmarks, body.arm_span),
            "step_forward": self._stepped(state, landmarks, t),
        }
        holds = {"raise_both_hands": s.raise_hold, "t_pose": s.tpose_hold}
        return [
            name
            for name in GESTURES
            if state.triggers[name].step(conditions[name], t, holds.get(name, 0.0), s.refractory)
        ]

    def forget(self, visitor_id: int) -> None:
        """Drop a visitor's state (call it when the tracker reports them gone)."""
        self._visitors.pop(visitor_id, None)

    def _waving(self, state: _VisitorState, lm: Landmarks, t: float) -> bool:
        """Either hand, held above its elbow, changed direction often enough within the window."""
        s = self.settings
        waving = False
        for swings, (wrist, elbow) in zip(state.hands, _ARMS, strict=True):
            raised = visible(lm, wrist) and visible(lm, elbow) and lm[wrist, 1] < lm[elbow, 1]
            if not raised:
                swings.clear()  # a wave is a raised hand's movement; lowering it ends the wave
                continue
            swings.add(float(lm[wrist, 0]), t, s.wave_min_amplitude)
            waving |= swings.count(t, s.wave_window) >= s.wave_min_swings
        return waving

    def _t_pose(self, lm: Landmarks, arm_span: float) -> bool:
        """Both wrists at about shoulder height and far apart."""
        s = self.settings
        for wrist, shoulder in zip((Landmark.LEFT_WRIST, Landmark.RIGHT_WRIST), SHOULDERS, strict=True):
            if not (visible(lm, wrist) and visible(lm, shoulder)):
                return False
            if abs(float(lm[wrist, 1] - lm[shoulder, 1])) >= s.tpose_tolerance:
                return False
        # With the arms horizontal the frame's aspect ratio hardly changes the span (a ratio of widths).
        return arm_span >= s.tpose_min_span

    def _stepped(self, state: _VisitorState, lm: Landmarks, t: float) -> bool:
        """Apparent shoulder width grew enough since the narrowest moment within the window."""
        s = self.settings
        widths = state.widths
        while widths and widths[0][0] < t - s.step_window:
            widths.popleft()
        width = shoulder_width(lm)
        if not (math.isfinite(width) and width > 0):
            return False
        width = _smooth_width(state, width, t)
        grown = bool(widths) and width >= (1.0 + s.step_min_growth) * min(w for _, w in widths)
        widths.append((t, width))
        return grown


def _smooth_width(state: _VisitorState, width: float, t: float) -> float:
    """Exponential moving average with a time constant, so it behaves the same at any frame rate."""
    if math.isnan(state.width) or t - state.width_t > _WIDTH_TAU * 10:
        state.width = width  # first sample, or after a long gap: nothing to smooth against
    elif t > state.width_t:
        alpha = 1.0 - math.exp(-(t - state.width_t) / _WIDTH_TAU)
        state.width += alpha * (width - state.width)
    state.width_t = max(t, state.width_t)
    return state.width
