"""Per-visitor tracks, in memory only, folded into per-hour aggregates (issue 17, item 1).

:class:`Measures` is fed by plain calls (a frame of visitors, a visitor leaving, an interaction, a state entered,
a cue started or ended) and hands out :class:`~engine.analytics.records.BinRecord` aggregates on :meth:`Measures.flush`.
No I/O. All times are wall times in UTC seconds. The rules, exactly:

**Time in view.** Each sighting of a visitor (a :meth:`Measures.frame` that holds them) accrues
``dt = min(t - previous sighting of that visitor, MAX_GAP)``; the first sighting accrues nothing. So with frames
at most :data:`MAX_GAP` apart (occlusions the tracker bridges included) a visitor's time in view is exactly
``last seen - first seen``; a longer gap (a stalled camera) counts as :data:`MAX_GAP`. That ``dt`` goes to
``occupancy_s`` (key: the sensor), to ``zone_dwell_s`` of every zone the visitor is in at that sighting, and to
the ``heatmap`` cell they stand in at that sighting (``floor(x / cell),floor(y / cell)``; none when the floor
position is unknown). Summed over visitors, ``occupancy_s`` is the total of their times in view.

**Stopping.** A visitor whose time in view is at least ``stop_after`` has stopped: ``stopped`` += 1 and the
``holding_s`` bucket of their time in view (``int(seconds)``, ``600+`` from ten minutes) += 1. Every visitor who
leaves adds 1 to ``visitors``, 1 to ``zone_visitors`` of every zone they stood in at least once and 1 to
``heatmap_visitors`` of every floor cell they were seen standing in (the count k-anonymity needs for each cell).

**Hours.** A ``dt`` covers ``(t - dt, t]`` and is split at an hour boundary, each part going to its own hour.
``visitors``, ``stopped``, ``holding_s``, ``zone_visitors`` and ``heatmap_visitors`` go to the hour of the
visitor's *last sighting* (they are counted in the hour they left view, whenever they came; the later ``left``
call does not move them).
``occupancy_peak`` (the most visitors in one frame), ``interactions`` and engagement go to the hour of ``t``.

**Engagement.** Entering a state opens a *state visit* that lasts until the machine enters another state (or
:meth:`Measures.state_ended`); starting a cue opens a *cue run* until it ends (starting it again while it runs
opens a new run). Every visitor in view when it opens, and every visitor first seen while it lasts, is counted
once for it (``engaged_state`` key ``machine:state``, ``engaged_cue`` key ``list:cue``) at that moment's hour. A
visitor in view across two visits of the same state counts twice, once per visit.

**Privacy and memory.** Tracks exist only for visitors in view: leaving (:meth:`Measures.left`), a sensor reset
(:meth:`Measures.reset`) or going unseen for :data:`STALE_AFTER` (checked on :meth:`Measures.flush`) folds the
track into the aggregates and forgets it. Flushing empties the aggregates. ``analytics.enabled: false`` is the
caller's business: it does not create a :class:`Measures` at all.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from engine.analytics.records import HOUR, BinRecord, hour_of
from engine.analytics.settings import AnalyticsSettings

MAX_GAP: Final = 1.0
"""Most seconds one sighting accrues: a stalled camera does not count hours."""
STALE_AFTER: Final = 60.0
"""Seconds unseen after which a track whose ``left`` never came is folded anyway (on flush)."""
HOLDING_BUCKETS: Final = 600
"""Holding time buckets of 1 s: ``0`` to ``599``, then ``600+``."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One visitor in one frame: an anonymous per-session id and where they stand, nothing else."""

    id: int
    floor: tuple[float, float] | None = None
    """Position on the calibrated floor (metres), None when unknown."""
    zones: frozenset[str] = frozenset()
    """The zones they stand in."""


@dataclass(slots=True)
class _Track:
    first: float
    last: float
    lost: float = 0.0
    """Seconds of gaps beyond MAX_GAP, not in view."""
    zones: set[str] = field(default_factory=set)
    cells: set[str] = field(default_factory=set)
    """The floor cells they stood in."""
    engaged: set[int] = field(default_factory=set)
    """State visits and cue runs this visitor was counted for."""


@dataclass(frozen=True, slots=True)
class _Window:
    token: int
    measure: str
    key: str


