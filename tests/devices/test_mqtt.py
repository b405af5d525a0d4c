"""The MQTT link and the generic MQTT device against real brokers (Mosquitto, and amqtt)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import aiomqtt
import pytest

from devices.mqtt.broker import EmbeddedBroker, port_is_free
from devices.mqtt.device import MqttDevice, MqttDeviceConfig, SimulatedGear
from devices.mqtt.link import MqttLink, Topics
from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from engine.supervisor import Backoff
from tests.conftest import free_port, start_mosquitto
from tests.support.mqtt_gear import Listener

TOPICS = Topics("exhibit", "demo")
WASH = MqttDeviceConfig.model_validate(
    {
        "kind": "mqtt",
        "properties": {
            "brightness": {"type": "int", "range": [0, 255], "safe": 0},
            "colour": {"type": "str", "safe": "#000000"},
        },
    }
)


def make_link(port: int, client_id: str = "exhibit-demo") -> MqttLink:
    return MqttLink(
        "127.0.0.1", port, client_id=client_id, topics=TOPICS, keepalive=5, backoff=Backoff(initial=0.05, cap=0.2)
    )


def make_device(link: MqttLink, name: str = "wash", config: MqttDeviceConfig = WASH) -> MqttDevice:
    resources = Resources()
    resources.put(link)
    resources.put(TOPICS)
    return MqttDevice(name, config, DriverContext("demo", SignalStore(), MonotonicClock(), resources))


class Watcher(Listener):
    """An outside aiomqtt client that records what it receives, as (topic, payload, retained)."""

    @property
    def messages(self) -> list[tuple[str, str, bool]]:
        return [(h.topic, h.payload, h.retained) for h in self.heard]


async def test_status_is_online_while_running_and_offline_after_close(mosquitto, running):
    link = make_link(mosquitto.port)
    running.append(asyncio.create_task(link.run()))
    await asyncio.wait_for(link.connected.wait(), 10)
    async with Watcher(mosquitto.port, TOPICS.status) as watcher:
        await watcher.wait_for(TOPICS.status, "online")
        await link.close(2.0)
        await watcher.wait_for(TOPICS.status, "offline")
    assert watcher.messages[0][2] is True  # retained, so a late subscriber learns it too


async def test_device_commands_and_retained_state(mosquitto, running):
    link = make_link(mosquitto.port)
    device = make_device(link)
    async with Watcher(mosquitto.port, "exhibit/demo/devices/#") as watcher:
        # Watch first: the start-up safe state is a command, not retained.
        running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        await asyncio.wait_for(link.connected.wait(), 10)
        await watcher.wait_for("exhibit/demo/devices/wash/set", '{"brightness": 0, "colour": "#000000"}')
        device.set({"brightness": 127.6})
        await watcher.wait_for("exhibit/demo/devices/wash/set", '{"brightness": 128}')
        device.set({"brightness": 999, "colour": "#ffaa00"})
        await watcher.wait_for("exhibit/demo/devices/wash/set", '{"brightness": 255, "colour": "#ffaa00"}')
        await watcher.wait_for("exhibit/demo/devices/wash/state", '{"brightness": 255, "colour": "#ffaa00"}')
    # A subscriber that arrives later gets the last state, retained.
    async with Watcher(mosquitto.port, "exhibit/demo/devices/wash/state") as late:
        await late.wait_for("exhibit/demo/devices/wash/state", '{"brightness": 255, "colour": "#ffaa00"}')
    assert late.messages[0][2] is True
    assert await device.go_safe(2.0)


async def test_a_device_with_its_own_command_topic(mosquitto, running):
    config = MqttDeviceConfig.model_validate(
        {
            "kind": "mqtt",
            "command_topic": "zigbee2mqtt/wash/set",
            "properties": {"brightness": {"type": "int", "range": [0, 254], "safe": 0}},
        }
    )
    link = make_link(mosquitto.port)
    device = make_device(link, config=config)
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    async with Watcher(mosquitto.port, "zigbee2mqtt/#") as watcher:
        await asyncio.wait_for(link.connected.wait(), 10)
        device.set({"brightness": 100})
        await watcher.wait_for("zigbee2mqtt/wash/set", '{"brightness": 100}')


async def test_an_absent_broker_is_waited_for_and_commands_are_coalesced(tmp_path, running, caplog):
    port = free_port()
    link = make_link(port)
    device = make_device(link)
    caplog.set_level(logging.INFO)
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    for value in range(0, 200, 10):
        device.set({"brightness": value})  # never blocks, whatever the broker does
    await asyncio.sleep(0.5)
    waiting = [r for r in caplog.records if "waiting for the MQTT broker" in r.getMessage()]
    assert len(waiting) == 1  # said once, not once per retry

    broker = start_mosquitto(tmp_path, port)
    try:
        async with Watcher(port, "exhibit/demo/devices/wash/state") as watcher:
            await asyncio.wait_for(link.connected.wait(), 10)
            # The start-up safe state goes first, on its own; the 20 values collapse into the latest of each property.
            await watcher.wait_for("exhibit/demo/devices/wash/state", '{"brightness": 190, "colour": "#000000"}')
        assert device.commands_sent == 2
    finally:
        broker.stop()


async def test_reconnects_after_a_broker_restart_and_republishes_state(tmp_path, running, caplog):
    broker = start_mosquitto(tmp_path)
    caplog.set_level(logging.INFO)
    link = make_link(broker.port)
    device = make_device(link)
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    await asyncio.wait_for(link.connected.wait(), 10)
    device.set({"brightness": 42})
    async with Watcher(broker.port, "exhibit/demo/devices/wash/state") as watcher:
        await watcher.wait_for("exhibit/demo/devices/wash/state", '{"brightness": 42, "colour": "#000000"}')

    broker.stop()  # mosquitto runs without persistence: its retained state is gone
    await asyncio.sleep(0.3)
    broker.start()
    try:
        deadline = time.monotonic() + 10
        while link.connections < 2:
            assert time.monotonic() < deadline, "did not reconnect"
            await asyncio.sleep(0.05)
        async with Watcher(broker.port, "exhibit/demo/devices/wash/state", TOPICS.status) as watcher:
            await watcher.wait_for("exhibit/demo/devices/wash/state", '{"brightness": 42, "colour": "#000000"}')
            await watcher.wait_for(TOPICS.status, "online")
        messages = [r.getMessage() for r in caplog.records]
        assert sum("lost the MQTT broker" in m for m in messages) == 1
        assert sum("reconnected to the MQTT broker" in m for m in messages) == 1
    finally:
        broker.stop()


async def test_retained_messages_for_topics_we_never_subscribed_to_are_ignored(running):
    """amqtt 0.12.1 sends a connecting client the retained messages of *other* clients'
    subscriptions. The raw client below shows the broker does it; our link must drop them."""
    embedded = EmbeddedBroker(port=free_port())
    embedded.start_thread()
    try:
        port = embedded.port
        async with aiomqtt.Client("127.0.0.1", port, identifier="other-app") as other:
            await other.subscribe("venue/#", qos=1)
            await other.publish("venue/house-lights/set", b'{"state": "OFF"}', qos=1, retain=True)
            await asyncio.sleep(0.2)

            async with aiomqtt.Client("127.0.0.1", port, identifier="raw-client") as raw:
                await raw.subscribe("exhibit/demo/devices/wash/availability", qos=1)
                leaked = []
                try:
                    async with asyncio.timeout(1.0):
                        async for message in raw.messages:
                            leaked.append(message.topic.value)
                except TimeoutError:
                    pass
            assert leaked == ["venue/house-lights/set"], "amqtt no longer shows the bug this test guards against"

            link = make_link(port)
            seen: list[str] = []
            arrived = asyncio.Event()

            def on_availability(message: aiomqtt.Message) -> None:
                seen.append(message.payload.decode())
                arrived.set()

            link.subscribe("exhibit/demo/devices/wash/availability", on_availability)
            running.append(asyncio.create_task(link.run()))
            await asyncio.wait_for(link.connected.wait(), 10)
            await other.publish("exhibit/demo/devices/wash/availability", b"online", qos=1)
            await asyncio.wait_for(arrived.wait(), 5)
            await asyncio.sleep(0.2)  # room for anything else the broker might send
            assert seen == ["online"]
            assert link.unsolicited >= 1
    finally:
        embedded.stop()


def test_a_port_whose_connections_the_server_closed_is_free_but_a_listening_one_is_not():
    """A connection closed first by the server side (a broker that stops with clients connected) stays in
    TIME-WAIT on the server's port for a minute; the embedded broker can listen there again at once."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio servers do
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)  # listening: taken
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the server side closes first...
            assert client.recv(1) == b""  # ...and the client follows
    with socket.socket() as plain, pytest.raises(OSError):  # the port is in TIME-WAIT
        plain.bind(("127.0.0.1", port))
    assert port_is_free("127.0.0.1", port)
    broker = EmbeddedBroker(port=port)
    broker.start_thread()
    try:
        assert broker.port == port
    finally:
        broker.stop()


