"""A backup node of a show network sends nothing to the lights: its DMX frames and OSC messages are held back
while another node drives the devices, and flow the moment it takes over (real UDP sockets)."""

from __future__ import annotations

import socket

from devices.dmx import DmxUniverses, UniverseKey
from devices.osc_out import OscOutConfig, OscOutDevice
from engine.authority import Authority, Claim
from engine.clock import VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore


def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.3)
    return sock


def received(sock: socket.socket) -> list[bytes]:
    packets = []
    try:
        while True:
            packets.append(sock.recv(2048))
    except TimeoutError:
        return packets


def tracking() -> Authority:
    authority = Authority("bravo", "backup")
    authority.synced(0.0)
    authority.heard(Claim(1, "alpha"), 0.0)
    return authority


def test_dmx_frames_wait_for_the_takeover():
    authority = tracking()
    resources = Resources()
    resources.put(authority)
    with listener() as sock:
        address = sock.getsockname()
        sink = DmxUniverses.shared(resources).make_sink(UniverseKey("artnet", 0, address))
        assert sink.send(b"frame while tracking")
        assert received(sock) == []
        authority.take_over(5.0, "test")
        assert sink.send(b"frame once driving")
        assert received(sock) == [b"frame once driving"]


def test_osc_messages_wait_for_the_takeover():
    authority = tracking()
    resources = Resources()
    resources.put(authority)
    with listener() as sock:
        config = OscOutConfig.model_validate(
            {"kind": "osc", "port": sock.getsockname()[1], "properties": {"level": {"address": "/level"}}}
        )
        device = OscOutDevice("peer", config, DriverContext("t", SignalStore(), VirtualClock(), resources))
        device.set({"level": 0.5})
        assert received(sock) == [] and device.held == 1
        authority.take_over(5.0, "test")
        device.set({"level": 0.75})
        packets = received(sock)
        assert len(packets) == 1 and packets[0].startswith(b"/level")
