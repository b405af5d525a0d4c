"""Backup takeover on a real Mosquitto, with real processes: a primary and a backup run the same exhibit file; the
primary is SIGKILLed and the backup drives the devices within ``takeover_after`` + 1 s; the primary started again
joins as backup; a primary cut off from the broker (process alive) stops its output when it hears the backup's
higher epoch. An outside MQTT 5 client on the device topics checks that no two nodes' commands ever interleave."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiomqtt

from tests.support.controller_process import ControllerProcess
from tests.support.mqtt_gear import Listener
from tests.support.site_peers import DeviceWatch, NodeInfo, Partition

TAKEOVER_AFTER = 2.0
EXHIBIT = """\
format_version: 1
id: twin-room
title: {en: Twin room, zh: 双机展厅}
mqtt: {broker: embedded, prefix: exhibit}

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}

timelines:
  breath:
    loop: true
    tracks:
      wash.brightness: [[0, 20], [1, 220, ease-in-out], [2, 20, ease-in-out]]

states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{timeline: breath}]
"""


def node(path: Path, broker: str, name: str, role: str) -> ControllerProcess:
    args = ["run", str(path), "--broker", broker, "--no-render", "--no-reload", "--no-console"]
    args += ["--node", name, "--role", role, "--takeover-after", str(TAKEOVER_AFTER)]
    args += ["--state-dir", str(path.parent / f"state-{name}")]
    return ControllerProcess(args, path.parent / f"{name}-{role}.log")


async def test_the_backup_takes_over_from_a_killed_primary_which_comes_back_as_backup(mosquitto, tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT)
    processes: list[ControllerProcess] = []
    async with DeviceWatch(mosquitto.port, "twin-room") as devices, NodeInfo(mosquitto.port) as nodes:
        try:
            processes.append(primary := node(path, mosquitto.url, "alpha", "primary"))
            await nodes.wait_for("alpha", driving=True, mode="running")
            processes.append(node(path, mosquitto.url, "bravo", "backup"))
            await nodes.wait_for("bravo", mode="tracking")
            await devices.wait_for(lambda: len(devices.heard) > 50)  # alpha breathes the wash
            assert devices.nodes_after(0) == {"alpha"}
            for process in processes:  # one client id each: nodes that shared one would throw each other off
                assert "reconnected to the MQTT broker" not in process.output(), process.output()[-2000:]

            killed = asyncio.get_running_loop().time()
            killed_at = primary.kill()
            await devices.wait_for(lambda: devices.first_from("bravo") is not None, timeout=TAKEOVER_AFTER + 5)
            first = devices.first_from("bravo")
            assert first is not None and first.epoch == 2
            assert first.at - killed_at <= TAKEOVER_AFTER + 1.0, f"took {first.at - killed_at:.2f} s"
            await nodes.wait_for("bravo", driving=True, epoch=2)

            processes.append(again := node(path, mosquitto.url, "alpha", "primary"))  # as systemd restarts it
            info = await nodes.wait_for("alpha", mode="tracking")
            assert info["epoch"] == 2 and info["driving"] is False
            back = asyncio.get_running_loop().time()
            await asyncio.sleep(TAKEOVER_AFTER + 1)  # a primary that re-claimed would be heard by now
            assert devices.nodes_after(first.at) == {"bravo"}, "the primary took the devices back"
            assert devices.interleaving() == []
            assert devices.unnamed == [], devices.unnamed[:3]
            assert back > killed

            # The backup dies: its node says so, the exhibit (driven by bravo) stays online.
            async with Listener(mosquitto.port, "exhibit/twin-room/status") as status:
                await status.wait_for("exhibit/twin-room/status", "online")
                again.kill()
                for _ in range(100):
                    if nodes.status.get("alpha") == "offline":
                        break
                    await asyncio.sleep(0.05)
                assert nodes.status.get("alpha") == "offline"
                await asyncio.sleep(0.5)
                assert status.payloads("exhibit/twin-room/status")[-1] == "online", status.heard
        except BaseException:
            for process in processes:
                print(process.output()[-4000:])
            raise
        finally:
            for process in processes:
                process.close()


async def test_a_primary_cut_off_from_the_broker_stops_its_output_on_the_backups_higher_epoch(
    mosquitto, tmp_path: Path
):
    path = tmp_path / "exhibit.yaml"
    path.write_text(EXHIBIT)
    processes: list[ControllerProcess] = []
    async with (
        Partition(mosquitto.port) as partition,
        DeviceWatch(mosquitto.port, "twin-room") as devices,
        NodeInfo(mosquitto.port) as nodes,
    ):
        try:
            processes.append(primary := node(path, partition.url, "alpha", "primary"))
            await nodes.wait_for("alpha", driving=True)
            processes.append(node(path, mosquitto.url, "bravo", "backup"))
            await nodes.wait_for("bravo", mode="tracking")
            await devices.wait_for(lambda: len(devices.heard) > 50)

            partition.cut()
            await devices.wait_for(lambda: devices.first_from("bravo") is not None, timeout=TAKEOVER_AFTER + 15)
            assert primary.alive()  # cut off, not dead: it still believes it drives
            partition.heal()
            info = await nodes.wait_for("alpha", mode="tracking", timeout=30)
            assert info["epoch"] == 2
            await asyncio.sleep(2.0)
            first = devices.first_from("bravo")
            assert first is not None
            assert devices.nodes_after(first.at) == {"bravo"}, "the cut-off primary sent commands after the takeover"
            assert devices.interleaving() == []
            assert "output stopped" in primary.output()
        except BaseException:
            for process in processes:
                print(process.output()[-4000:])
            raise
        finally:
            for process in processes:
                process.close()


FOLLOWED = """\
format_version: 1
id: twin-stage
title: {en: Twin stage, zh: 双机舞台}
mqtt: {broker: embedded, prefix: exhibit}

