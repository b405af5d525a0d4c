"""What an MQTT device sends, and when, over a real Mosquitto: each payload preset's own fall-back
timer, the keep-alive that refreshes gear with an expiry only while nothing else goes out, nothing
after the clean stop, and what its health says while the broker is missing or the clean stop fails.
Also the OSC device's clean stop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from devices.mqtt.device import TIMER_SLACK, MqttDevice, MqttDeviceConfig, with_expiry
from devices.mqtt.link import MqttLink
from devices.osc_out import OscOutConfig, SimulatedOscOut
from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from tests.conftest import free_port, start_mosquitto
from tests.devices.test_mqtt import TOPICS, WASH, make_link
from tests.support.mqtt_gear import Listener, MqttGear


class EarlyClock(MonotonicClock):
    """Real time, whose sleeps end a little early, as timers do on some event loops (less than
    ``TIMER_SLACK``); it keeps the length of every sleep it was asked for."""

    EARLY = TIMER_SLACK * 0.75

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(max(0.0, seconds - self.EARLY))


def device_on(
    link: MqttLink, config: MqttDeviceConfig, name: str = "wash", clock: MonotonicClock | None = None
) -> MqttDevice:
    resources = Resources()
    resources.put(link)
    resources.put(TOPICS)
    return MqttDevice(name, config, DriverContext("demo", SignalStore(), clock or MonotonicClock(), resources))


def mqtt(**fields: object) -> MqttDeviceConfig:
    return MqttDeviceConfig.model_validate({"kind": "mqtt", **fields})


async def started(
    port: int, config: MqttDeviceConfig, running: list[asyncio.Task[None]], clock: MonotonicClock | None = None
) -> tuple[MqttLink, MqttDevice]:
    link = make_link(port)
    device = device_on(link, config, clock=clock)
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    await asyncio.wait_for(link.connected.wait(), 10)
    return link, device


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------ payloads on the wire


async def test_generic_commands_keep_chinese_text_as_it_is(mosquitto, running):
    config = mqtt(properties={"label": {"type": "str", "safe": "关"}})
    async with Listener(mosquitto.port, "exhibit/demo/devices/#") as heard:
        _, device = await started(mosquitto.port, config, running)
        await heard.wait_for("exhibit/demo/devices/wash/set", '{"label": "关"}', timeout=3)
        device.set({"label": "运河"})
        await heard.wait_for("exhibit/demo/devices/wash/set", '{"label": "运河"}', timeout=3)


async def test_a_json_profile_carries_the_expiry_in_seconds_with_its_text_kept(mosquitto, running):
    config = mqtt(expiry="0.6s", profile={"profile": "projector", "inputs": ["大厅", "hdmi1"]})
    async with Listener(mosquitto.port, "exhibit/demo/devices/proj/set") as heard:
        link = make_link(mosquitto.port)
        device = device_on(link, config, "proj")
        running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
        await heard.wait_for("exhibit/demo/devices/proj/set", '{"shutter": true, "expiry": 0.6}', timeout=3)
        device.set({"input": "大厅"})
        await heard.wait_for("exhibit/demo/devices/proj/set", '{"input": "大厅", "expiry": 0.6}', timeout=3)


async def test_zigbee2mqtt_gear_turned_on_gets_its_on_time(mosquitto, running):
    config = mqtt(
        expiry="9.5s", command_topic="zigbee2mqtt/wash", profile={"profile": "dimmer", "payload": "zigbee2mqtt"}
    )
    async with Listener(mosquitto.port, "zigbee2mqtt/#") as heard:
        _, device = await started(mosquitto.port, config, running)
        await heard.wait_for("zigbee2mqtt/wash/set", timeout=3)  # the start-up safe state: off
        device.set({"level": 0.5})
        deadline = time.monotonic() + 3
        while len(heard.payloads("zigbee2mqtt/wash/set")) < 2:
            assert time.monotonic() < deadline, heard.heard
            await asyncio.sleep(0.01)
    off, on = (json.loads(p) for p in heard.payloads("zigbee2mqtt/wash/set")[:2])
    assert off == {"state": "OFF"}  # off is already safe: no timer
    assert on == {"state": "ON", "brightness": 127, "on_time": 10}


async def test_tasmota_gear_gets_its_pulse_time_on_its_own_topic_twelve_seconds_at_least(mosquitto, running):
    config = mqtt(expiry="5s", command_topic="tasmota_spot", profile={"profile": "dimmer", "payload": "tasmota"})
    async with Listener(mosquitto.port, "cmnd/#") as heard:
        _, device = await started(mosquitto.port, config, running)
        await heard.wait_for("cmnd/tasmota_spot/POWER", "OFF", timeout=3)
        device.set({"level": 0.5})
        await heard.wait_for("cmnd/tasmota_spot/POWER", "ON", timeout=3)
    topics = [h.topic for h in heard.heard]
    # Every POWER goes with a PulseTime first: 100 + seconds, and Tasmota counts 12 s at least that way.
    pulse, power = "cmnd/tasmota_spot/PulseTime", "cmnd/tasmota_spot/POWER"
    assert topics == [pulse, power, pulse, "cmnd/tasmota_spot/Dimmer", power]
    assert heard.payloads("cmnd/tasmota_spot/PulseTime") == ["112", "112"]
    assert heard.payloads("cmnd/tasmota_spot/Dimmer") == ["50"]


def test_gear_that_counts_whole_seconds_gets_one_second_at_least():
    shelly = with_expiry([("shellies/s/light/0/set", b'{"turn": "on", "brightness": 50}')], "shelly", 0.4, "s")
    assert json.loads(shelly[0][1]) == {"turn": "on", "brightness": 50, "timer": 1}
    z2m = with_expiry([("zigbee2mqtt/w/set", b'{"state": "ON"}')], "zigbee2mqtt", 0.2, "zigbee2mqtt/w")
    assert json.loads(z2m[0][1]) == {"state": "ON", "on_time": 1}


def test_a_message_that_is_not_a_json_object_goes_out_unchanged_and_the_rest_still_get_the_timer():
    messages: list[tuple[str, str | bytes]] = [("gear/a", b"1"), ("gear/b", '{"turn": "on", "label": "灯"}'.encode())]
    out = with_expiry(messages, "shelly", 5, "s")
    assert out[0] == ("gear/a", b"1")
    assert out[1] == ("gear/b", '{"turn": "on", "label": "灯", "timer": 5}')


def test_an_unknown_property_is_refused_by_name():
    device = device_on(make_link(free_port()), WASH)
    with pytest.raises(ValueError, match=r"^`dimmer` is not a property of device wash$"):
        device.set({"dimmer": 1})


# ------------------------------------------------------------------------ keep-alive


async def test_gear_with_an_expiry_is_not_refreshed_while_commands_flow(mosquitto, running):
    """The refresh is for quiet times: while a value moves, its own commands keep the gear alive."""
    config = mqtt(
        expiry="0.9s",
        properties={"level": {"safe": 0.0, "range": [0, 1]}, "colour": {"type": "str", "safe": "#000000"}},
    )
    topic = TOPICS.device("wash", "set")
    async with MqttGear(mosquitto.port, "gear/flow", command_topic=topic) as gear:
        _, device = await started(mosquitto.port, config, running)
        await gear.wait_until(lambda: gear.state.get("colour") == "#000000")
        for step in range(1, 51):  # a 1 s fade at 50 Hz: three refresh periods
            device.set({"level": step / 100})
            await asyncio.sleep(0.02)
        await gear.wait_until(lambda: 0.5 in gear.values("level"))
    levels = [c.get("level") for c in gear.commands]
    during = gear.commands[levels.index(0.01) : levels.index(0.5) + 1]
    assert len(during) > 10
    # A refresh re-sends the whole state: the colour nobody changed would be in it.
    assert [c for c in during if "colour" in c] == []


async def test_a_quiet_device_refreshes_its_gear_every_third_of_the_expiry_even_if_timers_fire_early(
    mosquitto, running
):
    clock = EarlyClock()
    config = mqtt(expiry="0.3s", properties={"level": {"safe": 0.0, "range": [0, 1]}})
    topic = TOPICS.device("wash", "set")
    async with MqttGear(mosquitto.port, "gear/quiet", command_topic=topic, safe={"level": 0.0}) as gear:
        _, device = await started(mosquitto.port, config, running, clock)
        device.set({"level": 0.8})
        await gear.wait_until(lambda: gear.state.get("level") == 0.8)
        await asyncio.sleep(0.15)  # its confirmation too, if it went out as a step of a stream
        heard, ticks = len(gear.commands), len(clock.sleeps)
        await until(lambda: len(clock.sleeps) >= ticks + 8)
        await asyncio.sleep(0.03)  # the last refresh reaches the gear
        refreshes = gear.commands[heard:]
        assert len(refreshes) >= len(clock.sleeps) - ticks - 1  # one per period that ended, none skipped
        assert all(c == {"level": 0.8, "expiry": 0.3} for c in refreshes)
        assert gear.expired == 0
    assert clock.sleeps == pytest.approx([0.1] * len(clock.sleeps))


# ------------------------------------------------------------------------ health and the clean stop


async def test_a_device_waiting_for_its_broker_says_so(running):
    link = make_link(free_port())
    device = device_on(link, WASH)
    running.append(asyncio.create_task(device.run()))
    await asyncio.sleep(0.05)
    assert (device.health.status, device.health.reason) == ("offline", f"waiting for the MQTT broker at {link.address}")


async def test_nothing_is_sent_after_the_clean_stop(mosquitto, running):
    async with Listener(mosquitto.port, "exhibit/demo/devices/wash/set") as heard:
        _, device = await started(mosquitto.port, WASH, running)
        device.set({"brightness": 100})
        await heard.wait_for("exhibit/demo/devices/wash/set", '{"brightness": 100}', timeout=3)
        assert await device.go_safe(2.0)
        device.set({"brightness": 200})
        await asyncio.sleep(0.3)
    payloads = heard.payloads("exhibit/demo/devices/wash/set")
    assert json.loads(payloads[-1]) == {"brightness": 0, "colour": "#000000"}
    assert not any('"brightness": 200' in p for p in payloads)


async def test_the_clean_stop_without_a_broker_gives_up_in_time_and_says_why(running):
    link = make_link(free_port())
    device = device_on(link, WASH)
    running += [asyncio.create_task(link.run()), asyncio.create_task(device.run())]
    ok = await asyncio.wait_for(device.go_safe(0.2), 3)
    assert ok is False
    assert (device.health.status, device.health.reason) == (
        "offline",
        f"the MQTT broker at {link.address} was never reached",
    )


async def test_the_clean_stop_after_losing_the_broker_says_it_was_not_acknowledged(tmp_path, running):
    broker = start_mosquitto(tmp_path)
    try:
        link, device = await started(broker.port, WASH, running)
        await until(lambda: device.commands_sent == 1)  # the start-up safe state
    finally:
        broker.stop()
    await until(lambda: not link.connected.is_set())
    ok = await asyncio.wait_for(device.go_safe(0.2), 3)
    assert ok is False
    assert (device.health.status, device.health.reason) == (
        "offline",
        "the safe state was not acknowledged (no answer within 0.2 s)",
    )


async def test_the_osc_clean_stop_says_whether_the_safe_state_went_out():
    config = OscOutConfig.model_validate(
        {"kind": "osc", "port": 1, "properties": {"opacity": {"address": "/opacity", "safe": 0.0}}}
    )
    peer = SimulatedOscOut("peer", config, DriverContext("t", SignalStore(), VirtualClock(), Resources()))
    assert await peer.go_safe(1.0) is True
    assert len(peer.datagrams) == 1
    peer.inject("disconnect")
    assert await peer.go_safe(1.0) is False
    peer.inject("clear")
    assert await peer.go_safe(1.0) is True  # it went out now, whatever failed before
