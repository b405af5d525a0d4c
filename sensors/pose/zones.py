"""Floor zones: who stands where, and for how long.

A zone is a polygon either in normalised image coordinates (draw it on a
camera still) or on the floor in metres, reached from the image through a
homography fitted to four marked points (tape on the floor, measured once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from engine.model import Strict
from sensors.pose.types import Points

XY = tuple[float, float]

_MIN_AREA = 1e-9
"""Below this a zone polygon counts as flat (normalised units², or m²)."""
_FLAT_TRIANGLE = 1e-3
"""Calibration triangles smaller than this fraction of the points' extent squared count as a line."""


def polygon_area(points: Sequence[XY] | Points) -> float:
    """Signed area by the shoelace formula (positive when counter-clockwise in a y-up frame)."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def points_in_polygon(points: Points, polygon: Points) -> npt.NDArray[np.bool_]:
    """Which of ``points`` (N, 2) lie inside ``polygon`` (M, 2), by ray casting; nan points are outside."""
    x, y = points[:, 0:1], points[:, 1:2]
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, -1), np.roll(yi, -1)
    straddles = (yi > y) != (yj > y)  # the edge crosses the horizontal line through the point
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = xi + (y - yi) * (xj - xi) / (yj - yi)
    crossings = straddles & (x < crossing_x)
    return np.asarray(crossings.sum(axis=1) % 2 == 1)


class ZoneSpec(Strict):
    """A region of the floor (or of the image) where visitors are counted."""

    polygon: list[tuple[float, float]] = Field(
        description="Corners in order around the zone, as [x, y] pairs: normalised image coordinates (0..1, y "
        "down) for `space: image`, metres on the floor for `space: floor`.",
    )
    space: Literal["image", "floor"] = Field(
        default="image",
        description="`image`: the polygon is drawn on the camera image; `floor`: in metres on the floor, "
        "which needs the floor calibration.",
    )

    @field_validator("polygon")
    @classmethod
    def _proper_polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) < 3:
            raise ValueError(f"a zone needs at least 3 corners, got {len(value)}")
        if not all(math.isfinite(c) for point in value for c in point):
            raise ValueError("zone corners must be finite numbers")
        if abs(polygon_area(value)) < _MIN_AREA:
            raise ValueError("zone polygon has no area: its corners are repeated or lie on one line")
        return value


def _collinear_triple(points: Points) -> bool:
    """Whether any three of four points lie (nearly) on one line, which leaves a homography undetermined.

    "Nearly" relative to the points' spread, so it means the same in metres and in normalised units.
    """
    extent = float(np.ptp(points, axis=0).max())
    if extent == 0:
        return True
    for skip in range(4):
        triangle = np.delete(points, skip, axis=0)
        if abs(polygon_area(triangle)) < _FLAT_TRIANGLE * extent**2:
            return True
    return False


def fit_homography(source: Points, target: Points) -> Points:
    """The 3x3 homography taking four ``source`` points to four ``target`` points (direct linear transform)."""
    rows = []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, -u])
        rows.append([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, -v])
    # The homography is the null vector of the 8x9 system: the last right singular vector.
    _, _, vt = np.linalg.svd(np.array(rows))
    h = vt[-1].reshape(3, 3)
    return np.asarray(h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h)


def apply_homography(h: Points, points: Points) -> Points:
    """Map (N, 2) points through ``h``; points on the horizon come out as nan."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mapped = np.c_[p, np.ones(len(p))] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mapped[:, :2] / mapped[:, 2:3]
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


