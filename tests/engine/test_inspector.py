"""The curator studio's inspector on the real show and virtual time: what drives each device property
and why (a mapping, a timeline, a cue's fade, a preset, PANIC), the candidates that are not in charge,
and on the flagship an entry for every property and signal, as JSON."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from engine.clock import VirtualClock
from engine.drivers import DriverContext, Sensor, WritableSensor
from engine.model import SensorConfig
from engine.registry import DriverSpec, Registry
from engine.runtime import Runtime, RuntimeOptions
from engine.studio.inspector import inspect, small
from engine.validate import load_exhibit
from launcher import build_registry
from tests.conftest import FLAGSHIP
from tests.support.show_harness import RecordingDevice, start_show

HEAD = """\
format_version: 1
id: inspect
title: {en: Inspect}
sensors:
  panel:
    kind: osc
    signals:
      level: {address: /level}
      button: {address: /button, type: bool}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
      hue: {type: float, range: [0, 360], safe: 30}
"""


def entry(picture: dict[str, Any], device: str, prop: str) -> dict[str, Any]:
    [found] = [d for d in picture["devices"] if (d["device"], d["property"]) == (device, prop)]
    return found


def candidate(found: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    [match] = [c for c in found["candidates"] if (c["kind"], c["name"]) == (kind, name)]
    return match


async def test_a_mapped_property_names_its_mapping_and_the_input_that_gave_its_value():
    runtime, clock = await start_show(HEAD + "mappings:\n  - {from: panel.level, to: wash.level, input: [0, 1]}\n")
    assert entry(inspect(runtime), "wash", "level")["driver"]["kind"] == "initial"  # nothing set it yet
    await clock.advance(2.0)
    runtime.store.set("panel.level", 0.42)
    await clock.advance(0.5)
    found = entry(inspect(runtime), "wash", "level")
    driver = found["driver"]
    assert (driver["kind"], driver["name"]) == ("mapping", "panel.level → wash.level")
    assert driver["detail"] == "panel.level = 0.42 → 42 (input [0, 1], output [0, 100])"
    assert driver["since"] == 0.5 and found["changed"] == 0.5
    assert found["value"] == 42.0 and found["safe"] == 0
    assert candidate(found, "mapping", "panel.level → wash.level")["in_charge"] is True
    await runtime.stop()


TIMELINE = (
    HEAD
    + """\
mappings:
  - {from: panel.level, to: wash.level, input: [0, 1], when: 'states.mode == "engaged"'}
timelines:
  breath:
    loop: true
    tracks:
      wash.level: [[0, 10], [3, 90], [6, 10]]
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{timeline: breath}]
        exit: [{timeline: breath, do: stop}]
        transitions: [{to: engaged, on: panel.button}]
      engaged: {}
"""
)


async def test_while_a_timeline_runs_it_is_in_charge_and_the_mapping_says_its_condition_is_false():
    runtime, clock = await start_show(TIMELINE)
    runtime.store.set("panel.level", 0.5)  # the mapping's `when` is false: it does not drive
    await clock.advance(4.2)
    found = entry(inspect(runtime), "wash", "level")
    driver = found["driver"]
    assert (driver["kind"], driver["name"]) == ("timeline", "breath")
    assert driver["detail"].startswith("timeline breath at 4.2 s of 6 s (looping, started by state mode: attract")
    mapping = candidate(found, "mapping", "panel.level → wash.level")
    assert mapping["condition"] is False and mapping["in_charge"] is False and mapping["active"] is False
    assert mapping["why"] == 'when states.mode == "engaged" is false; timeline breath is in charge'
    timeline = candidate(found, "timeline", "breath")
    assert timeline["in_charge"] is True and timeline["state"] == "playing" and timeline["position"] == 4.2

    runtime.store.set("panel.button", True)  # engaged: the timeline stops, the mapping takes over
    runtime.store.set("panel.level", 0.25)
    await clock.advance(0.1)
    found = entry(inspect(runtime), "wash", "level")
    assert found["driver"]["kind"] == "mapping" and "panel.level = 0.25 → 25" in found["driver"]["detail"]
    mapping = candidate(found, "mapping", "panel.level → wash.level")
    assert mapping["condition"] is True and mapping["in_charge"] is True
    assert candidate(found, "timeline", "breath")["state"] == "stopped"
    await runtime.stop()


CUES = (
    HEAD
    + """\
presets:
  dusk: {wash.level: 60, wash.hue: 25}