class Measures:
    """The measures of one exhibit: call it from the control loop, :meth:`flush` about once a minute."""

    def __init__(
        self, exhibit_id: str, settings: AnalyticsSettings, clock_wall: Callable[[], float] | None = None
    ) -> None:
        self.exhibit_id = exhibit_id
        self.settings = settings
        self._wall = clock_wall or time.time
        self._sensors = None if settings.sensors is None else frozenset(settings.sensors)
        self._interactions = frozenset(settings.interactions)
        self._tracks: dict[str, dict[int, _Track]] = {}
        self._sums: dict[tuple[int, str, str], float] = {}
        self._peaks: dict[tuple[int, str], int] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._tokens = itertools.count(1)

    def frame(self, sensor: str, t: float, visitors: Sequence[Seen]) -> None:
        """Everyone a pose sensor sees in one frame at ``t``; a new id starts a track."""
        if self._sensors is not None and sensor not in self._sensors:
            return
        tracks = self._tracks.setdefault(sensor, {})
        peak = (hour_of(t), sensor)
        if len(visitors) > self._peaks.get(peak, 0):
            self._peaks[peak] = len(visitors)
        cell = self.settings.heatmap_cell
        for seen in visitors:
            track = tracks.get(seen.id)
            if track is None:
                track = tracks[seen.id] = _Track(first=t, last=t)
            elif t > track.last:
                gap = t - track.last
                if gap > MAX_GAP:
                    track.lost += gap - MAX_GAP
                track.last = t
                for hour, dt in _split(t, min(gap, MAX_GAP)):
                    self._add(hour, "occupancy_s", sensor, dt)
                    for zone in seen.zones:
                        self._add(hour, "zone_dwell_s", zone, dt)
                    if seen.floor is not None:
                        self._add(hour, "heatmap", _cell(seen.floor, cell), dt)
            track.zones.update(seen.zones)
            if seen.floor is not None:
                track.cells.add(_cell(seen.floor, cell))
            if self._windows:
                self._engage(track, t)

    def left(self, sensor: str, id: int, t: float | None = None) -> None:
        """The visitor ``id`` left the view of ``sensor``: fold their track and forget it. ``t`` (when the
        tracker gave up on them) is accepted but not used: they are counted at their last sighting."""
        track = self._tracks.get(sensor, {}).pop(id, None)
        if track is not None:
            self._fold(sensor, track)

    def reset(self, sensor: str) -> None:
        """The sensor stopped or restarted: every visitor it had in view left at their last sighting."""
        for track in self._tracks.pop(sensor, {}).values():
            self._fold(sensor, track)

    def interaction(self, name: str, t: float | None = None) -> None:
        """A signal fired; counted when the curator marked it as an interaction."""
        if name in self._interactions:
            self._add(hour_of(self._now(t)), "interactions", name, 1.0)

    def state_entered(self, machine: str, state: str, t: float | None = None) -> None:
        """``machine`` entered ``state``: a new state visit, replacing the machine's previous one."""
        self._open(("engaged_state", machine), f"{machine}:{state}", self._now(t))

    def state_ended(self, machine: str, t: float | None = None) -> None:
        """``machine`` stopped (the show ended): its state visit ends without a new one."""
        self._windows.pop(("engaged_state", machine), None)

    def cue_started(self, cue_list: str, cue: str, t: float | None = None) -> None:
        """A cue of ``cue_list`` started (again: a new run)."""
        key = f"{cue_list}:{cue}"
        self._open(("engaged_cue", key), key, self._now(t))

    def cue_ended(self, cue_list: str, cue: str, t: float | None = None) -> None:
        """A cue of ``cue_list`` ended (finished, stopped or was replaced)."""
        self._windows.pop(("engaged_cue", f"{cue_list}:{cue}"), None)

    def in_view(self) -> int:
        """Visitors with an open track, over all sensors (the only per-visitor state there is)."""
        return sum(len(tracks) for tracks in self._tracks.values())

    def flush(self, t: float | None = None) -> list[BinRecord]:
        """Everything accrued since the last flush, as records (zeros left out), then forgotten here.

        Tracks unseen for :data:`STALE_AFTER` before ``t`` (their ``left`` never came) are folded first."""
        now = self._now(t)
        for sensor, tracks in self._tracks.items():
            for stale in [key for key, track in tracks.items() if now - track.last >= STALE_AFTER]:
                self._fold(sensor, tracks.pop(stale))
        records = [
            BinRecord(self.exhibit_id, hour, measure, key, value)
            for (hour, measure, key), value in sorted(self._sums.items())
            if value
        ]
        records += [
            BinRecord(self.exhibit_id, hour, "occupancy_peak", sensor, float(peak))
            for (hour, sensor), peak in sorted(self._peaks.items())
            if peak
        ]
        self._sums.clear()
        self._peaks.clear()
        return records

    def _now(self, t: float | None) -> float:
        return self._wall() if t is None else t

    def _add(self, hour: int, measure: str, key: str, value: float) -> None:
        slot = (hour, measure, key)
        self._sums[slot] = self._sums.get(slot, 0.0) + value

    def _fold(self, sensor: str, track: _Track) -> None:
        hour = hour_of(track.last)
        self._add(hour, "visitors", sensor, 1.0)
        seconds = round(track.last - track.first - track.lost, 6)  # wall times in floats: a 30 s stay is 30, not 29.99
        if seconds >= self.settings.stop_after:
            self._add(hour, "stopped", sensor, 1.0)
            bucket = f"{HOLDING_BUCKETS}+" if seconds >= HOLDING_BUCKETS else str(int(seconds))
            self._add(hour, "holding_s", bucket, 1.0)
        for zone in track.zones:
            self._add(hour, "zone_visitors", zone, 1.0)
        for key in track.cells:
            self._add(hour, "heatmap_visitors", key, 1.0)

    def _open(self, slot: tuple[str, str], key: str, t: float) -> None:
        self._windows[slot] = window = _Window(next(self._tokens), slot[0], key)
        hour = hour_of(t)
        for track in _all(self._tracks.values()):
            track.engaged.add(window.token)
            self._add(hour, window.measure, key, 1.0)

    def _engage(self, track: _Track, t: float) -> None:
        for window in self._windows.values():
            if window.token not in track.engaged:
                track.engaged.add(window.token)
                self._add(hour_of(t), window.measure, window.key, 1.0)


def _split(t: float, dt: float) -> list[tuple[int, float]]:
    """``(t - dt, t]`` as (hour, seconds) parts, split at the hour boundary it may cross (``dt`` < 1 h)."""
    hour = hour_of(t)
    start = t - dt
    if start >= hour:
        return [(hour, dt)]
    return [(hour - HOUR, hour - start), (hour, t - hour)]


def _all(tracks: Iterable[dict[int, _Track]]) -> Iterator[_Track]:
    for per_sensor in tracks:
        yield from per_sensor.values()


def _cell(floor: tuple[float, float], size: float) -> str:
    """The heatmap key of the grid cell (``size`` metres square) holding floor position ``floor``."""
    return f"{math.floor(floor[0] / size)},{math.floor(floor[1] / size)}"
