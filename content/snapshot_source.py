"""Takes a :class:`~content.snapshot.SceneSnapshot` of the engine's state, once per rendered frame.

Runs on the engine's loop at the render rate, so it must be cheap: the list of scalar signals is
built once (and again only when signals are declared later), visitors are converted only when the
pose sensor published a new tuple, and nothing is copied that the pickle to the render process
does not need. It never reads an image; pose visitors carry landmarks only.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from content.snapshot import Scalar, SceneEvent, SceneSnapshot, VisitorPose
from engine.clock import Clock
from engine.signals import Signal, SignalStore

log = logging.getLogger("content.snapshot_source")

_SCALAR_TYPES = frozenset({"float", "int", "bool", "str"})


class SnapshotSource:
    """Builds snapshots from the signal store; scene events are queued with :meth:`fire`.

    ``visitor_fields`` gives, by pose sensor, the fields its ``<sensor>.visitors`` items carry into
    ``SceneSnapshot.visitors[<sensor>]`` (the catalogue's fields: what scene expressions may read).
    Scene events are kept (in order) until the next :meth:`take`; the queue is bounded at
    ``max_events``, and an overflow drops the oldest, counts and logs."""

    def __init__(
        self,
        store: SignalStore,
        clock: Clock,
        visitor_fields: Mapping[str, Sequence[str]] | Sequence[str],
        *,
        max_events: int = 1024,
    ) -> None:
        self._store = store
        self._clock = clock
        self._pose: dict[str, str] = {}
        if not isinstance(visitor_fields, Mapping):  # just the sensors: their visitors carry landmarks only
            visitor_fields = {sensor: () for sensor in visitor_fields}
        self._fields = {sensor: tuple(f for f in fields if f != "id") for sensor, fields in visitor_fields.items()}
        for sensor in visitor_fields:
            name = f"{sensor}.visitors"
            try:
                signal = store.get(name)
            except KeyError:
                raise ValueError(f"pose sensor `{sensor}` has no `{name}` signal") from None
            if signal.type != "object":
                raise ValueError(f"`{name}` is a {signal.type} signal, not the pose sensor's visitors")
            self._pose[sensor] = name
        self._events: deque[SceneEvent] = deque()
        self._max_events = max_events
        self.dropped_events = 0
        self.takes = 0
        self._scalars: list[Signal] = []
        self._events_seen: list[Signal] = []
        self._known = -1
        # Per pose sensor: the store's last visitors tuple (by identity) and its conversion.
        self._visitor_cache: dict[str, tuple[object, tuple[VisitorPose, ...]]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read which scalar signals exist (called by :meth:`take` when their number changes)."""
        names = self._store.names()
        self._known = len(names)
        signals = [self._store.get(name) for name in names]
        self._scalars = [s for s in signals if s.type in _SCALAR_TYPES]
        self._events_seen = [s for s in signals if s.type == "event"]

    def fire(self, event: SceneEvent) -> None:
        """Queue a one-shot scene event for the next snapshot (from a rule, a cue, the console)."""
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning(
                    "scene events overflow: %d dropped (nobody takes snapshots?)",
                    self.dropped_events,
                )
        self._events.append(event)

    def take(self) -> SceneSnapshot:
        """The state now: scalar values that have one, visitors per pose sensor, and the events
        fired since the previous take (which this drains)."""
        if self._signal_count() != self._known:
            self.refresh()
        # A signal that was never set has no value to show; a stale one keeps its last value,
        # like a mapping holding its last output.
        values: dict[str, Scalar] = {s.name: s.value for s in self._scalars if s.value is not None}
        event_times = {s.name: s.timestamp for s in self._events_seen if s.timestamp is not None}
        visitors = {sensor: self._visitors(sensor, name) for sensor, name in self._pose.items()}
        events: tuple[SceneEvent, ...] = ()
        if self._events:
            events = tuple(self._events)
            self._events.clear()
        self.takes += 1
        return SceneSnapshot(
            time=self._clock.now(), values=values, visitors=visitors, events=events, event_times=event_times
        )

    def _signal_count(self) -> int:
        return len(self._store)

    def _visitors(self, sensor: str, name: str) -> tuple[VisitorPose, ...]:
        value = self._store.get(name).value
        cached = self._visitor_cache.get(sensor)
        if cached is not None and cached[0] is value:
            return cached[1]  # the pose sensor has not published since the last frame
        fields = self._fields[sensor]
        poses = tuple(_pose(v, fields) for v in value) if value else ()
        self._visitor_cache[sensor] = (value, poses)
        return poses


def _pose(visitor: Any, fields: Sequence[str]) -> VisitorPose:
    # Duck-typed (``id``, ``landmarks``, fields as attributes or in ``features``), as the expression
    # language reads them: content/ does not import sensors/.
    landmarks = np.asarray(visitor.landmarks, dtype=np.float32)
    features = getattr(visitor, "features", None)
    values = {
        name: _plain(getattr(visitor, name, None) if hasattr(visitor, name) else getattr(features, name, None))
        for name in fields
    }
    return VisitorPose(int(visitor.id), landmarks, {k: v for k, v in values.items() if v is not None})


def _plain(value: Any) -> Scalar | None:
    """A field value that pickles small (numpy scalars become Python ones)."""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return None