devices:
  wash:
    kind: mqtt
    properties:
      brightness: {type: int, range: [0, 255], safe: 0}

variables:
  visits: 0

cues:
  evening:
    cues:
      - {id: "1", name: A slow dusk, actions: [{set: wash.brightness, value: 250}], fade: 8s}
      - {id: "2", name: Night, actions: [{set: wash.brightness, value: 10}]}
"""


async def test_the_backup_follows_the_primarys_cues_and_variables_and_carries_the_fade_on(mosquitto, tmp_path: Path):
    path = tmp_path / "exhibit.yaml"
    path.write_text(FOLLOWED)
    processes: list[ControllerProcess] = []

    async def command(command: str, **params: object) -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=f"operator-{command}") as client:
            await client.publish(f"exhibit/twin-stage/control/{command}", json.dumps(params), qos=1)

    async with (
        DeviceWatch(mosquitto.port, "twin-stage") as devices,
        NodeInfo(mosquitto.port) as nodes,
        Listener(mosquitto.port, "exhibit/twin-stage/show/#") as show,
    ):
        try:
            processes.append(primary := node(path, mosquitto.url, "alpha", "primary"))
            await nodes.wait_for("alpha", driving=True)
            processes.append(node(path, mosquitto.url, "bravo", "backup"))
            await nodes.wait_for("bravo", mode="tracking")
            await command("var", name="visits", value=41)
            await command("go", cue_list="evening")

            def level() -> int:
                values = [json.loads(c.payload).get("brightness") for c in devices.heard if "/set" in c.topic]
                return next((v for v in reversed(values) if v is not None), 0)

            await devices.wait_for(lambda: 60 < level() < 200)  # the dusk is half way
            await asyncio.sleep(0.5)  # the backup hears the show (it is sent every 0.1 s)
            killed_at = primary.kill()
            at_kill = level()
            await devices.wait_for(lambda: devices.first_from("bravo") is not None, timeout=TAKEOVER_AFTER + 5)
            first = devices.first_from("bravo")
            assert first is not None
            carried = json.loads(first.payload).get("brightness")
            assert carried is not None and carried >= at_kill - 5, (carried, at_kill)  # on from where it was, not dark
            await devices.wait_for(lambda: level() == 250, timeout=15)  # and on to the cue's end
            standby = await _latest(show, "exhibit/twin-stage/show/cuelist/evening", killed_at)
            assert standby["standby"] == "2" and standby["last"] == "1", standby
            visits = await _latest(show, "exhibit/twin-stage/show/var/visits", killed_at)
            assert visits["value"] == 41
            assert devices.interleaving() == []
        except BaseException:
            for process in processes:
                print(process.output()[-4000:])
            raise
        finally:
            for process in processes:
                process.close()


async def _latest(heard: Listener, topic: str, since: float, timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        found = [h for h in heard.heard if h.topic == topic and h.at > since]
        if found:
            return json.loads(found[-1].payload)["data"]
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing on {topic} after the takeover")
