"""Nothing waits at start: the real launcher, with every peer of the exhibit absent (the MQTT broker, the
serial board, the camera, the Art-Net node and the OSC peer), says "started" and serves its console at
once; then the peers appear one by one and each joins by itself, its health turning ok on the exhibit's
retained health topics as it does.

The peers appear only after the "started" line: a driver that waited for its peer at start would never
say it, and the test fails on the start bound. The camera appears last, as a USB camera does when it is
plugged in: its by-id path appears, pointing at a named pipe that streams a picture of a visitor at the
camera's pace, without end. No test machine has a V4L2 device, so the one step not taken is V4L2's own
open (a camera path that is no device node is read by OpenCV's default reader); the absent camera, its
retries, the opening, the reader thread, the model and the signals are the exhibit's own. The pose sensor
sees the visitor, and its count reaches an MQTT device.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage

from devices.osc_out import OscOutConfig, OscOutDevice
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from tests.conftest import start_mosquitto
from tests.support.controller_process import ControllerProcess
from tests.support.frames import one_visitor
from tests.support.net import free_port, port_accepts
from tests.support.peers import PipeCamera, TopicWatch, UdpPeer, until
from tests.support.serial_board import UNO, Arduino, json_sketch

START_BOUND = 20.0
"""Seconds from launch to "started" on a slow 2-core machine (about 1.5 s is usual). The peers appear only
after it, so a driver that waits for its peer never gets there."""
JOIN_BOUND = 20.0
"""Seconds for a peer that appeared to be joined: the retry back-off is capped at 5 s, a board boots in 1 s."""
CAMERA_JOIN_BOUND = 30.0
"""Seconds for the camera that appeared to be seen through: the back-off (at most 5 s), then the pose model
loads (a few seconds on a slow machine) before the sensor says ok and the first visitor is counted."""
STARTED = re.compile(r"exhibit nowait started: 2 sensors, 4 devices")
CONSOLE = re.compile(r"Console / 控制台: (https?://[^/\s]+/)")
ARTNET_HEADER = b"Art-Net\x00"
ARTNET_DATA = 18
"""Offset of the first DMX slot in an ArtDmx packet."""

EXHIBIT = """\
format_version: 1
id: nowait
title: {{en: Nothing waits at start}}
control: {{osc: {{port: 0}}}}
sensors:
  plinth:
    kind: serial
    port: {serial}
    format: json
    signals:
      knob: {{field: knob, type: float}}
  body:
    kind: pose
    source: {{camera: {camera}}}
devices:
  par:
    kind: dmx
    protocol: artnet
    destination: 127.0.0.1
    port: {dmx_port}
    universe: 0
    address: 1
    profile: dimmer
  qlab:
    kind: osc
    port: {osc_port}
    properties:
      level: {{address: /level, type: float, range: [0, 1], safe: 0}}
  lamp:
    kind: mqtt
    properties:
      level: {{type: float, range: [0, 1], safe: 0}}
  screen:
    kind: mqtt
    properties:
      visitors: {{type: float, range: [0, 4], safe: 0}}
mappings:
  - {{from: plinth.knob, to: par.level, input: [0, 1]}}
  - {{from: plinth.knob, to: qlab.level, input: [0, 1]}}
  - {{from: plinth.knob, to: lamp.level, input: [0, 1]}}
  - {{from: body.count, to: screen.visitors, input: [0, 4]}}
