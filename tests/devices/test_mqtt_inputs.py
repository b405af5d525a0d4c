"""MQTT inputs (`kind: mqtt` sensors) against a real Mosquitto, an outside aiomqtt client publishing:
non-finite numbers are bad input, and the health figures count every message that arrives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiomqtt

from devices.mqtt.inputs import MqttSensor, MqttSensorConfig
from devices.mqtt.link import MqttLink, Topics
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from engine.supervisor import Backoff

INPUTS = {
    "level": {"topic": "venue/level", "type": "float"},
    "count": {"topic": "venue/count", "type": "int"},
    "dimmer": {"topic": "venue/shelly", "type": "float", "field": "v"},
    "contact": {"topic": "venue/contact", "type": "bool", "field": "v"},
}


@contextlib.asynccontextmanager
async def mqtt_input(port: int) -> AsyncIterator[tuple[MqttSensor, SignalStore]]:
    """An MQTT input on its own link to the broker, running (health figures included) until the end."""
    clock = MonotonicClock()
    store = SignalStore(clock)
    config = MqttSensorConfig.model_validate({"kind": "mqtt", "inputs": INPUTS})
    for name, type_ in config.signal_types().items():
        store.declare(f"venue.{name}", type_)
    topics = Topics("exhibit", "inputs")
    link = MqttLink(
        "127.0.0.1", port, client_id="exhibit-inputs", topics=topics, backoff=Backoff(initial=0.05, cap=0.2)
    )
    resources = Resources()
    resources.put(link)
    resources.put(topics)
    sensor = MqttSensor("venue", config, DriverContext("inputs", store, clock, resources))
    tasks = [asyncio.create_task(link.run()), asyncio.create_task(sensor.run())]
    try:
        await asyncio.wait_for(link.connected.wait(), 10)  # subscribed before it says connected
        yield sensor, store
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_non_finite_numbers_are_counted_and_dropped(mosquitto):
    bad = {
        "venue/level": [b"inf", b"-inf", b"nan", b"Infinity", b"NaN"],
        "venue/count": [b"inf", b"-inf", b"nan", b"1e999"],
        "venue/shelly": [b'{"v": Infinity}', b'{"v": -Infinity}', b'{"v": NaN}'],
        "venue/contact": [b'{"v": Infinity}', b'{"v": NaN}'],
    }
    sent = sum(len(payloads) for payloads in bad.values())
    async with (
        mqtt_input(mosquitto.port) as (sensor, store),
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="venue-panel") as panel,
    ):
        good = {
            "venue/level": b"0.25",
            "venue/count": b"3",
            "venue/shelly": b'{"v": 0.5}',
            "venue/contact": b'{"v": 1}',
        }
        for topic, payload in good.items():
            await panel.publish(topic, payload, qos=1)
        await wait_until(lambda: sensor.health_signals.received == len(good))
        before = {name: store.get(f"venue.{name}").value for name in INPUTS}
        assert before == {"level": 0.25, "count": 3, "dimmer": 0.5, "contact": True}
        for topic, payloads in bad.items():
            for payload in payloads:
                await panel.publish(topic, payload, qos=1)
        await wait_until(lambda: sensor.health_signals.error_count == sent)
        await asyncio.sleep(0.1)  # nothing else arrives
        assert {name: store.get(f"venue.{name}").value for name in INPUTS} == before
        assert sensor.health_signals.errors == {"nonfinite": sent}
        assert sensor.health_signals.received == len(good)
        sensor.health_signals.publish()
        assert store.get("venue.health.errors").value == sent


async def test_rate_and_age_count_every_message_even_when_the_value_never_changes(mosquitto):
    async with (
        mqtt_input(mosquitto.port) as (_, store),
        aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="venue-panel") as panel,
    ):
        start, sent = time.monotonic(), 0
        while time.monotonic() - start < 2.6:  # the figures of the last whole second, published once a second
            await panel.publish("venue/level", b"0.5", qos=0)
            sent += 1
            await asyncio.sleep(max(0.0, start + sent / 50 - time.monotonic()))
        rate, age = store.get("venue.health.rate").value, store.get("venue.health.age").value
        assert store.get("venue.level").value == 0.5
    assert 40 <= rate <= 60, rate
    assert 0 <= age < 0.1, age
