"""One health model: every sensor, device and service has the same signals and the same retained MQTT
topic, seen here by an outside client. Found: DMX and OSC out published no health at all, the pose
sensor kept its own on a different clock, and `Sensor.health` was written and read by nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import aiomqtt

from engine.runtime import RuntimeOptions, assemble
from engine.validate import validate_text
from launcher import build_registry
from tests.support.net import free_port

EXHIBIT = """\
format_version: 1
id: health
title: {{en: Health}}
mqtt: {{broker: embedded}}
sensors:
  panel:
    kind: osc
    host: 127.0.0.1
    port: {osc_port}
    oscquery: {{port: 0, advertise: false}}
    signals: {{fader: {{address: /fader, range: [0, 1]}}}}
  relay:
    kind: mqtt
    inputs: {{estop: {{topic: venue/estop, type: bool}}}}
devices:
  wash:
    kind: mqtt
    properties: {{level: {{type: int, range: [0, 255], safe: 0}}}}
  par:
    kind: dmx
    destination: 127.0.0.1
    universe: 7
    address: 1
    profile: dimmer
  qlab:
    kind: osc
    port: {qlab_port}
    properties: {{go: {{address: /go, safe: 0}}}}
rules:
  - when: panel.fader > 0.5
    do: [{{osc: /cue/1/start, port: {peer_port}}}]
scene:
  nodes: {{box: {{type: primitive, shape: box}}}}
  outputs: [{{kind: offscreen, size: [64, 36]}}]
  fps_cap: 10
"""

COMPONENTS = {
    "panel": "sensor",
    "relay": "sensor",
    "wash": "device",
    "par": "device",
    "qlab": "device",
    "broker": "service",
    "mqtt": "service",
    "oscquery": "service",
    "render": "service",
    "site": "service",
    "analytics_topics": "service",
    "mqtt_control": "service",
    "osc_control": "service",
    "oscquery_control": "service",
    "console": "service",
}


async def test_every_sensor_device_and_service_has_the_same_health_signals_and_topic(tmp_path: Path):
    registry = build_registry()
    text = EXHIBIT.format(
        osc_port=free_port(socket.SOCK_DGRAM), qlab_port=free_port(socket.SOCK_DGRAM), peer_port=53999
    )
    exhibit = validate_text(text, str(tmp_path / "exhibit.yaml"), registry)
    peer = "osc_127_0_0_1_53999"
    assert peer in exhibit.devices  # the `{osc:}` action's own OSC out device
    expected = COMPONENTS | {peer: "device"}
    options = RuntimeOptions(base_dir=tmp_path, embedded_port=0, render="offscreen", state_dir=tmp_path / "state")
    runtime = assemble(exhibit, registry, options)
    await runtime.start()
    try:
        broker = runtime.service("broker")
        port = broker.port  # type: ignore[union-attr]
        runtime.store.set("panel.fader", 1.0)  # the rule sends its OSC message through the peer device
        topics: dict[str, dict] = {}
        deadline = time.monotonic() + 60
        async with aiomqtt.Client("127.0.0.1", port, identifier="health-watch") as client:
            await client.subscribe("exhibit/health/health/#", qos=1)
            await client.subscribe("exhibit/health/health", qos=1)
            async with asyncio.timeout(deadline - time.monotonic()):
                async for message in client.messages:
                    topics[message.topic.value] = json.loads(bytes(message.payload))
                    summary = topics.get("exhibit/health/health", {}).get("components", {})
                    if all(summary.get(name, {}).get("status") == "ok" for name in expected):
                        break
    except TimeoutError:
        raise AssertionError(f"not every component became ok: {topics.get('exhibit/health/health')}") from None
    finally:
        await runtime.stop()

    summary = topics["exhibit/health/health"]
    assert summary["status"] == "ok"
    assert {name: entry["kind"] for name, entry in summary["components"].items()} == expected
    for name in expected:
        body = topics[f"exhibit/health/health/{name}"]
        assert body["status"] == "ok" and body["reason"] == "" and body["since"] > 1.7e9, (name, body)
        for short in ("status", "reason", "since"):
            assert f"{name}.health.{short}" in runtime.store, f"{name}.health.{short}"
        assert f"{name}.health.status" in runtime.catalogue
    assert topics["exhibit/health/health/render"]["state"] == "running"
    assert topics[f"exhibit/health/health/{peer}"]["sent"] >= 1
    # After the stop, each says it was stopped (services) or is in its last known state.
    assert runtime.store.get("mqtt.health.status").value == "offline"
    assert runtime.store.get("mqtt.health.reason").value == "stopped"


def test_simulators_share_one_set_of_fault_names():
    from typing import get_args

    from devices.dmx import SimulatedDmx
    from devices.mqtt.device import SimulatedGear
    from devices.osc_out import SimulatedOscOut
    from engine.drivers import Fault
    from sensors.osc.inputs import SimulatedOscSensor
    from sensors.pose.driver import SimulatedPoseSensor
    from sensors.serial_simulated import SimulatedSerialSensor

    assert set(get_args(Fault)) == {"disconnect", "stall", "garbage", "slow", "clear"}
    for simulator in (SimulatedDmx, SimulatedGear, SimulatedOscOut, SimulatedOscSensor, SimulatedPoseSensor):
        assert simulator.inject.__annotations__["fault"] in ("Fault", Fault), simulator
    assert SimulatedSerialSensor.inject.__annotations__["fault"] in ("Fault", Fault)
