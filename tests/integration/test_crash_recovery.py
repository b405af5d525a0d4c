"""Crash recovery on a real Mosquitto: ``launcher.py run`` in its own process is SIGKILLed during a cue with the
e-stop latched, then started again as systemd would (same state folder). The e-stop is still latched, the cue
does not resume, every device gets its safe state; three crashes within five minutes give safe mode, said on
the exhibit's retained status topic, until an operator ends it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt

from tests.support.controller_process import ControllerProcess, TimedGear
from tests.support.mqtt_gear import Listener

EXHIBIT = """\
format_version: 1
id: crash-drill
title: {en: Crash drill, zh: 崩溃演练}
mqtt: {broker: embedded, prefix: exhibit}

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}
  boat:
    kind: mqtt
    profile: {profile: motor, soft_limits: [0, 360], max_speed: 20, max_accel: 10}

variables:
  shows: 0

cues:
  evening:
    cues:
      - id: "1"
        name: A slow dusk
        actions: [{set: wash.brightness, value: 250}, {var: shows, expr: "var.shows + 1"}]
        fade: 20s
      - {id: "2", name: Night, actions: [{set: wash.brightness, value: 10}]}
"""

ID = "crash-drill"
SHOW = f"exhibit/{ID}/show"


class Operator:
    """MQTT control, as a show operator's surface (Companion, TouchOSC) would use it."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def command(self, name: str, **params: Any) -> dict[str, Any]:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier=f"operator-{name.replace('/', '-')}") as client:
            await client.subscribe(f"exhibit/{ID}/control/reply", qos=1)
            await client.publish(f"exhibit/{ID}/control/{name}", json.dumps({**params, "id": 1}), qos=1)
            async with asyncio.timeout(10):
                async for message in client.messages:
                    reply = json.loads(bytes(message.payload))
                    if reply.get("command") == name:
                        return reply
        raise AssertionError("no reply")


def kept(state_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((state_dir / "show-state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


async def until(predicate: Any, timeout: float = 15.0) -> None:
    """Polls a file or a process, which have no event to wait on."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still not so after {timeout:g} s")


async def test_killed_during_a_cue_with_the_estop_latched_then_three_crashes_give_safe_mode(mosquitto, tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT)
    state_dir = tmp_path / "state"
    operator = Operator(mosquitto.port)

    def start() -> ControllerProcess:
        return ControllerProcess.run(path, mosquitto.url, "--state-dir", str(state_dir), "--no-console")

    wash_topic = f"exhibit/{ID}/devices/wash/set"
    async with (
        TimedGear(mosquitto.port, "gear/wash", command_topic=wash_topic) as wash,
        TimedGear(mosquitto.port, "gear/boat", command_topic=f"exhibit/{ID}/devices/boat/set") as boat,
        Listener(mosquitto.port, f"exhibit/{ID}/status", f"{SHOW}/#") as heard,
    ):
        controller = start()
        try:
            await heard.wait_for(f"exhibit/{ID}/status", "online", timeout=20)
            assert (await operator.command("go"))["status"] == "ok"
            await wash.wait_until(lambda: 0 < wash.state.get("brightness", 0) < 250)  # the cue's fade is under way
            assert (await operator.command("estop"))["status"] == "ok"
            await until(lambda: kept(state_dir).get("show", {}).get("estop") is True)
            assert kept(state_dir)["show"]["variables"] == {"shows": 1}
            killed = controller.kill()
            lit = wash.state["brightness"]
            assert 0 < lit < 250

            controller = start()  # as systemd's Restart=on-failure does
            await wash.wait_until(lambda: any(at > killed and c.get("brightness") == 0 for at, c in wash.timed))
            await boat.wait_until(lambda: any(at > killed and c.get("enabled") is False for at, c in boat.timed))
            await heard.wait_for(f"exhibit/{ID}/status", "online", timeout=20)
            safety = await _latest(heard, f"{SHOW}/safety", since=killed)
            assert safety["estop"] is True, safety
            await asyncio.sleep(2.0)  # the cue would have gone on fading up by now
            after = [c["brightness"] for at, c in wash.timed if at > killed and "brightness" in c]
            assert after and all(value == 0 for value in after), f"the cue resumed after the restart: {after}"
            cues = await _latest(heard, f"{SHOW}/cuelist/evening", since=killed)
            assert cues["standby"] == "2" and cues["last"] is None, cues  # the playhead is kept, nothing fired
            variable = await _latest(heard, f"{SHOW}/var/shows", since=killed)
            assert variable["value"] == 1
            assert kept(state_dir)["crashes"] and len(kept(state_dir)["crashes"]) == 1

            # Two more crashes within five minutes: the third start is in safe mode, and says so.
            for crash in (2, 3):
                await until(lambda c=controller: kept(state_dir).get("running") is True and c.alive())
                await until(lambda crash=crash: len(kept(state_dir).get("crashes", [])) == crash - 1)
                controller.kill()
                controller = start()
            await heard.wait_for(f"exhibit/{ID}/status", "safe-mode", timeout=20)
            assert kept(state_dir)["safe_mode"] is True
            assert (await operator.command("go"))["status"] == "error"  # no show logic in safe mode
            reply = await operator.command("safe-mode/leave")
            assert reply["status"] == "ok", reply
            await until(lambda: heard.payloads(f"exhibit/{ID}/status")[-1:] == ["online"], timeout=10)
            await until(lambda: kept(state_dir).get("safe_mode") is False, timeout=5)
            safety = await _latest(heard, f"{SHOW}/safety")
            assert safety["estop"] is True  # leaving safe mode releases nothing
        except BaseException:
            print(controller.output())
            raise
        finally:
            controller.close()


async def _latest(heard: Listener, topic: str, since: float = 0.0, timeout: float = 10.0) -> Any:
    """The data of the latest event protocol message on ``topic`` heard after ``since``."""
    async with asyncio.timeout(timeout):
        while True:
            found = [h for h in heard.heard if h.topic == topic and h.at > since]
            if found:
                return json.loads(found[-1].payload)["data"]
            await asyncio.sleep(0.05)


ATTRACT = """\
format_version: 1
id: lit-at-once
title: {en: Lit at once, zh: 即亮}
mqtt: {broker: embedded, prefix: exhibit}
devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{set: wash.brightness, value: 180}]
"""


async def test_a_restart_sends_the_safe_state_before_the_attract_state_lights_the_gear_again(mosquitto, tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(ATTRACT)
    start = ["--state-dir", str(tmp_path / "state"), "--no-console"]
    topic = "exhibit/lit-at-once/devices/wash/set"
    async with TimedGear(mosquitto.port, "gear/lit", command_topic=topic) as wash:
        controller = ControllerProcess.run(path, mosquitto.url, *start)
        try:
            await wash.wait_until(lambda: wash.state.get("brightness") == 180)
            killed = controller.kill()
            controller = ControllerProcess.run(path, mosquitto.url, *start)
            await wash.wait_until(lambda: any(at > killed and c.get("brightness") == 180 for at, c in wash.timed))
            after = [c["brightness"] for at, c in wash.timed if at > killed]
            assert after[0] == 0 and after[-1] == 180, after  # safe first, on its own, then the show
        except BaseException:
            print(controller.output())
            raise
        finally:
            controller.close()
