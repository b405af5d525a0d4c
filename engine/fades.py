"""The fade engine: device properties move smoothly, at a fixed rate, one ``set()`` per device per tick.

Everything that moves a property over time is an :class:`Animation` (a :class:`Fade`,
a :class:`engine.timeline.Timeline`). On each tick (44 Hz by default, the DMX
refresh rate) the engine samples every running animation on the injectable clock
and sends each device the properties that changed, all in ONE ``set()`` call.

Decisions, for the people who build on it:

- **Rate.** A device never gets two ``set()`` calls less than ``1/rate`` apart, so
  never more than ``rate`` per second. Ticks keep a fixed grid; an immediate write
  (:meth:`FadeEngine.set_now`, a 0-second fade) goes out at once unless the device
  was written less than ``1/rate`` ago, in which case it goes out with the next tick.
- **Idle.** The ticker runs only while something is animating or waiting to be
  sent; otherwise it sleeps on an :class:`asyncio.Event`.
- **Who wins.** Each property belongs to the animation that claimed it last (a fade
  when it starts, a timeline on ``play()`` / ``seek()``), and :meth:`FadeEngine.set_now`
  takes it from any animation. The most recently started wins; a property taken
  away is not given back when the newer animation ends. An animation left with no
  property is dropped (a fade is then "replaced": ``done`` is set, ``completed`` is False).
- **No jumps.** A new fade starts from the property's current value, as of the
  last tick (what the device was sent), so replacing a fade mid-way is seamless.
- **End.** A fade reaches its exact target on the first tick at or after its end
  (at most ``1/rate`` late); :meth:`FadeEngine.fade_all` ends its fades on the last
  tick within its deadline instead, so PANIC is done in time.
- **What cannot be interpolated** (a bool, a string, or a property whose current
  value is unknown) keeps its value during the fade and is set to the target at the
  end, in the same ``set()`` as the last numeric step ("switch off at the end").
  A 0-second fade, like :meth:`FadeEngine.set_now`, sets at once.
- **Why.** Each write method takes an optional ``cause`` (:class:`engine.provenance.Cause`), and an
  animation may carry one as its ``cause`` attribute; the engine keeps, per property, the cause of
  its last write and when (:meth:`FadeEngine.provenance`), for the curator studio's inspector.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import math
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from engine.clock import Clock
from engine.curves import interpolate, validate_curve
from engine.provenance import INITIAL, Cause, Provenance
from engine.safety import Setter

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""A property of a target: ``(target, property)``."""

TIME_TOLERANCE = 1e-9
"""Seconds of float noise tolerated in tick times (an end reached 1 ns early counts as reached)."""


class Animation(Protocol):
    """Something the engine samples on every tick until it stops running."""

    def properties(self) -> Collection[Key]:
        """The properties it drives; it claims them when started with ``claim=True``."""

    def sample(self, now: float) -> Mapping[Key, Any]:
        """Its values at ``now``; only those of properties it still owns are used."""

    @property
    def running(self) -> bool:
        """False once its last values are sampled: the engine then stops sampling it."""

    def released(self) -> None:
        """Called once when the engine stops sampling it: ended, removed, or left with no property."""


def cause_of(animation: Animation) -> Cause | None:
    """An animation's ``cause`` attribute (fades and timelines have one), recorded for what it writes."""
    return getattr(animation, "cause", None)


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool: only those are interpolated."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _same(a: Any, b: Any) -> bool:
    # True == 1.0 in Python, but a bool property switching to a number is a change.
    return a is not None and isinstance(a, bool) == isinstance(b, bool) and a == b


