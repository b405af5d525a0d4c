"""Wake-on-LAN: the magic packets as a UDP socket on loopback receives them; MAC addresses checked."""

from __future__ import annotations

import asyncio
import socket

import pytest
from pydantic import ValidationError

from devices.wake_on_lan import SimulatedWakeOnLan, WakeOnLanConfig, WakeOnLanDevice, magic_packet
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore

MAC = "3C-52-82-1A-2B-3C"
EXPECTED = bytes.fromhex("ffffffffffff") + bytes.fromhex("3c52821a2b3c") * 16


def context() -> DriverContext:
    return DriverContext("t", SignalStore(), MonotonicClock(), Resources())


async def test_a_udp_socket_receives_exactly_the_magic_packet_three_times() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(10.0)
        port = receiver.getsockname()[1]
        config = WakeOnLanConfig.model_validate(
            {"kind": "wake_on_lan", "mac": MAC, "broadcast": "127.0.0.1", "port": port}
        )
        device = WakeOnLanDevice("pc", config, context())
        device.set({"wake": False})  # re-arms only: nothing goes
        device.set({"wake": True})
        received = []
        for _ in range(3):
            received.append(await asyncio.to_thread(receiver.recv, 1024))
        assert received == [EXPECTED] * 3
        assert len(EXPECTED) == 102
        receiver.settimeout(0.3)
        with pytest.raises(TimeoutError):
            receiver.recv(1024)  # `wake: false` sent nothing
        assert device.context.store.get("pc.health.sent").value == 3
        assert device.context.store.get("pc.health.last_wake").value > 0
        assert await device.go_safe(1.0) is True


@pytest.mark.parametrize(
    ("written", "normal"),
    [("3c:52:82:1a:2b:3c", "3c:52:82:1a:2b:3c"), (MAC, "3c:52:82:1a:2b:3c"), ("3c52.821a.2b3c", "3c:52:82:1a:2b:3c")],
)
def test_mac_forms_are_accepted_and_made_one(written: str, normal: str) -> None:
    config = WakeOnLanConfig.model_validate({"kind": "wake_on_lan", "mac": written})
    assert config.mac == normal
    assert magic_packet(config.mac) == EXPECTED


@pytest.mark.parametrize("mac", ["3c:52:82:1a:2b", "3c:52:82:1a:2b:3g", "3c:52-82:1a:2b:3c", "hello", ""])
def test_a_malformed_mac_is_refused_with_a_clear_message(mac: str) -> None:
    with pytest.raises(ValidationError, match="is not a MAC address: write six pairs of hex digits"):
        WakeOnLanConfig.model_validate({"kind": "wake_on_lan", "mac": mac})


async def test_the_check_says_whether_it_is_awake() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = WakeOnLanConfig.model_validate(
        {"kind": "wake_on_lan", "mac": MAC, "check": {"host": "127.0.0.1", "port": port, "interval": 0.05}}
    )
    device = WakeOnLanDevice("pc", config, context())
    task = asyncio.create_task(device.run())
    try:
        for _ in range(500):
            if device.health.status == "ok":
                break
            await asyncio.sleep(0.02)
        assert device.context.store.get("pc.health.awake").value is True
        server.close()
        await server.wait_closed()
        for _ in range(500):
            if device.health.status == "offline":
                break
            await asyncio.sleep(0.02)
        assert device.context.store.get("pc.health.awake").value is False
        assert "未唤醒" in device.health.reason and f"127.0.0.1:{port}" in device.health.reason
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_the_simulated_computer_records_packets_and_plays_disconnect() -> None:
    config = WakeOnLanConfig.model_validate({"kind": "wake_on_lan", "mac": MAC})
    device = SimulatedWakeOnLan("pc", config, context())
    device.set({"wake": True})  # no loop: all three at once
    assert device.packets == [EXPECTED] * 3
    device.inject("disconnect")
    device.set({"wake": True})
    assert device.health.status == "offline" and "唤醒包未发出" in device.health.reason
    with pytest.raises(ValueError, match="plays disconnect, clear"):
        device.inject("stall")