cues:
  evening:
    guard: 0s
    cues:
      - {id: "1", name: Night, actions: [{set: wash.level, value: 80}], fade: 4s}
      - {id: "2", actions: [{preset: dusk}]}
"""
)


async def test_a_cue_fade_names_the_cue_and_how_far_it_got_and_a_preset_names_the_preset():
    runtime, clock = await start_show(CUES)
    assert runtime.show is not None
    runtime.show.go()
    await clock.advance(1.0)
    found = entry(inspect(runtime), "wash", "level")
    driver = found["driver"]
    assert (driver["kind"], driver["name"]) == ("cue", "evening/1")
    assert driver["detail"].startswith("cue evening/1 (Night): set wash.level to 80, fade 4 s; fading to 80 over 4 s")
    assert "25% done" in driver["detail"] and driver["since"] == 1.0
    assert candidate(found, "cue", "evening/1")["in_charge"] is True
    preset = candidate(found, "preset", "dusk")
    assert preset["in_charge"] is False and "cue evening/2" in preset["why"]

    runtime.show.go()  # cue 2 recalls the preset
    await clock.advance(0.1)
    picture = inspect(runtime)
    for prop, value in (("level", 60), ("hue", 25)):
        found = entry(picture, "wash", prop)
        assert found["value"] == value
        assert (found["driver"]["kind"], found["driver"]["name"]) == ("preset", "dusk")
        assert found["driver"]["detail"] == "preset dusk, recalled by cue evening/2"
        assert candidate(found, "preset", "dusk")["in_charge"] is True
    assert candidate(entry(picture, "wash", "level"), "cue", "evening/1")["in_charge"] is False
    await runtime.stop()


async def test_panic_says_the_safe_state_is_in_charge_and_that_mappings_are_off():
    runtime, clock = await start_show(HEAD + "mappings:\n  - {from: panel.level, to: wash.level, input: [0, 1]}\n")
    assert runtime.show is not None
    runtime.store.set("panel.level", 0.9)
    await clock.advance(0.1)
    assert entry(inspect(runtime), "wash", "level")["driver"]["kind"] == "mapping"
    done = runtime.show.panic()
    await clock.advance(0.5)
    found = entry(inspect(runtime), "wash", "level")
    assert found["driver"]["name"] == "PANIC" and "% done" in found["driver"]["detail"]  # fading out
    await clock.advance(0.6)
    assert done.done()
    runtime.store.set("panel.level", 0.3)  # ignored: PANIC
    found = entry(inspect(runtime), "wash", "level")
    assert found["value"] == 0 == found["safe"]
    assert (found["driver"]["kind"], found["driver"]["name"]) == ("safe", "PANIC")
    assert found["driver"]["detail"].startswith("PANIC: safe state")
    mapping = candidate(found, "mapping", "panel.level → wash.level")
    assert mapping["active"] is False and mapping["why"].startswith("off: the show is in PANIC")
    await runtime.stop()


# The flagship ----------------------------------------------------------------------------------------


class QuietSensor(Sensor):
    """Sends nothing: the test sets its signals."""

    async def run(self) -> None:
        await asyncio.Event().wait()


class QuietBoard(WritableSensor):
    """A quiet sensor with outputs (the plinth's LED), so that the show drives them as in a real run."""

    async def run(self) -> None:
        await asyncio.Event().wait()

    def set(self, values: Mapping[str, Any]) -> None:
        pass

    async def go_safe(self, timeout: float) -> bool:
        return True


def quiet(name: str, config: SensorConfig, context: DriverContext) -> Sensor:
    return (QuietBoard if config.settable_properties() else QuietSensor)(name, config, context)


def quiet_registry() -> Registry:
    """Every driver kind of the project with its real config, but quiet sensors and recording devices:
    no camera, serial port, socket or broker. (A Runtime built directly starts no service.)"""
    registry = build_registry()
    for kind, sensor in list(registry.sensors.items()):
        registry.sensors[kind] = DriverSpec(kind, sensor.config, quiet, quiet)
    for kind, device in list(registry.devices.items()):
        registry.devices[kind] = DriverSpec(kind, device.config, RecordingDevice, RecordingDevice)
    return registry


async def start_flagship() -> tuple[Runtime, VirtualClock]:
    registry = quiet_registry()
    tuesday = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.UTC)  # 10:00 in Beijing: open
    clock = VirtualClock(wall=tuesday)
    exhibit = load_exhibit(FLAGSHIP, registry)
    runtime = Runtime(exhibit, registry, options=RuntimeOptions(simulate=True), clock=clock)
    await runtime.start()
    await clock.advance(0)
    return runtime, clock


