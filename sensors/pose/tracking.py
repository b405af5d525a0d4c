"""Stable anonymous visitor ids across frames.

MediaPipe returns the people in a frame in no particular order; this gives
each one a number that stays with them while they remain in view (and through
short occlusions), so "the visitor who waved" means the same person a second
later. Ids are plain counters: nothing about a person's appearance is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import Field

from engine.model import Strict
from sensors.pose.features import apparent_size, body_centre
from sensors.pose.types import Landmarks, Points


class TrackingSettings(Strict):
    """How detections in successive frames are joined into visitors."""

    max_distance: float = Field(
        default=0.25,
        gt=0,
        description="Farthest a visitor's body centre may be from where they were expected to be, in normalised "
        "image units (fractions of the frame), to be taken for the same visitor.",
    )
    grace: float = Field(
        default=0.5,
        ge=0,
        description="Seconds a visitor may go unseen (occluded, missed by the detector) and keep their id.",
    )
    min_visibility: float = Field(
        default=0.5, ge=0, le=1, description="Landmarks less visible than this are ignored when locating a visitor."
    )


@dataclass(frozen=True, slots=True)
class Visitor:
    """One person in view. Anonymous: an id and body landmarks, never image data."""

    id: int
    """1, 2, 3, ... in order of arrival; never reused by the same tracker."""
    landmarks: Landmarks
    """Latest landmarks as detected (unfiltered)."""
    first_seen: float
    """Timestamp (s) of the first frame this visitor was seen in."""
    last_seen: float
    """Timestamp (s) of the latest frame this visitor was seen in."""


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """The result of one frame."""

    visitors: list[Visitor] = field(default_factory=list)
    """Visitors seen in this frame, sorted by id."""
    entered: list[int] = field(default_factory=list)
    """Ids new in this frame."""
    left: list[int] = field(default_factory=list)
    """Ids unseen for longer than the grace period, reported once and then forgotten."""


@dataclass(slots=True)
class _Track:
    id: int
    landmarks: Landmarks
    first_seen: float
    last_seen: float
    centre: Points
    velocity: Points = field(default_factory=lambda: np.zeros(2))

    def predicted(self, t: float, horizon: float) -> Points:
        """Where the centre should be at ``t`` if the visitor kept moving (at most ``horizon`` s ahead)."""
        ahead = min(max(t - self.last_seen, 0.0), horizon)
        return self.centre + self.velocity * ahead

    def observe(self, landmarks: Landmarks, centre: Points, t: float) -> None:
        dt = t - self.last_seen
        if dt > 0:
            # Smoothed, so one jittery frame does not send the prediction astray.
            self.velocity = 0.5 * self.velocity + 0.5 * (centre - self.centre) / dt
        self.landmarks, self.centre, self.last_seen = landmarks, centre, max(t, self.last_seen)

    def visitor(self) -> Visitor:
        return Visitor(self.id, self.landmarks, self.first_seen, self.last_seen)


def greedy_assignment(cost: npt.NDArray[np.float64], max_cost: float) -> list[tuple[int, int]]:
    """Pairs (row, column), cheapest first, each row and column used once, none costing more than ``max_cost``.

    Not always the optimal total, but for the handful of visitors in front of
    an exhibit it matches a Hungarian assignment in practice, and it is simple.
    """
    rows, cols = np.nonzero(cost <= max_cost)
    order = np.lexsort((cols, rows, cost[rows, cols]))  # by cost, ties broken stably
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            used_rows.add(r)
            used_cols.add(c)
            pairs.append((r, c))
    return pairs


class VisitorTracker:
    """Gives each detected person a stable id; call :meth:`update` once per frame, in time order."""

    def __init__(self, settings: TrackingSettings | None = None) -> None:
        self.settings = settings or TrackingSettings()
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    def update(self, people: Sequence[Landmarks], t: float) -> TrackUpdate:
        """Match this frame's detections (``t`` in seconds) to known visitors."""
        left = self._expire(t)
        detections = self._locate(people)
        tracks = list(self._tracks.values())
        matched = self._match(tracks, detections, t)
        seen: list[int] = []
        entered: list[int] = []
        for k, (landmarks, centre) in enumerate(detections):
            if k in matched:
                track = matched[k]
                track.observe(landmarks, centre, t)
            else:
                track = self._new_track(landmarks, centre, t)
                entered.append(track.id)
            seen.append(track.id)
        visitors = [self._tracks[i].visitor() for i in sorted(seen)]
        return TrackUpdate(visitors=visitors, entered=entered, left=left)

    @staticmethod
    def nearest(visitors: Sequence[Visitor]) -> Visitor | None:
        """The visitor nearest the camera; see the module-level :func:`nearest`."""
        return nearest(visitors)

    def _expire(self, t: float) -> list[int]:
        gone = sorted(i for i, track in self._tracks.items() if t - track.last_seen > self.settings.grace)
        for i in gone:
            del self._tracks[i]
        return gone

    def _locate(self, people: Sequence[Landmarks]) -> list[tuple[Landmarks, Points]]:
        """Each detection with its body centre; detections with nothing visible are dropped."""
        located = []
        for person in people:
            landmarks = np.array(person, dtype=np.float32)  # a copy: callers may reuse their buffers
            centre = np.array(body_centre(landmarks, self.settings.min_visibility))
            if np.isfinite(centre).all():
                located.append((landmarks, centre))
        return located

    def _match(self, tracks: list[_Track], detections: list[tuple[Landmarks, Points]], t: float) -> dict[int, _Track]:
        """Detection index -> the track it continues."""
        if not tracks or not detections:
            return {}
        expected = np.array([track.predicted(t, self.settings.grace) for track in tracks])
        centres = np.array([centre for _, centre in detections])
        cost = np.linalg.norm(expected[:, None, :] - centres[None, :, :], axis=2)
        return {d: tracks[r] for r, d in greedy_assignment(cost, self.settings.max_distance)}

    def _new_track(self, landmarks: Landmarks, centre: Points, t: float) -> _Track:
        track = _Track(self._next_id, landmarks, first_seen=t, last_seen=t, centre=centre)
        self._tracks[track.id] = track
        self._next_id += 1
        return track


def nearest(visitors: Sequence[Visitor]) -> Visitor | None:
    """The visitor who looks biggest (see :func:`apparent_size`), so presumably nearest the camera.

    Apparent size rather than MediaPipe's z, which is relative to each
    person's own hips and says nothing about who is in front. Visitors whose
    size cannot be measured come last; ties go to the lower id.
    """
    best: Visitor | None = None
    best_size = -math.inf
    for visitor in sorted(visitors, key=lambda v: v.id):
        size = apparent_size(visitor.landmarks)
        size = size if math.isfinite(size) else -1.0
        if best is None or size > best_size:
            best, best_size = visitor, size
    return best
