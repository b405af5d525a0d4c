"""An e-stop pressed on each kind of input while a motor turns under a timeline, on a real
``launcher.py run`` process over a real Mosquitto, seen from outside:

- serial: an Arduino on a pty (restarting when the controller opens its port) whose JSON lines'
  ``estop`` field goes true, as the flagship's plinth button does;
- OSC: real UDP datagrams (``/plinth/estop f 1``), as a tablet's button sends them;
- MQTT: a publish on the input topic, as the building's safety relay (a Shelly) does.

The README: the press latches the e-stop, every motion device stops (its safe state) and takes no
motion command until a deliberate reset; lights and other devices are not affected. The button is
released again while the test watches: the latch holds, and the state machine's attempts to re-arm
and move the motor (every 2 s) are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from tests.support.controller_process import (
    MOTOR_SAFE,
    ControllerProcess,
    TimedGear,
    became_safe,
    is_motor_safe,
    new_motion,
    wait_for_health,
)
from tests.support.net import free_port
from tests.support.serial_board import Arduino, json_sketch

PROMPT = 0.4
"""The motor's safe state arrives this soon after the press, whatever the input (it takes 0.05 to 0.1 s)."""

EXHIBIT = """\
# yaml-language-server: $schema=../exhibit.schema.json
format_version: 1
id: estop-drill
title: {{en: E-stop drill, zh: 急停演练}}
mqtt: {{broker: embedded, prefix: exhibit}}     # the test gives --broker (a real Mosquitto)

sensors:
{sensor}
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
  voyage:
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
        transitions: [{{to: encore, after: 2s}}]
      encore:               # tries to re-arm and move the boat again: refused while the e-stop is latched
        enter: [{{arm: boat}}, {{set: boat.enabled, value: true}}, {{timeline: voyage}}]
        transitions: [{{to: voyage, after: 2s}}]
  house:
    initial: lit
    states:
      lit:                  # the house lights come up slowly, once
        enter: [{{set: wash.brightness, value: 255, fade: 10s}}]

safety:
  armed_at_start: [boat]
  estop: [{estop}]
"""

SERIAL = """\
  plinth:                   # Arduino on USB: {{"button": false, "estop": false}} lines
    kind: serial
    port: {port}
    baud: 115200
    format: json
    signals:
      button: {{field: button, type: bool}}
      estop: {{field: estop, type: bool}}
"""

OSC = """\
  plinth:                   # the e-stop on a tablet, over OSC
    kind: osc
    host: 127.0.0.1
    port: {port}
    signals:
      estop: {{address: /plinth/estop, type: bool}}
"""

MQTT = """\
  venue:                    # the building's safety relay reports over MQTT (a Shelly input)
    kind: mqtt
    inputs:
      estop: {topic: venue/safety/estop, field: input, type: bool}
"""

Press = Callable[[bool], Awaitable[None]]
"""Press (True) or release (False) the e-stop button."""


@dataclass
class Rig:
    controller: ControllerProcess
    wash: TimedGear
    lanterns: TimedGear
    boat: TimedGear


@contextlib.asynccontextmanager
async def serial_button(tmp_path: Path, mosquitto: Any) -> AsyncIterator[tuple[str, Press]]:
    values: dict[str, Any] = {"button": False, "estop": False}
    board = Arduino(tmp_path / "plinth", json_sketch(values))

    async def press(down: bool) -> None:
        values["estop"] = down  # the sketch's next line (50 a second) says so

    try:
        yield SERIAL.format(port=board.link), press
    finally:
        board.close()


