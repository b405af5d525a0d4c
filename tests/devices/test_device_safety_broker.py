"""Device safety end to end over a real Mosquitto, each fixture a separate MQTT client (tests/mqtt_gear.py):
PANIC in the middle of fades brings every fixture to its safe state; an e-stop pressed on an MQTT
input latches, blocks a motion command sent after it, and its reset resumes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt

from devices.mqtt.link import MqttLink, Topics
from engine.runtime import Runtime, RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.mqtt_gear import MqttGear

FIXTURES = [f"lamp{i}" for i in range(1, 9)]
RGB_SAFE: dict[str, object] = {"level": 0.0, "red": 0, "green": 0, "blue": 0}

PANIC_EXHIBIT = "\n".join(
    [
        "format_version: 1",
        "id: safety",
        "title: {en: PANIC during fades}",
        "devices:",
        *(f"  {name}: {{kind: mqtt, profile: {{profile: rgb}}}}" for name in FIXTURES),
        "cues:",
        "  show:",
        "    cues:",
        "      - id: '1'",
        "        fade: 6s",
        "        actions:",
        *(f"          - {{set: {name}.level, value: 1}}" for name in FIXTURES),
        *(f"          - {{set: {name}.red, value: 255}}" for name in FIXTURES),
        "safety: {panic_time: 0.5s}",
    ]
)

ESTOP_EXHIBIT = """\
format_version: 1
id: estop
title: {en: E-stop over MQTT}
sensors:
  panel:
    kind: mqtt
    inputs:
      estop: {topic: venue/panel/estop}
devices:
  boat:
    kind: mqtt
    profile: {profile: motor, soft_limits: [0, 360], max_speed: 20, max_accel: 1000}
cues:
  sail:
    cues:
      - id: '1'
        actions: [{arm: boat}, {set: boat.enabled, value: true}, {set: boat.speed, value: 5}]
      - id: '2'
        pre_wait: 1s
        actions: [{set: boat.speed, value: 12}]
        follow: auto-follow
      - id: '3'
        actions: [{set: boat.speed, value: 15}]
safety:
  estop: [panel.estop]
"""


@contextlib.asynccontextmanager
async def running(
    text: str, port: int, tmp_path: Path, gear_safe: dict[str, dict[str, object]]
) -> AsyncIterator[tuple[Runtime, dict[str, MqttGear]]]:
    """The fixtures join the network first, as in a venue; then the controller starts."""
    registry = build_registry()
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    topics = Topics(exhibit.mqtt.prefix, exhibit.id)
    async with contextlib.AsyncExitStack() as stack:
        gears = {
            name: await stack.enter_async_context(
                MqttGear(port, f"gear/{name}", command_topic=topics.device(name, "set"), safe=safe)
            )
            for name, safe in gear_safe.items()
        }
        runtime = assemble(exhibit, registry, RuntimeOptions(base_dir=tmp_path, broker=f"mqtt://127.0.0.1:{port}"))
        await runtime.start()
        try:
            await asyncio.wait_for(runtime.resources.get(MqttLink).connected.wait(), 10)
            yield runtime, gears
        finally:
            await runtime.stop()


def is_safe(gear: MqttGear) -> bool:
    return all(gear.state.get(k) == v for k, v in RGB_SAFE.items())


def part_way_up(gear: MqttGear) -> bool:
    return 0.1 < float(gear.state.get("level", 0)) < 0.9


async def test_panic_in_the_middle_of_fades_reaches_every_fixtures_safe_state(mosquitto, tmp_path):
    async with running(PANIC_EXHIBIT, mosquitto.port, tmp_path, dict.fromkeys(FIXTURES, RGB_SAFE)) as (runtime, gears):
        show = runtime.show
        assert show is not None
        for gear in gears.values():  # the start-up safe state reached every fixture
            await gear.wait_until(functools.partial(is_safe, gear))
        assert show.go()
        # Well inside the 6 s fade: every fixture is part-way up.
        for gear in gears.values():
            await gear.wait_until(functools.partial(part_way_up, gear))
        await show.panic()
        for name, gear in gears.items():
            await gear.wait_until(functools.partial(is_safe, gear))
            heard = len(gear.commands)
            await asyncio.sleep(0.3)
            # Nothing after the safe state: the fade did not carry on behind PANIC.
            assert all(gear.state.get(k) == v for k, v in RGB_SAFE.items()), name
            assert all(float(c.get("level", 0)) == 0 for c in gear.commands[heard:]), name


async def test_mqtt_estop_latches_blocks_motion_after_it_and_reset_resumes_nothing(mosquitto, tmp_path):
    boat_safe: dict[str, object] = {"speed": 0.0, "enabled": False}
    async with (
        running(ESTOP_EXHIBIT, mosquitto.port, tmp_path, {"boat": boat_safe}) as (runtime, gears),
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="panel") as panel,
    ):
        boat = gears["boat"]
        show = runtime.show
        assert show is not None
        assert show.go()
        await boat.wait_until(lambda: boat.state.get("speed") == 5)
        await panel.publish("venue/panel/estop", b"not a word", qos=1)  # counted and dropped
        await panel.publish("venue/panel/estop", b"pressed", qos=1)
        await boat.wait_until(lambda: boat.state.get("speed") == 0 and boat.state.get("enabled") is False)
        assert runtime.store.get("safety.estop").value is True
        stopped = len(boat.commands)
        # Cue 2 follows by itself 1 s after cue 1, and an operator's motion command comes now: both held back.
        show.fades.set_now("boat", "speed", 18)
        await asyncio.sleep(1.5)
        assert boat.state.get("speed") == 0
        assert all(float(c.get("speed", 0)) == 0 for c in boat.commands[stopped:])
        await panel.publish("venue/panel/estop", b"released", qos=1)
        show.reset_estop()
        heard = len(boat.commands)
        await asyncio.sleep(1.5)  # a reset resumes no cue and re-arms nothing
        assert boat.commands[heard:] == []
        assert boat.state.get("speed") == 0
        assert runtime.store.get("panel.health.errors").value == 1
