"""Device expiry: gear that supports it falls back to its safe state by itself when the controller dies.

Over a real Mosquitto, with the fixture simulated as a separate MQTT client (tests/mqtt_gear.py)
whose firmware honours the ``expiry`` our commands carry."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from devices.mqtt.device import MqttDeviceConfig, with_expiry
from tests.devices.test_mqtt import TOPICS, make_device, make_link
from tests.support.mqtt_gear import MqttGear

EXPIRY = 0.6


def wash_config(**extra: object) -> MqttDeviceConfig:
    return MqttDeviceConfig.model_validate(
        {"kind": "mqtt", "properties": {"level": {"safe": 0.0, "range": [0, 1]}}, **extra}
    )


async def test_gear_stays_lit_while_the_controller_lives_and_falls_back_when_it_dies(mosquitto, running):
    config = wash_config(expiry=f"{EXPIRY}s")
    link = make_link(mosquitto.port)
    device = make_device(link, "wash", config)
    topic = TOPICS.device("wash", "set")
    async with MqttGear(mosquitto.port, "gear/wash", command_topic=topic, safe={"level": 0.0}) as gear:
        controller = [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        running.extend(controller)
        await asyncio.wait_for(link.connected.wait(), 10)
        await asyncio.sleep(0.2)  # the start-up safe state goes first
        device.set({"level": 0.8})
        await gear.wait_until(lambda: gear.state.get("level") == 0.8)
        assert all(c.get("expiry") == EXPIRY for c in gear.commands)
        await asyncio.sleep(EXPIRY * 4)  # four expiry periods without a new value: refreshed, never expired
        assert gear.expired == 0 and gear.state["level"] == 0.8
        for task in controller:  # the controller dies: no clean stop, no safe state sent
            task.cancel()
        await asyncio.gather(*controller, return_exceptions=True)
        await gear.wait_until(lambda: gear.expired == 1, timeout=EXPIRY * 3)
        assert gear.state["level"] == 0.0


async def test_without_expiry_commands_carry_no_timer(mosquitto, running):
    link = make_link(mosquitto.port)
    device = make_device(link, "wash", wash_config())
    topic = TOPICS.device("wash", "set")
    async with MqttGear(mosquitto.port, "gear/wash2", command_topic=topic, safe={"level": 0.0}) as gear:
        running.extend([asyncio.create_task(link.run()), asyncio.create_task(device.run())])
        device.set({"level": 0.5})
        await gear.wait_until(lambda: gear.state.get("level") == 0.5)
        assert not any("expiry" in c for c in gear.commands)


def test_presets_carry_the_gears_own_fall_back_timer():
    z2m = with_expiry([("zigbee2mqtt/wash/set", b'{"state": "ON", "brightness": 200}')], "zigbee2mqtt", 9.5, "x")
    assert json.loads(z2m[0][1]) == {"state": "ON", "brightness": 200, "on_time": 10}
    off = with_expiry([("zigbee2mqtt/wash/set", b'{"state": "OFF"}')], "zigbee2mqtt", 9.5, "x")
    assert json.loads(off[0][1]) == {"state": "OFF"}  # off is already safe: no timer
    shelly = with_expiry([("shellies/s/light/0/set", b'{"turn": "on", "brightness": 50}')], "shelly", 30, "s")
    assert json.loads(shelly[0][1])["timer"] == 30
    tasmota = with_expiry([("cmnd/t/Dimmer", b"50"), ("cmnd/t/POWER", b"ON")], "tasmota", 20, "t")
    assert tasmota[0] == ("cmnd/t/PulseTime", "120")  # Tasmota: 100 + seconds
    assert with_expiry([("cmnd/t/Color", b"FF0000")], "tasmota", 20, "t") == [("cmnd/t/Color", b"FF0000")]


def test_expiry_is_refused_for_gear_that_cannot_fall_back():
    with pytest.raises(ValidationError, match="cannot fall back on its own"):
        MqttDeviceConfig.model_validate(
            {"kind": "mqtt", "expiry": "5s", "profile": {"profile": "rgb", "payload": "wled"}}
        )
    ok = MqttDeviceConfig.model_validate(
        {"kind": "mqtt", "expiry": "5s", "profile": {"profile": "dimmer", "payload": "zigbee2mqtt"}}
    )
    assert ok.expiry == 5.0
    with pytest.raises(ValidationError, match=r"Shelly relay's MQTT command .* carries no timer"):
        MqttDeviceConfig.model_validate(
            {
                "kind": "mqtt",
                "expiry": "5s",
                "profile": {"profile": "relay", "payload": "shelly"},
            }
        )
    lights = MqttDeviceConfig.model_validate(
        {"kind": "mqtt", "expiry": "5s", "profile": {"profile": "dimmer", "payload": "shelly"}}
    )
    assert lights.expiry == 5.0  # a Shelly light's JSON command carries `timer`
