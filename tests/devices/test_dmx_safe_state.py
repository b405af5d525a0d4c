"""DMX when the network refuses frames: what send_now and go_safe report, what the fixtures' health
says, and a safe state that cannot go out in time. On virtual time, with sinks that refuse."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from devices.dmx import DmxDevice, DmxDeviceConfig, DmxUniverses
from engine.clock import VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore


class RefusingSink:
    """A network that refuses every frame and says why, as UdpSink does."""

    def __init__(self, failing: str = "Network is unreachable") -> None:
        self.failing = failing
        self.packets: list[bytes] = []

    def send(self, packet: bytes) -> bool:
        self.packets.append(packet)
        return False

    def close(self) -> None:
        pass


class MuteSink:
    """A sink that refuses frames without a `failing` attribute: the reason falls back to "not sent"."""

    def send(self, packet: bytes) -> bool:
        return False

    def close(self) -> None:
        pass


class TakingSink:
    """A network that takes every frame."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def send(self, packet: bytes) -> bool:
        self.packets.append(packet)
        return True

    def close(self) -> None:
        pass


@pytest.fixture
def resources() -> Iterator[Resources]:
    shared = Resources()
    yield shared
    shared.get(DmxUniverses).close()


def fixture(resources: Resources, clock: VirtualClock, sink: Any, name: str = "wash") -> DmxDevice:
    """An RGB fixture on sACN universe 1 to 10.0.0.9, whose universe sends into ``sink``."""
    config = DmxDeviceConfig.model_validate(
        {"kind": "dmx", "universe": 1, "address": 1, "profile": "rgb", "destination": "10.0.0.9"}
    )
    device = DmxDevice(name, config, DriverContext("demo", SignalStore(), clock, resources))
    device.universe.sink = sink  # the UdpSink it made never opened a socket
    return device


async def safe(device: DmxDevice, clock: VirtualClock, timeout: float = 1.0) -> bool:
    """go_safe, with virtual time moving so its three frames can go out at the DMX rate."""
    going = asyncio.create_task(device.go_safe(timeout))
    await clock.advance(0.2)
    return await going


async def test_a_refused_frame_is_reported_and_the_health_says_why(resources):
    clock = VirtualClock()
    device = fixture(resources, clock, RefusingSink())
    assert await device.universe.send_now() is False
    assert device.universe.failing == "Network is unreachable"
    assert device.health.status == "offline"
    assert device.health.reason == "sacn universe 1 to 10.0.0.9:5568: Network is unreachable"
    assert device.universe.frames_sent == 0


async def test_a_refusal_without_a_reason_is_reported_as_not_sent(resources):
    clock = VirtualClock()
    device = fixture(resources, clock, MuteSink())
    device.health.set("ok")  # as if frames had flowed before
    assert await device.universe.send_now() is False
    assert device.universe.failing == "not sent"
    assert (device.health.status, device.health.reason) == ("offline", "sacn universe 1 to 10.0.0.9:5568: not sent")


async def test_health_follows_the_network_both_ways(resources):
    clock = VirtualClock()
    refusing = RefusingSink()
    device = fixture(resources, clock, TakingSink())
    other = DmxDevice("spot", device.config.model_copy(update={"address": 10}), device.context)
    assert other.universe is device.universe
    assert await device.universe.send_now() is True
    assert device.universe.failing is None
    assert device.health.status == other.health.status == "ok"
    device.universe.sink = refusing
    await clock.advance(0.1)
    assert await device.universe.send_now() is False
    assert device.health.status == other.health.status == "offline"  # every fixture on it shares it
    assert "Network is unreachable" in other.health.reason


async def test_frames_sent_counts_the_frames_the_network_took(resources):
    clock = VirtualClock()
    taking = TakingSink()
    device = fixture(resources, clock, taking)
    for _ in range(3):
        assert await device.universe.send_now()
        await clock.advance(0.1)
    assert device.universe.frames_sent == 3 == len(taking.packets)
    device.universe.sink = RefusingSink()
    assert not await device.universe.send_now()
    assert device.universe.frames_sent == 3


async def test_go_safe_fails_when_the_network_refuses_and_says_so(resources, caplog):
    clock = VirtualClock()
    refusing = RefusingSink()
    device = fixture(resources, clock, refusing)
    device.set({"red": 255})
    with caplog.at_level(logging.ERROR, logger="devices.dmx"):
        assert await safe(device, clock) is False
    assert len(refusing.packets) == 3  # it did try, three times
    errors = [r.getMessage() for r in caplog.records if r.name == "devices.dmx" and r.levelno == logging.ERROR]
    assert errors == ["device wash: the network refused the safe state"]


async def test_go_safe_succeeds_quietly_when_the_network_takes_it(resources, caplog):
    clock = VirtualClock()
    taking = TakingSink()
    device = fixture(resources, clock, taking)
    device.set({"red": 255})
    with caplog.at_level(logging.ERROR, logger="devices.dmx"):
        assert await safe(device, clock) is True
    assert len(taking.packets) == 3
    assert device.universe.buffer[:3] == bytes(3)
    assert not [r for r in caplog.records if r.name == "devices.dmx" and r.levelno >= logging.ERROR]


async def test_go_safe_fails_when_the_safe_state_cannot_go_out_in_time(resources):
    clock = VirtualClock()  # never advanced: the second frame waits for the DMX rate forever
    taking = TakingSink()
    device = fixture(resources, clock, taking)
    assert await device.go_safe(0.05) is False
    assert len(taking.packets) == 1