async def test_the_flagship_has_an_entry_for_every_property_and_signal_and_is_json():
    runtime, clock = await start_flagship()
    assert runtime.show is not None
    await clock.advance(4.2)
    landmarks = [[0.5, 0.5, 0.0]] * 33
    visitors = tuple(SimpleNamespace(id=i, landmarks=landmarks, hands_raised=0.2) for i in (3, 7))
    runtime.store.set("body.visitors", visitors)
    runtime.store.set("controls.wash", float("nan"))  # a bad input is dropped by the mapping, never JSON NaN
    picture = inspect(runtime)
    text = json.dumps(picture, allow_nan=False, ensure_ascii=False)
    assert "[0.5, 0.5, 0.0]" not in text  # no landmark array, only the count and ids

    expected = {(name, prop) for name, out in runtime.show.outputs.items() for prop in out.settable_properties()}
    assert len(expected) == 30  # wash, lanterns (2), finale, 3 strips (5 each), boat (3), plinth LED, sound (7)
    pairs = [(d["device"], d["property"]) for d in picture["devices"]]
    assert set(pairs) == expected and len(pairs) == len(expected)
    signals = {s["name"]: s for s in picture["signals"]}
    assert set(signals) == set(runtime.catalogue.signals) and len(signals) == len(runtime.catalogue.signals)
    assert signals["body.visitors"]["value"] == {"count": 2, "ids": [3, 7]}
    assert signals["body.visitors"]["changed"] == 0.0 and signals["body.visitors"]["stale"] is False
    assert signals["controls.wash"]["value"] is None  # NaN: no number to show
    assert signals["states.mode"]["value"] == "attract" and signals["states.mode"]["changed"] == 4.2
    assert signals["body.count"]["changed"] is None and signals["body.count"]["stale"] is True
    assert signals["show.panic"]["owner"] == "show" and signals["wash.health.status"]["group"] == "device"

    # In attract the breathing timeline lights the lanterns; the hands-raised mapping waits for `engaged`.
    lanterns = entry(picture, "lanterns", "brightness")
    assert (lanterns["driver"]["kind"], lanterns["driver"]["name"]) == ("timeline", "lantern_breath")
    mapping = candidate(lanterns, "mapping", "body.nearest.hands_raised → lanterns.brightness")
    assert mapping["condition"] is False
    assert mapping["why"] == 'when states.mode == "engaged" is false; timeline lantern_breath is in charge'
    assert candidate(lanterns, "timeline", "finale_glow")["state"] == "stopped"
    # The opening hours recalled the dusk preset, fading over 5 s.
    hue = entry(picture, "lanterns", "hue")
    assert (hue["driver"]["kind"], hue["driver"]["name"]) == ("preset", "dusk")
    assert "opening hours: open" in hue["driver"]["detail"]
    assert {c["name"] for c in entry(picture, "wash", "brightness")["candidates"]} == {
        "controls.wash → wash.brightness",
        "evening/3",
        "evening/4",
        "dusk",
    }
    finale = entry(picture, "finale", "active")
    assert finale["driver"]["kind"] == "initial"
    assert {c["name"] for c in finale["candidates"]} == {"mode: finale (enter)", "mode: finale (exit)"}

    runtime.store.set("controls.wash", 0.5)
    runtime.show.estop(by="plinth.estop")
    await clock.advance(0.1)
    picture = inspect(runtime)
    wash = entry(picture, "wash", "brightness")
    assert wash["driver"]["detail"] == "controls.wash = 0.5 → 127.5 (input [0, 1], output [0, 255])"
    boat = entry(picture, "boat", "speed")
    assert (boat["driver"]["kind"], boat["driver"]["name"]) == ("safe", "e-stop")
    assert boat["driver"]["detail"] == "e-stop latched by plinth.estop: motion stopped"
    json.dumps(picture, allow_nan=False)
    await runtime.stop()


def test_small_keeps_values_small_and_json_able():
    assert small(float("inf")) is None and small(0.25) == 0.25 and small(True) is True
    assert small("x" * 500) == "x" * 119 + "…"
    assert small([1, 2.5, "a"]) == [1, 2.5, "a"]
    assert small(list(range(100))) == {"count": 100}
    assert small({"a": 1}) == {"a": 1}
    assert small(SimpleNamespace(id=4, landmarks=[[0.0] * 3] * 33)) == {"type": "SimpleNamespace", "id": 4}