"""


def health(watch: TopicWatch, component: str) -> dict[str, object]:
    return watch.json(f"exhibit/nowait/health/{component}")


def dmx_levels(peer: UdpPeer) -> list[int]:
    """Channel 1 of every ArtDmx packet the node received."""
    return [packet[ARTNET_DATA] for packet in peer.datagrams if packet.startswith(ARTNET_HEADER)]


def osc_levels(peer: UdpPeer) -> list[float]:
    return [float(OscMessage(packet).params[0]) for packet in peer.datagrams if packet.startswith(b"/level")]


async def test_the_exhibit_starts_with_every_peer_absent_and_each_joins_when_it_appears(tmp_path: Path) -> None:
    broker_port = free_port()
    dmx_port, osc_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    serial = tmp_path / "by-id" / UNO  # made by the simulated board when it is plugged in
    camera = tmp_path / "v4l" / "by-id" / "usb-camera-video-index0"  # made when the camera is plugged in
    exhibit = tmp_path / "nowait" / "exhibit.yaml"
    exhibit.parent.mkdir()
    exhibit.write_text(EXHIBIT.format(serial=serial, camera=camera, dmx_port=dmx_port, osc_port=osc_port))

    launched = time.monotonic()
    controller = ControllerProcess.run(exhibit, f"mqtt://127.0.0.1:{broker_port}", "--headless", "--console-port", "0")
    board: Arduino | None = None
    webcam: PipeCamera | None = None
    broker = None
    try:
        # 1. Nothing there: the exhibit starts at once and serves its console.
        await until(
            "the exhibit says it started",
            lambda: STARTED.search(controller.output()) is not None or not controller.alive(),
            START_BOUND,
            controller.output,
        )
        assert controller.alive(), controller.output()
        started_after = time.monotonic() - launched
        output = controller.output()
        console = CONSOLE.search(output)
        assert console is not None, output
        assert output.index("Console / ") < output.index("exhibit nowait started")
        assert port_accepts(int(console.group(1).rsplit(":", 1)[1].rstrip("/")))
        await until(
            "each absent peer is said once",
            lambda: all(
                said in controller.output()
                for said in (
                    "waiting for the MQTT broker at mqtt://127.0.0.1:",
                    f"board plinth: no serial port at {serial}; the exhibit goes on without it",
                    f"pose sensor body: no camera at '{camera}'; the exhibit goes on without it",
                )
            ),
            JOIN_BOUND,
            controller.output,
        )
        print(f"started {started_after:.2f} s after launch")

        # 2. The broker appears: the exhibit connects, says it is online, and publishes its health.
        broker = start_mosquitto(tmp_path, broker_port)
        async with TopicWatch(broker_port, "exhibit/nowait/#", "start-without-peers-watch") as watch:
            took = await until(
                "the exhibit is online on the broker that appeared",
                lambda: watch.text("exhibit/nowait/status") == "online" and health(watch, "mqtt").get("status") == "ok",
                JOIN_BOUND,
                lambda: watch.latest,
            )
            print(f"broker joined {took:.2f} s after it appeared")
            await until(
                "the health of the absent peers",
                lambda: bool(health(watch, "plinth")) and bool(health(watch, "body")),
                JOIN_BOUND,
                lambda: watch.latest,
            )
            plinth, body = health(watch, "plinth"), health(watch, "body")
            assert plinth["status"] == "offline" and f"no serial port at {serial}" in str(plinth["reason"]), plinth
            assert body["status"] == "offline" and f"no camera at '{camera}'" in str(body["reason"]), body
            summary = watch.json("exhibit/nowait/health")
            assert summary["status"] == "offline", summary

            # 3. The board is plugged in: the sensor opens it, its health turns ok, its values reach MQTT.
            values = {"knob": 0.25}
            board = Arduino(tmp_path, json_sketch(values))
            assert board.link == serial
            took = await until(
                "the board joins and its value reaches the MQTT lamp",
                lambda: (
                    health(watch, "plinth").get("status") == "ok"
                    and watch.json("exhibit/nowait/devices/lamp/set").get("level") == 0.25
                ),
                JOIN_BOUND,
                lambda: (health(watch, "plinth"), watch.latest.get("exhibit/nowait/devices/lamp/set")),
            )
            print(f"serial board joined {took:.2f} s after it appeared")

            # 4. The Art-Net node appears: it receives the universe, with the board's level in it.
            node = await UdpPeer.listen(dmx_port)
            try:
                took = await until(
                    "the Art-Net node receives the level",
                    lambda: 64 in dmx_levels(node),
                    JOIN_BOUND,
                    lambda: dmx_levels(node)[-5:],
                )
                print(f"Art-Net node received the level {took:.2f} s after it appeared")
                assert health(watch, "par").get("status") == "ok", health(watch, "par")

                # 5. The OSC peer appears: the next change reaches it, and the lamp and the node too.
                peer = await UdpPeer.listen(osc_port)
                try:
                    values["knob"] = 0.75
                    took = await until(
                        "the OSC peer, the lamp and the node get the new level",
                        lambda: (
                            0.75 in osc_levels(peer)
                            and 191 in dmx_levels(node)
                            and watch.json("exhibit/nowait/devices/lamp/set").get("level") == 0.75
                        ),
                        JOIN_BOUND,
                        lambda: (
                            osc_levels(peer),
                            dmx_levels(node)[-3:],
                            watch.latest.get("exhibit/nowait/devices/lamp/set"),
                        ),
                    )
                    print(f"OSC peer received the new level {took:.2f} s after the change")
                    assert health(watch, "qlab").get("status") == "ok", health(watch, "qlab")
                finally:
                    peer.close()
            finally:
                node.close()

            # Everything but the camera is there: only the pose sensor is still offline, retried in the background.
            summary = watch.json("exhibit/nowait/health")
            components = summary["components"]
            assert (
                components.pop("broker")["reason"] == "not used in this run"
            )  # the embedded one: `--broker` names another
            assert {name: entry["status"] for name, entry in components.items() if entry["status"] != "ok"} == {
                "body": "offline"
            }, components

            # 6. The camera is plugged in: the sensor opens it, its health turns ok, the visitor it sees is counted.
            webcam = PipeCamera(camera, one_visitor()).plug()
            took = await until(
                "the camera joins and the visitor it sees reaches the MQTT screen",
                lambda: (
                    health(watch, "body").get("status") == "ok"
                    and watch.json("exhibit/nowait/devices/screen/set").get("visitors") == 1
                ),
                CAMERA_JOIN_BOUND,
                lambda: (health(watch, "body"), watch.latest.get("exhibit/nowait/devices/screen/set"), webcam.readers),
            )
            print(f"camera joined and counted the visitor {took:.2f} s after it appeared")
            assert webcam.frames_sent > 0 and f"pose sensor body: camera {camera} is back" in controller.output()

            # Every peer is there: every component is ok (but the embedded broker, which this run does not use).
            await until(
                "the summary says every peer joined",
                lambda: watch.json("exhibit/nowait/health").get("status") == "ok",
                JOIN_BOUND,
                lambda: watch.json("exhibit/nowait/health"),
            )
            components = watch.json("exhibit/nowait/health")["components"]
            assert components.pop("broker")["reason"] == "not used in this run"
            assert {"plinth", "body", "par", "qlab", "lamp", "screen"} <= set(components), components
            assert all(entry["status"] == "ok" for entry in components.values()), components
        assert controller.alive(), controller.output()
        assert "Traceback" not in controller.output()
    finally:
        controller.close()
        if board is not None:
            board.close()
        if webcam is not None:
            webcam.close()
        if broker is not None:
            broker.stop()


async def test_an_osc_peer_named_by_a_host_name_is_looked_up_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer named `qlab.venue` on a network whose name server is away: the lookup fails, then hangs
    (a name server that does not answer takes 5 s a try); meanwhile the loop never waits, the latest value
    waits, and it goes out once the name is found. Sent to a name, each datagram looked the name up on
    the event loop and stopped the whole exhibit for as long."""
    port = free_port(socket.SOCK_DGRAM)
    answer = threading.Event()
    lookups: list[str] = []
    real_lookup = socket.getaddrinfo

    def venue_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "qlab.venue":
            return real_lookup(host, *args, **kwargs)
        lookups.append(host)
        if len(lookups) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if not answer.wait(10):
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_lookup("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", venue_lookup)
    config = OscOutConfig.model_validate(
        {"kind": "osc", "host": "qlab.venue", "port": port, "properties": {"level": {"address": "/level", "safe": 0}}}
    )
    device = OscOutDevice("qlab", config, DriverContext("t", SignalStore(), MonotonicClock(), Resources()))
    peer = await UdpPeer.listen(port)
    running = asyncio.create_task(device.run())
    try:
        await until(
            "the first lookup fails", lambda: "not found" in device.health.reason, 5, lambda: device.health.reason
        )
        assert device.health.status == "offline"
        assert "OSC peer qlab.venue not found: " in device.health.reason
        await until("the lookup is tried again", lambda: len(lookups) == 2, 5, lambda: lookups)
        before = time.monotonic()
        device.set({"level": 0.25})
        device.set({"level": 0.5})
        await asyncio.sleep(0.3)  # the loop runs while the lookup hangs
        assert time.monotonic() - before < 1.0
        assert peer.datagrams == [] and device.health.status == "offline"
        answer.set()
        await until(
            "the waiting value reaches the peer", lambda: osc_levels(peer) == [0.5], 5, lambda: osc_levels(peer)
        )
        assert device.health.status == "ok" and device.address == ("127.0.0.1", port)
        device.set({"level": 0.75})
        await until("the next value follows", lambda: osc_levels(peer) == [0.5, 0.75], 5, lambda: osc_levels(peer))
    finally:
        answer.set()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        peer.close()
