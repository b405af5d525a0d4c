"""The `power` service on virtual time: projectors and computers follow the opening hours, and every
command goes through the fade engine (and so the safety gates) to the devices, recorded with its time."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from devices.pjlink import PjlinkConfig
from devices.power_schedule import SERVICE, plans
from devices.wake_on_lan import WakeOnLanConfig
from engine.clock import VirtualClock
from engine.registry import DriverSpec, Registry
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import validate_text
from tests.support.show_harness import RecordingDevice, commands
from tests.support.show_harness import registry as show_registry

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXHIBIT = """\
format_version: 1
id: power
title: {en: Power}
devices:
  beamer:
    kind: pjlink
    host: 10.0.0.20
    schedule: {on_before_open: 15min, off_after_close: 10min}
  lobby:
    kind: pjlink
    host: 10.0.0.21
  pc:
    kind: wake_on_lan
    mac: 3c:52:82:1a:2b:3c
    schedule: {wake_before_open: 20min}
schedule:
  timezone: Asia/Shanghai
  weekly:
    sat: "10:00-17:00"
    sun: "10:00-17:00"
  close_fade: 1s
"""


def registry() -> Registry:
    reg = show_registry()
    reg.add_device(DriverSpec("pjlink", PjlinkConfig, RecordingDevice, RecordingDevice))
    reg.add_device(DriverSpec("wake_on_lan", WakeOnLanConfig, RecordingDevice, RecordingDevice))
    reg.add_service(SERVICE)
    return reg


async def start(local: datetime.datetime, text: str = EXHIBIT) -> tuple[Runtime, VirtualClock]:
    reg = registry()
    exhibit = validate_text(text, "power.yaml", reg)
    clock = VirtualClock(wall=local.astimezone(datetime.UTC))
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True), clock=clock, service_specs=[SERVICE])
    await runtime.start()
    await clock.advance(0)
    return runtime, clock


def switched(runtime: Runtime, device: str, prop: str) -> list[tuple[float, Any]]:
    return [(at, values[prop]) for at, values in commands(runtime, device) if prop in values]


async def test_on_before_opening_off_after_closing_and_the_computer_woken_first() -> None:
    runtime, clock = await start(datetime.datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI))  # Saturday, 9:00
    assert switched(runtime, "beamer", "power") == [] and switched(runtime, "pc", "wake") == []
    assert runtime.store.get("power.health.next").value == "2026-10-10 09:40:00 pc on"
    await clock.advance(40 * 60)  # 9:40: the computer first, as a trigger (true, then false to re-arm)
    assert switched(runtime, "pc", "wake") == [(2400.0, True), (2400.0, False)]
    assert switched(runtime, "beamer", "power") == []
    await clock.advance(5 * 60)  # 9:45: the projector
    assert switched(runtime, "beamer", "power") == [(2700.0, True)]
    await clock.advance(29400 - 2700 - 1)  # 17:09:59: still on after closing
    assert switched(runtime, "beamer", "power") == [(2700.0, True)]
    await clock.advance(1)  # 17:10
    assert switched(runtime, "beamer", "power") == [(2700.0, True), (29400.0, False)]
    assert switched(runtime, "lobby", "power") == []  # no schedule: never switched
    await clock.advance(16 * 3600 + 35 * 60)  # Sunday 9:45
    assert switched(runtime, "beamer", "power")[-1] == (29400.0 + 16 * 3600 + 35 * 60, True)
    assert len(switched(runtime, "pc", "wake")) == 4  # woken again on Sunday
    why = runtime.fades.provenance("beamer", "power")
    assert why is not None and why.cause is not None and why.cause.kind == "schedule"
    await runtime.stop()


async def test_a_start_inside_the_window_switches_on_at_once() -> None:
    runtime, clock = await start(datetime.datetime(2026, 10, 10, 9, 50, tzinfo=SHANGHAI))  # 10 min before opening
    assert switched(runtime, "beamer", "power") == [(0.0, True)]
    assert switched(runtime, "pc", "wake") == [(0.0, True), (0.0, False)]
    await runtime.stop()
    runtime, clock = await start(datetime.datetime(2026, 10, 11, 13, 0, tzinfo=SHANGHAI))  # Sunday, open
    assert switched(runtime, "beamer", "power") == [(0.0, True)]
    await clock.advance(4 * 3600 + 10 * 60)  # 17:10
    assert switched(runtime, "beamer", "power") == [(0.0, True), (15000.0, False)]
    await runtime.stop()


async def test_a_start_outside_the_window_switches_nothing() -> None:
    runtime, clock = await start(datetime.datetime(2026, 10, 10, 20, 0, tzinfo=SHANGHAI))  # Saturday evening
    await clock.advance(3600)
    assert switched(runtime, "beamer", "power") == [] and switched(runtime, "pc", "wake") == []
    await runtime.stop()


def test_the_service_applies_only_with_opening_hours_and_a_scheduled_device() -> None:
    reg = registry()
    exhibit = validate_text(EXHIBIT, "power.yaml", reg)
    assert SERVICE.applies(exhibit)
    assert [(p.device, p.prop, p.lead, p.lag) for p in plans(exhibit)] == [
        ("beamer", "power", 900.0, 600.0),
        ("pc", "wake", 1200.0, 0.0),
    ]
    without_hours = EXHIBIT.split("schedule:\n  timezone")[0]
    assert not SERVICE.applies(validate_text(without_hours, "power.yaml", reg))
    unscheduled = EXHIBIT.replace("    schedule: {on_before_open: 15min, off_after_close: 10min}\n", "").replace(
        "    schedule: {wake_before_open: 20min}\n", ""
    )
    assert not SERVICE.applies(validate_text(unscheduled, "power.yaml", reg))
