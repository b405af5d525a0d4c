"""OSC out to software peers, received by liblo's real `oscdump`."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from devices.osc_out import OscOutConfig, OscOutDevice
from engine.clock import VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from tests.conftest import free_port, require_tool

QLAB = {
    "kind": "osc",
    "port": 0,
    "properties": {
        "go_cue": {"address": "/cue/{value}/start", "args": [], "type": "int", "safe": None},
        "opacity": {"address": "/composition/layers/1/video/opacity", "range": [0, 1], "safe": 0.0},
        "title": {"address": "/title", "args": ["text", "{value}"], "type": "str"},
        "blackout": {"address": "/blackout", "type": "bool", "safe": True},
    },
}


def test_messages_reach_a_real_oscdump():
    oscdump = require_tool("oscdump")
    port = free_port(socket.SOCK_DGRAM)
    dump = subprocess.Popen([oscdump, "-L", str(port)], stdout=subprocess.PIPE, text=True, bufsize=1)
    assert dump.stdout is not None
    output = dump.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(output.readline, "")), daemon=True)
    reader.start()
    try:
        time.sleep(0.3)  # oscdump binds its port
        config = OscOutConfig.model_validate({**QLAB, "port": port})
        device = OscOutDevice("peer", config, DriverContext("t", SignalStore(), VirtualClock(), Resources()))
        device.set({"go_cue": 12, "opacity": 1.7, "title": "运河", "blackout": False})
        deadline = time.monotonic() + 5
        while len(lines) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dump.terminate()
        dump.wait(5)
    received = [line.split(" ", 1)[1].strip() for line in lines]  # oscdump puts a time tag first
    assert any(r.startswith("/cue/12/start") for r in received), lines
    assert any(r.startswith("/composition/layers/1/video/opacity f 1") for r in received), lines
    assert any(r.startswith("/title ss") and "运河" in r for r in received), lines
    assert any(r.startswith("/blackout F") for r in received), lines


def test_a_property_must_use_its_value():
    with pytest.raises(ValueError, match="put `\\{value\\}`"):
        OscOutConfig.model_validate({"kind": "osc", "port": 1, "properties": {"x": {"address": "/x", "args": [1]}}})


def test_safe_state_skips_properties_without_one():
    config = OscOutConfig.model_validate({**QLAB, "port": 1})
    assert config.safe_state() == {"opacity": 0.0, "blackout": True}