async def test_simulated_gear_holds_commands_while_offline_and_goes_safe():
    clock = VirtualClock()
    gear = SimulatedGear("wash", WASH, DriverContext("demo", SignalStore(), clock, Resources()))
    task = asyncio.create_task(gear.run())
    await clock.advance(0.1)
    assert gear.state == {"brightness": 0, "colour": "#000000"}  # safe state first
    gear.inject("disconnect")
    gear.set({"brightness": 10})
    gear.set({"brightness": 20})
    await clock.advance(1.0)
    assert gear.state["brightness"] == 0
    assert not await gear.go_safe(1.0)
    gear.inject("slow")
    gear.set({"brightness": 30})
    await clock.advance(0.1)
    assert gear.state["brightness"] == 0
    await clock.advance(1.0)
    assert gear.state["brightness"] == 30
    gear.inject("clear")
    assert await gear.go_safe(1.0) and gear.state["brightness"] == 0
    task.cancel()


def test_device_payload_is_json_with_chinese_text_kept():
    config = MqttDeviceConfig.model_validate({"kind": "mqtt", "properties": {"label": {"type": "str", "safe": "关"}}})
    assert json.dumps(config.safe_state(), ensure_ascii=False) == '{"label": "关"}'


async def test_a_profile_device_speaks_its_gears_payload(mosquitto, running):
    config = MqttDeviceConfig.model_validate(
        {"kind": "mqtt", "command_topic": "wled/strip1", "profile": {"profile": "rgb", "payload": "wled"}}
    )
    link = make_link(mosquitto.port)
    device = make_device(link, "strip1", config)
    async with Watcher(mosquitto.port, "wled/#") as watcher:
        running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        await asyncio.wait_for(link.connected.wait(), 10)
        device.set({"level": 1.0, "color": "#ff8800"})
        deadline = time.monotonic() + 5

        def payloads() -> list[dict]:
            return [json.loads(p) for t, p, _ in watcher.messages if t == "wled/strip1/api"]

        while not any(p.get("bri") == 255 for p in payloads()):  # after the start-up safe state
            assert time.monotonic() < deadline, watcher.messages
            await asyncio.sleep(0.02)
        last = payloads()[-1]
        assert last["on"] is True and last["bri"] == 255
        assert last["seg"] == [{"col": [[255, 136, 0]]}]
    assert config.safe_state()["level"] == 0 and not config.is_motion()


