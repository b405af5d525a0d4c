"""Keyframed timelines: tracks of ``[time, value, curve]`` keys, played through the fade engine.

```yaml
timelines:
  lantern_rise:
    length: 20s                 # optional; default: the last keyframe's time
    loop: false
    tracks:
      lanterns.brightness: [[0, 0], [5, 255, ease-in-out], [15, 255], [20, 0]]
      lanterns.hue: [[0, 20], [20, 50]]
```

A timeline can also run actions at set times (a sound, an event, a cue), each time it passes them:

```yaml
    actions:
      - {at: 5s, do: [{sound: chime}]}
```

A keyframe's curve shapes the move *to* it from the key before (default ``linear``).
Numbers are interpolated; bools and strings are held, changing at their keyframe.
Before its first key a track holds the first value, after its last key the last one.

A :class:`Timeline` is an animation of a :class:`engine.fades.FadeEngine`: its values
go out on the engine's ticks, in the same one-``set()``-per-device-per-tick as
fades. ``play()`` and ``seek()`` claim all its tracks; a fade (or ``set_now``) started
later takes a property over for good, until the timeline's next ``play()`` or
``seek()``: the most recently started wins.
"""

from __future__ import annotations

import asyncio
import bisect
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from engine.curves import CURVE_SCHEMA, DURATION_SCHEMA, Curve, Duration, interpolate
from engine.fades import TIME_TOLERANCE, FadeEngine, Key, is_number
from engine.model import PROPERTY_REFERENCE, Strict
from engine.provenance import Cause
from engine.show_model import Action

KeyValue = bool | float | str


class Keyframe(Strict):
    """One key of a track, written ``[time, value]`` or ``[time, value, curve]``."""

    time: Duration = Field(description="When, in seconds from the start (or `5s`, `500ms`, `2min`).")
    value: KeyValue = Field(description="A number (interpolated), or a bool or a string (held until the next key).")
    curve: Curve = Field("linear", description="Curve of the move from the previous keyframe to this one.")

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) not in (2, 3):
                raise ValueError(
                    f"a keyframe is `[time, value]` or `[time, value, curve]`, not a list of {len(data)} items"
                )
            return dict(zip(("time", "value", "curve"), data, strict=False))
        return data


_KEYFRAME_SCHEMA = {
    "type": "array",
    "description": "`[time, value]` or `[time, value, curve]`; the curve shapes the move to this key.",
    "minItems": 2,
    "maxItems": 3,
    "prefixItems": [
        DURATION_SCHEMA,
        {"type": ["number", "boolean", "string"], "description": "The value at that time."},
        CURVE_SCHEMA,
    ],
}


def _kind(value: KeyValue) -> str:
    return "bool" if isinstance(value, bool) else "string" if isinstance(value, str) else "number"


def _check_track(keys: list[Keyframe]) -> list[Keyframe]:
    """Times strictly increase, values are all of one kind, and curves are only where they act."""
    if not keys:
        raise ValueError("a track needs at least one keyframe")
    kind = _kind(keys[0].value)
    if "curve" in keys[0].model_fields_set:
        raise ValueError("the first keyframe's curve has no effect: a curve shapes the move *to* its keyframe")
    for index in range(1, len(keys)):
        before, key = keys[index - 1], keys[index]
        if key.time <= before.time:
            raise ValueError(
                f"keyframe {index} (at {key.time:g} s) is not after keyframe {index - 1} (at {before.time:g} s): "
                "times must increase"
            )
        if _kind(key.value) != kind:
            raise ValueError(
                f"keyframe {index} holds a {_kind(key.value)} but keyframe 0 a {kind}: "
                "a track holds numbers, or bools, or strings"
            )
        if kind != "number" and "curve" in key.model_fields_set:
            raise ValueError(f"keyframe {index} has a curve, but {kind} values are not faded: they change at the key")
    return keys


def _check_track_name(name: str) -> str:
    if not PROPERTY_REFERENCE.match(name):
        raise ValueError(f"track `{name}` must name a property as `device.property`, e.g. `lanterns.brightness`")
    return name


Track = Annotated[list[Annotated[Keyframe, WithJsonSchema(_KEYFRAME_SCHEMA)]], AfterValidator(_check_track)]
TrackName = Annotated[str, AfterValidator(_check_track_name)]


class TimedActions(Strict):
    """Actions a timeline runs when it passes a time."""

    at: Duration = Field(ge=0, description="Seconds into the timeline (or `5s`).")
    do: list[Action] = Field(min_length=1, description="The actions: `{sound: chime}`, `{event: ...}`...")


