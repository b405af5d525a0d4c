"""Backup takeover on a real Mosquitto, with real processes: a primary and a backup run the same exhibit file; the
primary is SIGKILLed and the backup drives the devices within ``takeover_after`` + 1 s; the primary started again
joins as backup; a primary cut off from the broker (process alive) stops its output when it hears the backup's
higher epoch. An outside MQTT 5 client on the device topics checks that no two nodes' commands ever interleave."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.controller_process import ControllerProcess
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

            killed = asyncio.get_running_loop().time()
            killed_at = primary.kill()
            await devices.wait_for(lambda: devices.first_from("bravo") is not None, timeout=TAKEOVER_AFTER + 5)
            first = devices.first_from("bravo")
            assert first is not None and first.epoch == 2
            assert first.at - killed_at <= TAKEOVER_AFTER + 1.0, f"took {first.at - killed_at:.2f} s"
            await nodes.wait_for("bravo", driving=True, epoch=2)

            processes.append(node(path, mosquitto.url, "alpha", "primary"))  # as systemd restarts it
            info = await nodes.wait_for("alpha", mode="tracking")
            assert info["epoch"] == 2 and info["driving"] is False
            back = asyncio.get_running_loop().time()
            await asyncio.sleep(TAKEOVER_AFTER + 1)  # a primary that re-claimed would be heard by now
            assert devices.nodes_after(first.at) == {"bravo"}, "the primary took the devices back"
            assert devices.interleaving() == []
            assert devices.unnamed == [], devices.unnamed[:3]
            assert back > killed
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