@contextlib.asynccontextmanager
async def osc_button(tmp_path: Path, mosquitto: Any) -> AsyncIterator[tuple[str, Press]]:
    port = free_port(socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as panel:

        async def press(down: bool) -> None:
            message = OscMessageBuilder("/plinth/estop")
            message.add_arg(1.0 if down else 0.0, "f")  # a TouchOSC button: 1.0 pressed, 0.0 released
            panel.sendto(message.build().dgram, ("127.0.0.1", port))

        yield OSC.format(port=port), press


@contextlib.asynccontextmanager
async def mqtt_button(tmp_path: Path, mosquitto: Any) -> AsyncIterator[tuple[str, Press]]:
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="safety-relay") as relay:

        async def press(down: bool) -> None:
            await relay.publish("venue/safety/estop", json.dumps({"input": down}), qos=1)

        yield MQTT, press


BUTTONS = {"serial": (serial_button, "plinth"), "osc": (osc_button, "plinth"), "mqtt": (mqtt_button, "venue")}


@contextlib.asynccontextmanager
async def estop_drill(mosquitto: Any, tmp_path: Path, sensor: str, input_name: str) -> AsyncIterator[Rig]:
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT.format(sensor=sensor, estop=f"{input_name}.estop"))

    def gear(name: str, safe: dict[str, Any]) -> TimedGear:
        return TimedGear(
            mosquitto.port, f"gear/{name}", command_topic=f"exhibit/estop-drill/devices/{name}/set", safe=safe
        )

    async with (
        gear("wash", {"brightness": 0}) as wash,
        gear("lanterns", {"brightness": 0}) as lanterns,
        gear("boat", MOTOR_SAFE) as boat,
    ):
        controller = ControllerProcess.run(path, mosquitto.url)
        try:
            await wait_for_health(mosquitto.port, "estop-drill", input_name)  # a board past its bootloader
            await boat.moving(lambda s: s.get("enabled") is True and float(s.get("speed", 0)) > 5)
            await wash.moving(lambda s: 20 < s.get("brightness", 0) < 150)
            assert controller.alive(), controller.output()
            yield Rig(controller, wash, lanterns, boat)
        except BaseException:
            print(controller.output())
            raise
        finally:
            controller.close()


@pytest.mark.parametrize("kind", list(BUTTONS))
async def test_an_estop_from_each_input_stops_the_turning_motor_and_latches_and_lights_go_on(
    kind: str, mosquitto, tmp_path
):
    button, input_name = BUTTONS[kind]
    async with (
        button(tmp_path, mosquitto) as (sensor, press),
        estop_drill(mosquitto, tmp_path, sensor, input_name) as rig,
    ):
        boat, wash, lanterns = rig.boat, rig.wash, rig.lanterns
        pressed = time.monotonic()
        await press(True)
        await asyncio.sleep(1.0)
        await press(False)  # released: the latch holds until a deliberate reset
        await asyncio.sleep(3.0)  # the machine re-enters its states: re-arming and moving are refused
        # The motor: stopped and disabled at once, then no motion command reaches it while latched.
        stopped = became_safe(boat, pressed)
        assert stopped is not None, boat.since(pressed)
        assert stopped - pressed <= PROMPT, f"the motor stopped {stopped - pressed:.2f} s after the e-stop"
        assert new_motion(boat, stopped) == []  # motion steps sent before the press took effect may come first
        assert all(is_motor_safe(c) for _, c in boat.since(stopped)), boat.since(stopped)
        assert boat.state.get("speed") == 0 and boat.state.get("enabled") is False

        # The lights are not affected: the wash fades on up, the lanterns breathe on with the timeline.
        at_press = [c["brightness"] for at, c in wash.timed if at < pressed][-1]
        later = [c["brightness"] for _, c in wash.since(stopped)]
        assert later == sorted(later) and later[-1] > at_press + 60, (at_press, later)
        breathing = [c["brightness"] for _, c in lanterns.since(stopped + 1.0)]
        assert len(breathing) > 20 and max(breathing) - min(breathing) > 40, breathing

        output = rig.controller.output()
        assert "E-STOP: motion is inhibited until a deliberate reset" in output, output
        assert "arming boat refused: the e-stop is latched" in output, output
        assert rig.controller.alive(), output