class TimelineSpec(Strict):
    """A timeline as written in the exhibit file."""

    length: Duration | None = Field(None, description="Seconds (or `20s`); default: the last keyframe's time.")
    loop: bool = Field(False, description="Start again from 0 at the end, forever.")
    tracks: dict[TrackName, Track] = Field(
        default_factory=dict,
        description="Keyframes per `device.property`: `[time, value]` or `[time, value, curve]`.",
    )
    actions: list[TimedActions] = Field(
        default_factory=list, description="Actions run as the timeline passes their time (`{at: 5s, do: [...]}`)."
    )

    @model_validator(mode="after")
    def _fits(self) -> TimelineSpec:
        if not self.tracks and not self.actions:
            raise ValueError("a timeline needs at least one track or action")
        last = self.last_keyframe
        if self.length is not None and self.length < last:
            what = "keyframe" if self.tracks and last == max(k[-1].time for k in self.tracks.values()) else "action"
            raise ValueError(f"`length` ({self.length:g} s) ends before the last {what} (at {last:g} s)")
        if self.loop and self.duration <= 0:
            raise ValueError("a looping timeline needs a length above 0: set `length` or add a later keyframe")
        return self

    @property
    def last_keyframe(self) -> float:
        """The time of the last keyframe or action."""
        times = [keys[-1].time for keys in self.tracks.values()] + [timed.at for timed in self.actions]
        return max(times)

    @property
    def duration(self) -> float:
        """Seconds it plays for: ``length``, or the last keyframe's time."""
        return self.length if self.length is not None else self.last_keyframe


@dataclass(frozen=True)
class _Track:
    """A track ready to sample: parallel lists, searched by bisection."""

    key: Key
    times: list[float]
    values: list[KeyValue]
    curves: list[str]

    @classmethod
    def build(cls, name: str, keys: list[Keyframe]) -> _Track:
        target, prop = name.split(".", 1)
        return cls((target, prop), [k.time for k in keys], [k.value for k in keys], [k.curve for k in keys])

    def value_at(self, position: float) -> KeyValue:
        index = bisect.bisect_right(self.times, position)
        if index == 0:
            return self.values[0]
        if index == len(self.times):
            return self.values[-1]
        start, end = self.values[index - 1], self.values[index]
        if not (is_number(start) and is_number(end)):
            return start
        t0, t1 = self.times[index - 1], self.times[index]
        return interpolate(self.curves[index], float(start), float(end), (position - t0) / (t1 - t0))


State = Literal["stopped", "playing", "paused"]


