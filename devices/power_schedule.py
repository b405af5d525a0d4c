"""The ``power`` service: projectors and exhibit computers follow the opening hours.

A ``pjlink`` device with ``schedule: {on_before_open: 15min, off_after_close: 0s}`` is switched on
``on_before_open`` before each opening and off ``off_after_close`` after each closing; a
``wake_on_lan`` device with ``schedule: {wake_before_open: 20min}`` is woken that long before each
opening. Openings closer together than the lead and the lag (a lunch break of 10 minutes) keep the
projector on through the gap.

Every command goes through the fade engine (``set_now``) with a ``schedule`` cause, so it passes the
same safety and output gates as any other command, and the inspector says why a projector is on.

Rules an operator can predict:

- Started inside the "on" window (10 minutes before opening, or during the opening hours), projectors
  switch on and computers are woken at once.
- Started outside it, nothing is switched: a technician's projector at night stays as it is, and
  the next closing switches it off.
- A wall time that jumps (the studio's pretended time) is looked at again at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devices.pjlink import PjlinkConfig
from devices.wake_on_lan import WakeOnLanConfig
from engine.exhibit import ExhibitBase
from engine.health import ComponentHealth
from engine.model import StoreType
from engine.provenance import Cause
from engine.registry import ServiceSpec
from engine.schedule import OpeningHours

if TYPE_CHECKING:
    from engine.runtime import Runtime

log = logging.getLogger("devices.power_schedule")

HORIZON = dt.timedelta(days=8)
"""How far ahead the next change is looked for (a week of hours, and a day more)."""
FIGURES: dict[str, StoreType] = {"next": "str"}
MEANINGS = {"next": "the next power change: when, which device, on or off"}


@dataclass(frozen=True)
class PowerPlan:
    """One device's window around the openings: on from ``lead`` before, off ``lag`` after (if ``switch_off``)."""

    device: str
    prop: str
    lead: float
    lag: float
    switch_off: bool
    pulse: bool
    """A trigger (``wake``): set true then false, so the next time sends again."""

    def wanted(self, hours: OpeningHours, at: dt.datetime) -> bool:
        """Whether ``at`` is in the window: some opening meets [at - lag, at + lead]."""
        start = at - dt.timedelta(seconds=self.lag)
        end = at + dt.timedelta(seconds=self.lead, microseconds=1)
        return bool(hours.periods(start, end))

    def next_edge(self, hours: OpeningHours, after: dt.datetime) -> dt.datetime | None:
        """The first moment after ``after`` where the window may begin or end."""
        lead, lag = dt.timedelta(seconds=self.lead), dt.timedelta(seconds=self.lag)
        edges = [
            edge
            for opens, closes in hours.periods(after - lag - lead, after + lead + HORIZON)
            for edge in (opens - lead, closes + lag)
            if edge > after
        ]
        return min(edges, default=None)


def plans(exhibit: ExhibitBase) -> list[PowerPlan]:
    """The devices the opening hours switch."""
    found = []
    for name, config in exhibit.devices.items():
        if isinstance(config, PjlinkConfig) and config.schedule is not None:
            found.append(
                PowerPlan(name, "power", config.schedule.on_before_open, config.schedule.off_after_close, True, False)
            )
        elif isinstance(config, WakeOnLanConfig) and config.schedule is not None:
            found.append(PowerPlan(name, "wake", config.schedule.wake_before_open, 0.0, False, True))
    return found


def _applies(exhibit: ExhibitBase) -> bool:
    return exhibit.schedule is not None and bool(plans(exhibit))


class PowerService:
    name = "power"

    def __init__(self, runtime: Runtime, health: ComponentHealth) -> None:
        self.runtime, self.health = runtime, health
        self.plans = plans(runtime.exhibit)
        self.on: dict[str, bool] = {}
        """What each device was last switched to by this service."""
        self._changed = asyncio.Event()

    async def start(self) -> None:
        pass

    async def run(self) -> None:
        clock = self.runtime.clock
        self.health.set("ok")
        while True:
            self._changed.clear()
            hours = self.runtime.exhibit.schedule
            if hours is None:  # a reload took the opening hours away
                self.health.figure("next", "")
                await self._changed.wait()
                continue
            now = clock.wall()
            for plan in self.plans:
                self._follow(plan, plan.wanted(hours, now))
            edge = self._next(hours, now)
            seconds = (edge - now).total_seconds() if edge is not None else HORIZON.total_seconds()
            await self._sleep(max(0.0, seconds))

    def reload(self, exhibit: ExhibitBase, catalogue: object) -> None:
        """New opening hours take effect at once (the devices themselves change only with a restart)."""
        self._changed.set()

    async def close(self, timeout: float) -> None:
        self.health.stopped()

    def _follow(self, plan: PowerPlan, on: bool) -> None:
        if self.on.get(plan.device) == on:
            return
        first = plan.device not in self.on
        self.on[plan.device] = on
        if first and not on:
            return  # started outside the window: nothing is switched
        if not on and not plan.switch_off:
            return
        verb = "on" if on else "off"
        why = f"opening hours: {plan.device} {verb} ({'inside the window at start' if first else 'on time'})"
        cause = Cause("schedule", "opening hours", why)
        log.info("opening hours: %s %s", plan.device, "woken" if plan.pulse else f"switched {verb}")
        self._set(plan.device, plan.prop, on, cause)
        if plan.pulse and on:
            self._set(plan.device, plan.prop, False, cause)

    def _set(self, device: str, prop: str, value: bool, cause: Cause) -> None:
        try:
            self.runtime.fades.set_now(device, prop, value, cause)
        except ValueError as exc:  # the device is not a fade target in this run
            log.error("opening hours: cannot switch %s: %s", device, exc)

    def _next(self, hours: OpeningHours, now: dt.datetime) -> dt.datetime | None:
        edges = [(edge, plan) for plan in self.plans if (edge := plan.next_edge(hours, now)) is not None]
        if not edges:
            self.health.figure("next", "")
            return None
        edge, plan = min(edges, key=lambda item: item[0])
        local = edge.astimezone(hours.tz).strftime("%Y-%m-%d %H:%M:%S")
        self.health.figure("next", f"{local} {plan.device} {'on' if plan.wanted(hours, edge) else 'off'}")
        return edge

    async def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` of wall time pass, the wall time jumps, or a reload brings new hours."""
        sleeper = asyncio.ensure_future(self.runtime.clock.sleep_wall(seconds))
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait((sleeper, changed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            changed.cancel()


def _build(runtime: Runtime) -> PowerService:
    return PowerService(runtime, runtime.context.health_of("power", "service", FIGURES))


SERVICE = ServiceSpec("power", order=60, applies=_applies, build=_build, figures=FIGURES, meanings=MEANINGS)