class Fade:
    """One property moving from its value when the fade started to ``to``, along a curve.

    ``done`` is set when the fade ends, reached (``completed`` True) or cancelled or
    replaced (``completed`` False); ``await fade.wait()`` returns ``completed``.
    """

    def __init__(
        self,
        key: Key,
        start: Any,
        to: Any,
        started_at: float,
        duration: float,
        curve: str,
        cause: Cause | None = None,
    ) -> None:
        self.target, self.prop = key
        self.cause = cause
        """What started it (a cue, a preset, PANIC...), recorded as the cause of what it writes."""
        self.start = start
        self.to = to
        self.started_at = started_at
        self.duration = duration
        self.curve = curve
        self.completed = False
        self.done = asyncio.Event()
        self._numeric = is_number(start) and is_number(to)
        self._reached = False

    def __repr__(self) -> str:
        return f"Fade({self.target}.{self.prop}: {self.start!r} → {self.to!r} in {self.duration} s, {self.curve})"

    def properties(self) -> Collection[Key]:
        return ((self.target, self.prop),)

    def progress(self, now: float) -> float:
        """0 at the start, 1 at (or within ``TIME_TOLERANCE`` of) the end."""
        elapsed = now - self.started_at
        if elapsed >= self.duration - TIME_TOLERANCE:
            return 1.0
        return max(0.0, elapsed / self.duration)

    def value_at(self, now: float) -> Any:
        """Its value at ``now``: interpolated if both ends are numbers, else the start until the end."""
        t = self.progress(now)
        if t >= 1.0:
            return self.to
        if self._numeric:
            return interpolate(self.curve, self.start, self.to, t)
        return self.start

    def sample(self, now: float) -> Mapping[Key, Any]:
        value = self.value_at(now)
        self._reached = self.progress(now) >= 1.0
        return {} if value is None else {(self.target, self.prop): value}

    @property
    def running(self) -> bool:
        return not self._reached

    def released(self) -> None:
        self.completed = self._reached
        self.done.set()

    def finish_now(self) -> None:
        """Mark a 0-second fade, already written, as complete."""
        self._reached = True
        self.released()

    async def wait(self) -> bool:
        """Wait until it ends; True if it reached its target, False if cancelled or replaced."""
        await self.done.wait()
        return self.completed