class Timeline:
    """A :class:`TimelineSpec` playing on a :class:`FadeEngine` (see the module docstring).

    ``done`` is set when it stops: at its end (without ``loop``), on :meth:`stop`, or
    when later fades took every one of its properties.
    """

    def __init__(self, spec: TimelineSpec, engine: FadeEngine, name: str = "timeline") -> None:
        self.spec = spec
        self.name = name
        self.done = asyncio.Event()
        self._engine = engine
        self._clock = engine.clock
        self._tracks = [_Track.build(track, keys) for track, keys in spec.tracks.items()]
        engine.check_keys(self.properties())
        self._length = spec.duration
        self._loop = spec.loop
        self._state: State = "stopped"
        self._origin = 0.0
        self._position = 0.0
        self._reached_end = False
        self.started_by = ""
        """Who last played it (`state mode: attract (enter)`, `cue evening/2`), for the inspector."""
        self.cause = Cause("timeline", name, f"timeline {name}", self.explain)
        """Recorded by the fade engine for every value it writes: the detail is formatted on read."""
        self.on_actions: Callable[[list[Any]], None] | None = None
        """Runs the actions of ``spec.actions`` as the timeline passes them (set by the show)."""
        self._passed = 0.0
        """Seconds since ``_origin`` up to which actions have run."""

    def explain(self) -> str:
        """Why its properties have their values: where it is, for the curator's inspector."""
        by = f", started by {self.started_by}" if self.started_by else ""
        if self._state == "stopped":
            return f"timeline {self.name} has stopped{by}: the value it left holds"
        how = "looping" if self._state == "playing" and self._loop else self._state
        return f"timeline {self.name} at {self.position:.1f} s of {self._length:g} s ({how}{by})"

    def __repr__(self) -> str:
        return f"Timeline({self.name}: {self._state} at {self.position:g} of {self._length:g} s)"

    # Controls -----------------------------------------------------------------------------------

    def play(self) -> None:
        """Play from the start, taking all its properties."""
        self._start_at(0.0, claim=True)

    def pause(self) -> None:
        """Freeze where it is; its properties keep their values (and it keeps its claim on them)."""
        if self._state != "playing":
            return
        self._position = self.position
        self._state = "paused"
        self._engine.remove_animation(self)

    def resume(self) -> None:
        """Continue a paused timeline without reclaiming what later fades took; a stopped one plays."""
        if self._state == "paused":
            self._start_at(self._position, claim=False)
        elif self._state == "stopped":
            self.play()

    def seek(self, position: float) -> None:
        """Jump to ``position`` seconds and show its values, taking all its properties.

        Playing, it plays on from there; paused or stopped, it stays paused there (cued).
        Past the end it wraps when looping, else it stops at the end.
        """
        if not is_number(position) or position < 0:
            raise ValueError(f"seek needs a position in seconds >= 0, not {position!r}")
        position = self._wrap(float(position))
        if self._state == "playing":
            self._start_at(position, claim=True)
            return
        self._position = position
        self._state = "paused"
        self._engine.add_animation(self)  # sampled once on the next tick, as it is not running

    def continue_at(self, position: float) -> None:
        """Play on from ``position`` seconds (a hot reload: the new keyframes take over where the old ones
        were), taking all its properties, which continue from their current values."""
        self._start_at(self._wrap(max(0.0, position)), claim=True)

    def stop(self) -> None:
        """Stop and rewind; its properties keep their current values."""
        self._state = "stopped"
        self._position = 0.0
        self._engine.remove_animation(self)
        self.done.set()

    def _start_at(self, position: float, claim: bool) -> None:
        self._origin = self._clock.now() - position
        self._passed = position - TIME_TOLERANCE if position == 0 else position  # an action at 0 runs on play
        self._state = "playing"
        self._reached_end = False
        self.done.clear()
        self._engine.add_animation(self, claim=claim)

    # State --------------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._state == "playing"

    @property
    def paused(self) -> bool:
        return self._state == "paused"

    @property
    def length(self) -> float:
        return self._length

    @property
    def position(self) -> float:
        """Seconds into the timeline (within one round when looping)."""
        if self._state != "playing":
            return self._position
        return self._wrap(self._clock.now() - self._origin)

    @property
    def loop(self) -> bool:
        return self._loop

    @loop.setter
    def loop(self, loop: bool) -> None:
        if loop and self._length <= 0:
            raise ValueError(f"timeline `{self.name}` has length 0 and cannot loop")
        position = self.position
        self._loop = loop
        if self._state == "playing":
            self._origin = self._clock.now() - position  # carry on from the same point in this round

    def _wrap(self, position: float) -> float:
        position = max(0.0, position)
        return math.fmod(position, self._length) if self._loop else min(position, self._length)

    # Animation protocol -------------------------------------------------------------------------

    def properties(self) -> Collection[Key]:
        return [track.key for track in self._tracks]

    def sample(self, now: float) -> Mapping[Key, Any]:
        position = self._position
        if self._state == "playing":
            elapsed = now - self._origin
            self._reached_end = not self._loop and elapsed >= self._length - TIME_TOLERANCE
            position = self._length if self._reached_end else self._wrap(elapsed)
            self._run_passed(self._length if self._reached_end else elapsed)
        return {track.key: track.value_at(position) for track in self._tracks}

    def _run_passed(self, elapsed: float) -> None:
        """Run the actions whose time lies in (last time, ``elapsed``], in every round a looping timeline made."""
        if not self.spec.actions or elapsed <= self._passed:
            return
        since, self._passed = self._passed, elapsed
        due: list[tuple[float, list[Any]]] = []
        for timed in self.spec.actions:
            if self._loop and self._length > 0:
                rounds = math.floor((elapsed - timed.at) / self._length) - math.floor((since - timed.at) / self._length)
                first = math.floor((since - timed.at) / self._length) + 1
                due += [(timed.at + (first + k) * self._length, timed.do) for k in range(max(0, rounds))]
            elif since < timed.at <= elapsed:
                due.append((timed.at, timed.do))
        if self.on_actions is not None:
            for _, actions in sorted(due, key=lambda item: item[0]):
                self.on_actions(actions)

    @property
    def running(self) -> bool:
        return self._state == "playing" and not self._reached_end

    def released(self) -> None:
        if self._state != "playing":
            return  # paused or stopped by us: nothing more to do
        self._position = self._length if self._reached_end else self.position
        self._state = "stopped"
        self.done.set()
