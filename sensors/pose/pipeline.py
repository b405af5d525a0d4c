"""From what the model found to what curators use: visitors with stable ids,
smoothed landmarks, body features, gestures, zones, and health, as signals.

Runs on the event loop; it sees landmark numbers only, never an image.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from engine.analytics.folding import Measures, Seen
from engine.model import StoreType
from engine.signals import SignalStore
from sensors.pose.features import BodyFeatures, body_features
from sensors.pose.filters import LandmarkFilter, OneEuroSettings
from sensors.pose.gestures import GESTURES, GestureDetector, GestureSettings
from sensors.pose.tracking import TrackingSettings, VisitorTracker, nearest
from sensors.pose.types import Landmarks, PoseFrame
from sensors.pose.zones import FloorCalibration, ZoneSpec, ZoneTracker

FEATURES: dict[str, StoreType] = {
    f.name: "bool" if f.type in (bool, "bool") else "float" for f in dataclasses.fields(BodyFeatures)
}
NOBODY: dict[str, float | bool] = {
    name: (False if kind == "bool" else math.nan if name == "distance" else 0.0) for name, kind in FEATURES.items()
}
"""What ``nearest.*`` reads when nobody is there: a neutral pose, unknown distance."""
MIN_VISIBILITY = 0.5
"""A landmark less visible than this is not part of a visitor's box."""
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "left_hand_height": (-0.5, 1.5),
    "right_hand_height": (-0.5, 1.5),
    "hand_height": (-0.5, 1.5),
    "hands_raised": (0.0, 1.0),
    "lean": (-1.0, 1.0),
    "x": (0.0, 1.0),
    "y": (0.0, 1.0),
    "floor_x": (0.0, 1.0),
    "floor_y": (0.0, 1.0),
}
"""The bounded features' ranges (the others: ``arm_span``, ``distance`` have none)."""
HEALTH_FIGURES: dict[str, StoreType] = {
    "fps": "float",
    "inference_ms": "float",
    "latency_ms": "float",
    "dropped": "int",
    "age": "float",
}
HEALTH_MEANINGS = {
    "fps": "frames that reached the signals in the last second (camera, video or replay)",
    "inference_ms": "time the model takes per frame",
    "latency_ms": "from the camera's frame to the signals",
    "dropped": "frames skipped because the model was busy (latest wins)",
    "age": "seconds since the last frame reached the signals (-1 before the first)",
}
FEATURE_MEANINGS = {
    "left_hand_height": "left wrist height in body units (0 hips, 1 top of the head)",
    "right_hand_height": "right wrist height in body units (0 hips, 1 top of the head)",
    "hand_height": "the higher hand, in body units (0 hips, 1 top of the head; above 1 is above the head)",
    "hands_raised": "0 (hands at or below the shoulders) to 1 (both well above the head)",
    "both_hands_up": "both wrists above the nose",
    "arm_span": "wrist to wrist over shoulder width: about 1 arms down, 3 in a T",
    "lean": "-1..1, torso tilt; positive towards the image's right",
    "distance": "metres from the camera (NaN when unknown)",
    "x": "body centre, image x (0..1)",
    "y": "body centre, image y (0..1, down)",
    "floor_x": "feet, image x (0..1)",
    "floor_y": "feet, image y (0..1, down)",
}


@dataclass(frozen=True, slots=True)
class VisitorSnapshot:
    """One visitor as logic and scenes see it: an anonymous id, smoothed landmarks, features.

    The landmarks stay in this process (and the scene's, which poses avatars from them): what goes out to a
    console, a control surface or a log is :meth:`outward`."""

    id: int
    landmarks: Landmarks
    features: BodyFeatures
    since: float

    def outward(self) -> dict[str, object]:
        """What may leave the exhibit: the id, since when, the features, and the box around the visible body
        (image x0, y0, x1, y1, 0..1, to the hundredth; None when no point is visible). Never a landmark array."""
        seen = [(float(p[0]), float(p[1])) for p in self.landmarks if p[3] >= MIN_VISIBILITY]
        box = None
        if seen:
            xs, ys = zip(*seen, strict=True)
            box = [round(min(xs), 2), round(min(ys), 2), round(max(xs), 2), round(max(ys), 2)]
        return {"id": self.id, "since": self.since, "box": box, **dataclasses.asdict(self.features)}


@dataclass(frozen=True)
class PipelineSettings:
    smoothing: OneEuroSettings
    tracking: TrackingSettings
    gestures: GestureSettings
    zones: dict[str, ZoneSpec]
    floor: FloorCalibration | None
    hfov_deg: float


def pipeline_signals(zones: list[str]) -> dict[str, StoreType]:
    """Every signal a pose sensor feeds, by short name."""
    signals: dict[str, StoreType] = {"count": "int", "visitors": "object", "enter": "event", "leave": "event"}
    signals["nearest.id"] = "int"
    signals.update({f"nearest.{name}": kind for name, kind in FEATURES.items()})
    signals.update({gesture: "event" for gesture in GESTURES})
    for zone in zones:
        signals[f"zone.{zone}.count"] = "int"
        signals[f"zone.{zone}.dwell"] = "float"
        signals[f"zone.{zone}.enter"] = "event"
        signals[f"zone.{zone}.leave"] = "event"
    return signals