class FadeEngine:
    """Renders fades and timelines at a fixed rate, coalesced per target (see the module docstring)."""

    def __init__(self, clock: Clock, rate: float = 44.0) -> None:
        if not (is_number(rate) and rate > 0):
            raise ValueError(f"the fade rate must be a positive number of ticks per second, not {rate!r}")
        self._clock = clock
        self.rate = float(rate)
        self.period = 1.0 / self.rate
        self.ticks = 0
        """Ticks run so far: stays put while idle."""
        self._setters: dict[str, Setter] = {}
        self._values: dict[Key, Any] = {}
        self._owner: dict[Key, Animation] = {}
        self._active: list[Animation] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._last_sent: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._grid_base: float | None = None
        self._grid_index = 0
        self._paused_at: float | None = None
        self._min_interval: dict[str, float] = {}
        self._why: dict[Key, Provenance] = {}
        """What last wrote each property, and when (the inspector reads it; see engine.provenance)."""

    @property
    def clock(self) -> Clock:
        return self._clock

    # Targets and values -------------------------------------------------------------------------

    def add_target(self, name: str, setter: Setter, current: Mapping[str, Any], max_rate: float | None = None) -> None:
        """A device (or any writable target), how to write it, and its current values (faded from).

        ``max_rate`` limits how many ``set()`` calls per second it gets: by default (None) the
        engine's rate; ``math.inf`` for no limit beyond the ticks (a target that coalesces on its
        own, like an MQTT device waiting for its broker's acknowledgements, takes every write).
        """
        if name in self._setters:
            raise ValueError(f"fade target `{name}` is already added")
        self._setters[name] = setter
        self._min_interval[name] = self.period if max_rate is None else 1.0 / max_rate
        now = self._clock.now()
        for prop, value in current.items():
            self._values[(name, prop)] = value
            self._why[(name, prop)] = Provenance(INITIAL, now)

    def targets(self) -> list[str]:
        return sorted(self._setters)

    def check_keys(self, keys: Iterable[Key]) -> None:
        """ValueError naming the first unknown target (with a did-you-mean), so typos fail at once."""
        for target, _prop in keys:
            if target not in self._setters:
                close = difflib.get_close_matches(target, self._setters, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else f"; the targets are {self.targets()}"
                raise ValueError(f"unknown fade target `{target}`{hint}")

    def value(self, target: str, prop: str) -> Any:
        """The property's current value as of the last tick (mid-fade too); None if never known."""
        self.check_keys([(target, prop)])
        return self._values.get((target, prop))

    def provenance(self, target: str, prop: str) -> Provenance | None:
        """What last wrote the property (or claimed it: a timeline playing), and when; None if nothing did."""
        return self._why.get((target, prop))

    def driver(self, target: str, prop: str) -> Animation | None:
        """The running (or paused) fade or timeline that owns the property now, if any."""
        owner = self._owner.get((target, prop))
        return owner if owner is not None and any(owner is a for a in self._active) else None

    def known_properties(self) -> list[Key]:
        """Every property with a known value or a recorded cause."""
        return sorted(set(self._values) | set(self._why))

    def _record(self, key: Key, cause: Cause | None, now: float) -> None:
        why = self._why.get(key)
        if why is None:
            self._why[key] = Provenance(cause, now)
        else:
            why.record(cause, now)

    def fading(self) -> list[tuple[str, str]]:
        """The properties a running fade or timeline drives now."""
        return sorted(key for key, owner in self._owner.items() if any(owner is a for a in self._active))

    # Fades --------------------------------------------------------------------------------------

    def fade(
        self,
        target: str,
        prop: str,
        to: Any,
        duration: float,
        curve: str = "linear",
        start: float | None = None,
        cause: Cause | None = None,
    ) -> Fade:
        """Fade one property to ``to`` over ``duration`` seconds, from its current value or ``start``.

        Replaces a fade of the same property (and takes it from a timeline). A
        duration of 0 writes at once (lowest latency) and returns a completed fade.
        ``cause`` says what started it (recorded for the inspector).
        """
        key = (target, prop)
        self.check_keys([key])
        if not is_number(duration) or duration < 0:
            raise ValueError(f"a fade's duration must be a number of seconds >= 0, not {duration!r}")
        if isinstance(to, float) and not math.isfinite(to):
            raise ValueError(f"cannot fade `{target}.{prop}` to {to}")
        origin = self._values.get(key) if start is None else start
        now = self._clock.now()
        fade = Fade(key, origin, to, now, float(duration), validate_curve(curve), cause)
        if duration == 0:
            self._take(key)
            self._record(key, cause, now)
            self._write_now(target, {prop: to})
            fade.finish_now()
            return fade
        self.add_animation(fade)
        return fade

    def set_now(self, target: str, prop: str, value: Any, cause: Cause | None = None) -> None:
        """Set a property at once, taking it from any fade or timeline that drove it.
        ``cause`` says what set it (recorded for the inspector; writers build it once, not per call)."""
        key = (target, prop)
        self.check_keys([key])
        if key not in self._owner and key in self._values and _same(self._values[key], value):
            return  # nothing changes: a mapping repeating a value 30 times a second sends it once
        self._take(key)
        now = self._clock.now()
        why = self._why.get(key)  # inlined _record: this is every mapped sensor value's path
        if why is None:
            self._why[key] = Provenance(cause, now)
        else:
            if why.cause is not cause:
                why.cause, why.since = cause, now
            why.changed = now
        self._write_now(target, {prop: value}, now)

    def halt(self, target: str, values: Mapping[str, Any], cause: Cause | None = None) -> None:
        """Stop ``target`` now (an e-stop, a PANIC's motors): take every one of its properties from
        whatever drove it, drop what was waiting to be sent to it, and send ``values`` at once,
        whatever its rate limit."""
        self.check_keys((target, prop) for prop in values)
        for key in [key for key in self._owner if key[0] == target]:
            self._take(key)
        self._pending[target] = dict(values)
        now = self._clock.now()
        for prop, value in values.items():
            self._values[(target, prop)] = value
            self._record((target, prop), cause, now)
        self._send(target, self._clock.now())

    def cancel(self, target: str | None = None, prop: str | None = None) -> None:
        """Stop what drives the matching properties (all if no arguments); they stay where they are."""
        if target is not None:
            self.check_keys([(target, prop or "")])
        for key in list(self._owner):
            if (target is None or key[0] == target) and (prop is None or key[1] == prop):
                self._take(key)

    async def fade_all(
        self, targets: Mapping[str, Mapping[str, Any]], duration: float, cause: Cause | None = None
    ) -> None:
        """Fade every given property to its value, all done within ``duration`` (PANIC); returns when done.

        The fades end on the last tick within the deadline, not the first after it.
        Needs :meth:`run` to be running, like every fade longer than 0.
        """
        self.check_keys((target, prop) for target, values in targets.items() for prop in values)
        now = self._clock.now()
        length = self._last_tick_by(now + duration) - now if duration > 0 else 0.0
        if length <= 0:
            for target, values in targets.items():
                for prop in values:
                    self._take((target, prop))
                    self._record((target, prop), cause, now)
                self._write_now(target, dict(values))
            return
        fades = [self.fade(t, p, v, length, cause=cause) for t, values in targets.items() for p, v in values.items()]
        await asyncio.gather(*(fade.wait() for fade in fades))

    # Animations ---------------------------------------------------------------------------------

    def add_animation(self, animation: Animation, claim: bool = True) -> None:
        """Sample ``animation`` from the next tick on; with ``claim`` it takes all its properties first."""
        self.check_keys(animation.properties())
        if claim:
            displaced = [self._owner[key] for key in animation.properties() if key in self._owner]
            cause, now = cause_of(animation), self._clock.now()
            for key in animation.properties():
                self._owner[key] = animation
                why = self._why.get(key)
                if why is None:
                    self._why[key] = Provenance(cause, now)
                else:
                    why.claim(cause, now)
            self._drop_if_unowned(displaced)
        if not any(animation is a for a in self._active):
            self._active.append(animation)
        self._drop_if_unowned([animation])
        self._wake.set()

    def remove_animation(self, animation: Animation) -> None:
        """Stop sampling ``animation`` (it is ``released``); its properties stay where they are."""
        if any(animation is a for a in self._active):
            self._active = [a for a in self._active if a is not animation]
            animation.released()

    def _take(self, key: Key) -> None:
        owner = self._owner.pop(key, None)
        if owner is not None:
            self._drop_if_unowned([owner])

    def _drop_if_unowned(self, animations: Iterable[Animation]) -> None:
        """Stop sampling animations whose every property later fades took (one with none, a timeline of actions
        only, runs on)."""
        for animation in animations:
            keys = animation.properties()
            if keys and not any(self._owner.get(key) is animation for key in keys):
                self.remove_animation(animation)

    # Writing ------------------------------------------------------------------------------------

    def _write_now(self, target: str, values: Mapping[str, Any], now: float | None = None) -> None:
        for prop, value in values.items():
            self._values[(target, prop)] = value
        self._pending.setdefault(target, {}).update(values)
        now = self._clock.now() if now is None else now
        if self._may_send(target, now):
            self._send(target, now)
        else:
            self._wake.set()

    def _may_send(self, target: str, now: float) -> bool:
        last = self._last_sent.get(target)
        return last is None or now - last >= self._min_interval.get(target, self.period) - TIME_TOLERANCE

    def _send(self, target: str, now: float) -> None:
        values = self._pending.pop(target)
        self._last_sent[target] = now
        try:
            self._setters[target](values)
        except Exception:
            # One faulty target must not stop the fades of all the others.
            log.exception("setting %s on fade target `%s` failed", sorted(values), target)

    # Ticking ------------------------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze running fades where they are (an operator's PAUSE); immediate writes still go out."""
        if self._paused_at is None:
            self._paused_at = self._clock.now()

    def resume(self) -> None:
        """Let paused fades go on from where they were, taking as long as they had left."""
        if self._paused_at is None:
            return
        held = self._clock.now() - self._paused_at
        self._paused_at = None
        for animation in self._active:
            if isinstance(animation, Fade):
                animation.started_at += held
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def tick(self, now: float, slot: float | None = None) -> None:
        """Sample every running animation and send each target what changed, in one ``set()``.

        ``slot`` is when the tick was due on the grid (default ``now``). Rate limits count from slots,
        so a tick the event loop ran a little late does not make the next, on time, look too soon and
        skip every device whose rate is the tick rate."""
        self.ticks += 1
        for animation in [] if self._paused_at is not None else list(self._active):
            cause = cause_of(animation)
            for key, value in animation.sample(now).items():
                if self._owner.get(key) is animation and not _same(self._values.get(key), value):
                    self._values[key] = value
                    self._pending.setdefault(key[0], {})[key[1]] = value
                    self._record(key, cause, now)
            if not animation.running:
                self.remove_animation(animation)
        sent_at = now if slot is None else min(slot, now)
        for target in list(self._pending):
            if self._may_send(target, sent_at):
                self._send(target, sent_at)

    def _busy(self) -> bool:
        return bool(self._pending or (self._active and self._paused_at is None))

    async def run(self) -> None:
        """The ticker: ticks at ``rate`` on a fixed grid while busy, sleeps on an event while idle. Forever."""
        while True:
            if not self._busy():
                self._grid_base = None
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._clock.now()
            if self._grid_base is None:
                self._grid_base, self._grid_index = now, 0
            base = self._grid_base
            self.tick(now, slot=base + self._grid_index * self.period)
            if self._busy():
                await self._clock.sleep(self._next_tick(base) - self._clock.now())

    def _next_tick(self, base: float) -> float:
        # Ticks at base + k/rate: no drift; after a stall, skip the missed ticks rather than bunch them.
        self._grid_index += 1
        now = self._clock.now()
        if base + self._grid_index * self.period < now - TIME_TOLERANCE:
            self._grid_index = math.floor((now - base) / self.period) + 1
        return base + self._grid_index * self.period

    def _last_tick_by(self, deadline: float) -> float:
        """The time of the last tick at or before ``deadline`` (idle: the grid would start now)."""
        base = self._clock.now() if self._grid_base is None else self._grid_base
        index = math.floor((deadline - base) / self.period + TIME_TOLERANCE)
        return base + index * self.period