def test_properties_or_a_profile_not_both():
    with pytest.raises(ValueError, match="exactly one of `properties`"):
        MqttDeviceConfig.model_validate(
            {"kind": "mqtt", "properties": {"x": {"safe": 0}}, "profile": {"profile": "dimmer"}}
        )
    motor = MqttDeviceConfig.model_validate(
        {"kind": "mqtt", "profile": {"profile": "motor", "soft_limits": [0, 360], "max_speed": 30, "max_accel": 10}}
    )
    assert motor.is_motion() and motor.max_rate() == 20


async def test_device_health_from_its_own_availability_topic_and_acknowledged_commands(mosquitto, running):
    config = MqttDeviceConfig.model_validate(
        {
            "kind": "mqtt",
            "command_topic": "zigbee2mqtt/wash/set",
            "status_topic": "zigbee2mqtt/wash/availability",
            "profile": {"profile": "dimmer", "payload": "zigbee2mqtt"},
        }
    )
    link = make_link(mosquitto.port)
    device = make_device(link, "wash", config)
    store = device.context.store
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    await asyncio.wait_for(link.connected.wait(), 10)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="z2m") as gear:
        await gear.publish("zigbee2mqtt/wash/availability", b'{"state": "online"}', qos=1, retain=True)
        deadline = time.monotonic() + 5
        while store.get("wash.health.online").value is not True:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await gear.publish("zigbee2mqtt/wash/availability", b'{"state": "offline"}', qos=1, retain=True)
        while store.get("wash.health.online").value is not False:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    device.set({"level": 0.5})
    while store.get("wash.health.commands").value != 2:  # the start-up safe state, then this one
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert store.get("wash.health.last_command").value > 0