class FloorCalibration(Strict):
    """Four points marked on the floor, found on the camera image and measured in metres."""

    image_points: list[tuple[float, float]] = Field(
        description="The four marks as seen by the camera, normalised image coordinates (0..1, y down), in order "
        "around the marked area.",
    )
    floor_points: list[tuple[float, float]] = Field(
        description="The same four marks on the floor, in metres from any origin, in the same order.",
    )

    @field_validator("image_points", "floor_points")
    @classmethod
    def _four_spread_points(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) != 4:
            raise ValueError(f"exactly 4 points are needed, got {len(value)}")
        if not all(math.isfinite(c) for point in value for c in point):
            raise ValueError("points must be finite numbers")
        if _collinear_triple(np.array(value, dtype=np.float64)):
            raise ValueError("three of the four points lie on one line (or two coincide): spread them out")
        return value

    @model_validator(mode="after")
    def _same_order(self) -> FloorCalibration:
        # With the points listed in different orders around the area (one set
        # "crossed"), the fitted map folds the area through infinity: the
        # projective weights of the four points then differ in sign.
        h = fit_homography(np.array(self.image_points), np.array(self.floor_points))
        weights = np.c_[np.array(self.image_points), np.ones(4)] @ h[2]
        if not (np.all(weights > 0) or np.all(weights < 0)):
            raise ValueError("image_points and floor_points are not listed in the same order around the area")
        return self

    @cached_property
    def homography(self) -> Points:
        """3x3 matrix mapping homogeneous normalised image coordinates to floor metres."""
        return fit_homography(np.array(self.image_points), np.array(self.floor_points))

    def to_floor(self, points: Points | Sequence[XY]) -> Points:
        """Image points (N, 2) to floor metres (N, 2)."""
        return apply_homography(self.homography, np.asarray(points, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    """One zone after one update."""

    count: int
    """Visitors inside now."""
    dwell: float
    """Seconds the longest-present visitor inside has been inside; 0 when empty."""
    visitors: list[int] = field(default_factory=list)
    """Ids inside now, sorted."""
    entered: list[int] = field(default_factory=list)
    """Ids that came in at this update."""
    left: list[int] = field(default_factory=list)
    """Ids that went out (or out of view) at this update."""


@dataclass(frozen=True, slots=True)
class ZoneUpdate:
    """Every zone's status after one update, by zone name."""

    zones: dict[str, ZoneStatus]

    def __getitem__(self, name: str) -> ZoneStatus:
        return self.zones[name]


class ZoneTracker:
    """Counts visitors per zone and how long they have stayed; call :meth:`update` once per frame."""

    def __init__(self, zones: dict[str, ZoneSpec], calibration: FloorCalibration | None = None) -> None:
        needing = sorted(name for name, zone in zones.items() if zone.space == "floor")
        if needing and calibration is None:
            raise ValueError(
                f"zone(s) {', '.join(needing)} use `space: floor` but no floor calibration is given: add one, "
                "or draw the zones in `space: image`"
            )
        self.zones = dict(zones)
        self.calibration = calibration
        self._polygons = {name: np.array(zone.polygon, dtype=np.float64) for name, zone in zones.items()}
        self._inside: dict[str, dict[int, float]] = {name: {} for name in zones}  # id -> time it came in

    def update(self, visitors: Sequence[tuple[int, float, float]], t: float) -> ZoneUpdate:
        """``visitors``: (id, floor_x, floor_y) with the feet point in normalised image coordinates."""
        ids = [int(v[0]) for v in visitors]
        image = np.array([(v[1], v[2]) for v in visitors], dtype=np.float64).reshape(-1, 2)
        floor = self.calibration.to_floor(image) if self.calibration is not None and len(image) else image
        return ZoneUpdate(
            {
                name: self._update_zone(name, ids, floor if zone.space == "floor" else image, t)
                for name, zone in self.zones.items()
            }
        )

    def _update_zone(self, name: str, ids: list[int], points: Points, t: float) -> ZoneStatus:
        inside_now = {i for i, flag in zip(ids, points_in_polygon(points, self._polygons[name]), strict=True) if flag}
        since = self._inside[name]
        left = sorted(set(since) - inside_now)
        entered = sorted(inside_now - set(since))
        for i in left:
            del since[i]
        for i in entered:
            since[i] = t
        dwell = max(0.0, t - min(since.values())) if since else 0.0
        return ZoneStatus(len(since), dwell, sorted(since), entered, left)