def pipeline_meanings(zones: list[str]) -> dict[str, str]:
    """What each of :func:`pipeline_signals` means."""
    meanings = {
        "count": "visitors in view",
        "visitors": "every visitor: anonymous id, smoothed landmarks, features",
        "enter": "a visitor arrived (payload: the id)",
        "leave": "a visitor left (payload: the id)",
        "nearest.id": "anonymous id of the visitor nearest the camera (0: nobody)",
    }
    meanings |= {f"nearest.{name}": f"nearest visitor: {text}" for name, text in FEATURE_MEANINGS.items()}
    meanings |= {gesture: f"gesture `{gesture}` (payload: the id)" for gesture in GESTURES}
    for zone in zones:
        meanings[f"zone.{zone}.count"] = f"visitors in zone `{zone}`"
        meanings[f"zone.{zone}.dwell"] = f"seconds the longest-present visitor has been in zone `{zone}`"
        meanings[f"zone.{zone}.enter"] = f"a visitor came into zone `{zone}` (payload: the id)"
        meanings[f"zone.{zone}.leave"] = f"a visitor left zone `{zone}` (payload: the id)"
    return meanings


class PosePipeline:
    def __init__(
        self,
        sensor: str,
        settings: PipelineSettings,
        store: SignalStore,
        measures: Measures | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.sensor = sensor
        self.measures = measures
        """Visitor analytics, when the exhibit keeps them: fed ids, floor positions and zones, never landmarks."""
        self.wall = wall
        self.prefix = f"{sensor}."
        self.settings = settings
        self.store = store
        self.tracker = VisitorTracker(settings.tracking)
        self.gestures = GestureDetector(settings.gestures)
        self.zones = ZoneTracker(settings.zones, settings.floor) if settings.zones else None
        self._filters: dict[int, LandmarkFilter] = {}
        self.visitors: tuple[VisitorSnapshot, ...] = ()

    def _set(self, name: str, value: object) -> None:
        self.store.set(self.prefix + name, value)

    def process(self, frame: PoseFrame) -> None:
        t = frame.timestamp
        update = self.tracker.update(frame.people, t)
        for visitor_id in update.left:
            self._filters.pop(visitor_id, None)
            self.gestures.forget(visitor_id)
        snapshots = []
        fired: list[tuple[str, int]] = []
        for visitor in update.visitors:
            smoothing = self._filters.setdefault(visitor.id, LandmarkFilter(self.settings.smoothing))
            landmarks = smoothing(visitor.landmarks, t)
            features = body_features(landmarks, self.settings.hfov_deg, aspect=frame.width / frame.height)
            snapshots.append(VisitorSnapshot(visitor.id, landmarks, features, visitor.first_seen))
            fired += [(gesture, visitor.id) for gesture in self.gestures.update(visitor.id, landmarks, t, features)]
        self.visitors = tuple(snapshots)

        self._set("count", len(snapshots))
        self._set("visitors", self.visitors)
        closest = nearest(update.visitors)
        chosen = next((s for s in snapshots if closest is not None and s.id == closest.id), None)
        self._set("nearest.id", chosen.id if chosen else 0)
        values = dataclasses.asdict(chosen.features) if chosen else NOBODY
        for name in FEATURES:
            value = values[name]
            self._set(f"nearest.{name}", bool(value) if FEATURES[name] == "bool" else float(value))
        zones = self._update_zones(snapshots, t) if self.zones is not None else {}
        if self.measures is not None and self.wall is not None:
            self._measure(snapshots, zones, update.left)
        for visitor_id in update.entered:
            self._set("enter", visitor_id)
        for gesture, visitor_id in fired:
            self._set(gesture, visitor_id)
        for visitor_id in update.left:
            self._set("leave", visitor_id)

    def _measure(self, snapshots: list[VisitorSnapshot], zones: dict[int, frozenset[str]], left: list[int]) -> None:
        """What analytics may know of this frame: anonymous ids, where each stands on the floor, and their zones."""
        assert self.measures is not None and self.wall is not None
        now = self.wall()
        calibration = self.settings.floor
        seen = []
        for s in snapshots:
            feet = (s.features.floor_x, s.features.floor_y)
            floor = None
            if calibration is not None and math.isfinite(feet[0]) and math.isfinite(feet[1]):
                x, y = calibration.to_floor([feet])[0]
                floor = (float(x), float(y))
            seen.append(Seen(s.id, floor, zones.get(s.id, frozenset())))
        self.measures.frame(self.sensor, now, seen)
        for visitor_id in left:
            self.measures.left(self.sensor, visitor_id, now)

    def _update_zones(self, snapshots: list[VisitorSnapshot], t: float) -> dict[int, frozenset[str]]:
        """Sets the zones' signals; returns each visitor's zones."""
        assert self.zones is not None
        feet = [
            (s.id, s.features.floor_x, s.features.floor_y)
            for s in snapshots
            if math.isfinite(s.features.floor_x) and math.isfinite(s.features.floor_y)
        ]
        result = self.zones.update(feet, t)
        inside: dict[int, set[str]] = {}
        for zone, state in result.zones.items():
            self._set(f"zone.{zone}.count", state.count)
            self._set(f"zone.{zone}.dwell", float(state.dwell))
            for visitor_id in state.entered:
                self._set(f"zone.{zone}.enter", visitor_id)
            for visitor_id in state.left:
                self._set(f"zone.{zone}.leave", visitor_id)
            for visitor_id in state.visitors:
                inside.setdefault(visitor_id, set()).add(zone)
        return {visitor_id: frozenset(names) for visitor_id, names in inside.items()}
