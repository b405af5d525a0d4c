"""PANIC on a real process over a real Mosquitto, seen from outside: the controller runs in its own
process, a turntable (a motor, armed) turns under a looping timeline, the lanterns breathe with it and
the wash fades up; the operator presses PANIC through MQTT control (``exhibit/<id>/control/panic``, as
Companion or a desk would). Every fixture is a separate MQTT client (tests/support/mqtt_gear.py) that
notes when each command arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from tests.support.controller_process import (
    MOTOR_SAFE,
    ControllerProcess,
    TimedGear,
    became_safe,
    is_motor_safe,
    new_motion,
)

LATENCY = 0.25
"""Seconds for the press to reach the controller over the broker and its commands to come back (0.05 s
is usual): lights must be dark within ``panic_time`` plus this."""
PROMPT = 0.4
"""The motor's safe state arrives this soon after the press (as with an e-stop)."""

EXHIBIT = """\
# yaml-language-server: $schema=../exhibit.schema.json
format_version: 1
id: panic-drill
title: {{en: PANIC drill, zh: 紧急停止演练}}
mqtt: {{broker: embedded, prefix: exhibit}}     # the test gives --broker (a real Mosquitto)

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {{type: int, range: [0, 255], safe: 0}}
  lanterns:
    kind: mqtt
    properties:
      brightness: {{type: int, range: [0, 255], safe: 0}}
  boat:                     # the turntable carrying the paper boat
    kind: mqtt
    profile: {{profile: motor, soft_limits: [0, 360], max_speed: 20, max_accel: 10}}

timelines:
  voyage:                   # the boat turns faster and slower, the lanterns breathe with it
    loop: true
    tracks:
      boat.speed: [[0, 6], [2, 14, ease-in-out], [4, 6, ease-in-out]]
      lanterns.brightness: [[0, 40], [2, 200], [4, 40]]

states:
  mode:
    initial: voyage
    states:
      voyage:
        enter:
          - {{set: boat.enabled, value: true}}
          - {{timeline: voyage}}
          - {{set: wash.brightness, value: 255, fade: 8s}}
        transitions: [{{to: encore, after: 2.5s}}]
      encore:               # a machine still running after PANIC would play the voyage again
        enter: [{{arm: boat}}, {{set: boat.enabled, value: true}}, {{timeline: voyage}}]
        transitions: [{{to: voyage, after: 2.5s}}]

safety:
  armed_at_start: [boat]
  panic_time: {panic_time}s
"""


@dataclass
class Rig:
    controller: ControllerProcess
    wash: TimedGear
    lanterns: TimedGear
    boat: TimedGear
    console: aiomqtt.Client

    async def press_panic(self) -> float:
        pressed = time.monotonic()
        await self.console.publish("exhibit/panic-drill/control/panic", b"{}", qos=1)
        return pressed


@contextlib.asynccontextmanager
async def panic_drill(mosquitto: Any, tmp_path: Path, panic_time: float) -> AsyncIterator[Rig]:
    """The gear joins the network first, as in a venue; then the controller starts in its own process."""
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT.format(panic_time=panic_time))

    def gear(name: str, safe: dict[str, Any]) -> TimedGear:
        return TimedGear(
            mosquitto.port, f"gear/{name}", command_topic=f"exhibit/panic-drill/devices/{name}/set", safe=safe
        )

    async with (
        gear("wash", {"brightness": 0}) as wash,
        gear("lanterns", {"brightness": 0}) as lanterns,
        gear("boat", MOTOR_SAFE) as boat,
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="console") as console,
    ):
        controller = ControllerProcess.run(path, mosquitto.url, "--console-port", "0")
        rig = Rig(controller, wash, lanterns, boat, console)
        try:
            # Under way: the boat turns under the timeline, the wash is part-way through its fade.
            await boat.moving(lambda s: s.get("enabled") is True and float(s.get("speed", 0)) > 5)
            await wash.moving(lambda s: 20 < s.get("brightness", 0) < 200)
            assert controller.alive(), controller.output()
            yield rig
        except BaseException:
            print(controller.output())
            raise
        finally:
            controller.close()


async def test_panic_brings_the_armed_motor_and_the_fading_lights_to_safe_and_nothing_restarts(mosquitto, tmp_path):
    async with panic_drill(mosquitto, tmp_path, panic_time=1.0) as rig:
        boat, wash, lanterns = rig.boat, rig.wash, rig.lanterns
        pressed = await rig.press_panic()
        await asyncio.sleep(4.5)  # past the machine's 2.5 s `after` and a whole loop of the timeline
        output = rig.controller.output()
        assert "PANIC: every output goes to its safe state" in output, output
        assert rig.controller.alive(), output

        # The motor: its safe state arrives (at once: the next test holds it to that), then no new motion,
        # nor any command that is not its safe state, and it stays safe.
        stopped = became_safe(boat, pressed)
        assert stopped is not None, boat.since(pressed)
        assert stopped - pressed <= 1.0 + LATENCY, f"the motor stopped {stopped - pressed:.2f} s after PANIC"
        assert new_motion(boat, stopped) == []  # steps sent before PANIC took effect may come before it
        assert all(is_motor_safe(c) for _, c in boat.since(stopped)), boat.since(stopped)
        assert boat.state.get("speed") == 0 and boat.state.get("enabled") is False

        # The lights: dark within the PANIC time (1 s), from the middle of a fade and of a timeline.
        for light in (wash, lanterns):
            dark = light.first(lambda c: c.get("brightness") == 0, after=pressed)
            assert dark is not None, (light.root, light.since(pressed))
            assert dark - pressed <= 1.0 + LATENCY, f"{light.root} was dark {dark - pressed:.2f} s after PANIC"
            # Nothing lights it again: no fade carries on, the timeline and the machine do not restart.
            assert [c for _, c in light.since(dark) if c.get("brightness") != 0] == [], light.root
            assert light.state["brightness"] == 0
        # The wash went down from where its fade had reached, not up first.
        levels = [c["brightness"] for _, c in wash.since(stopped)]  # the motor's stop: when PANIC took effect
        assert levels == sorted(levels, reverse=True), levels


async def test_panic_stops_a_moving_motor_at_once_not_at_the_end_of_the_panic_fade(mosquitto, tmp_path):
    """Before commit 146c189, PANIC disarmed the motor, then faded every output to its safe state over
    `panic_time`: each step of the motor's fade down was a motion command to a disarmed device, blocked,
    so the motor ran on at its speed until the very end of the PANIC fade (3 s here). Now it stops at
    once, as with an e-stop, while the lights still fade."""
    async with panic_drill(mosquitto, tmp_path, panic_time=3.0) as rig:
        boat = rig.boat
        pressed = await rig.press_panic()
        await asyncio.sleep(3.5)
        stopped = became_safe(boat, pressed)
        assert stopped is not None, boat.since(pressed)
        speed = next((c["speed"] for at, c in reversed(boat.timed) if at < stopped and "speed" in c), None)
        assert stopped - pressed <= PROMPT, (
            f"the motor kept turning at {speed} for {stopped - pressed:.2f} s after PANIC"
        )
        assert new_motion(boat, stopped) == []
