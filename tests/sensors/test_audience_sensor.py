"""The audience sensor in the show's process (issue 19): the simulated crowd's faults, and a real audience server
that is killed and comes back by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from typing import Any

import pytest

from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.errors import UserError
from engine.signals import SignalStore
from sensors.audience.driver import AudienceSensor, SimulatedAudienceSensor
from sensors.audience.model import AudienceSensorConfig
from tests.support.net import free_port


def config(**options: Any) -> AudienceSensorConfig:
    offers = {"lantern": {"type": "tap"}, "season": {"type": "vote", "choices": {"a": {"zh": "甲", "en": "A"},
              "b": {"zh": "乙", "en": "B"}}}}  # fmt: skip
    return AudienceSensorConfig.model_validate({"kind": "audience", "offers": offers, **options})


def declared(cfg: AudienceSensorConfig) -> SignalStore:
    store = SignalStore()
    for name, kind in cfg.signal_types().items():
        store.declare(f"crowd.{name}", kind)
    return store


async def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_simulated_crowd_plays_disconnect_stall_and_clear():
    cfg = config(simulated_phones=30)
    store = declared(cfg)
    sensor = SimulatedAudienceSensor("crowd", cfg, DriverContext("t", store, MonotonicClock(), Resources()))
    running = asyncio.create_task(sensor.run())
    try:
        await until(lambda: (store.get("crowd.count").value or 0) >= 2)
        sensor.inject("disconnect")
        assert store.get("crowd.count").stale and sensor.health.status == "offline"
        sensor.inject("stall")
        assert sensor.health.status == "degraded"
        stamp = store.get("crowd.count").timestamp
        await asyncio.sleep(0.4)
        assert store.get("crowd.count").timestamp == stamp  # no frames while stalled
        sensor.inject("clear")
        await until(lambda: store.get("crowd.count").timestamp != stamp)
        assert sensor.health.status == "ok" and not store.get("crowd.count").stale
        with pytest.raises(ValueError, match="plays disconnect, stall, clear"):
            sensor.inject("garbage")
    finally:
        running.cancel()


async def test_a_killed_audience_server_is_started_again_and_keeps_what_the_show_set():
    cfg = config(host="127.0.0.1", port=free_port())
    store = declared(cfg)
    sensor = AudienceSensor("crowd", cfg, DriverContext("t", store, MonotonicClock(), Resources()))
    running = asyncio.create_task(sensor.run())
    try:
        await until(lambda: sensor.health.status == "ok" and store.get("crowd.count").timestamp is not None)
        sensor.set({"season.open": True})
        await until(lambda: store.get("crowd.season.voting").value is True)
        assert sensor.process is not None and sensor.process.pid is not None
        os.kill(sensor.process.pid, signal.SIGKILL)
        await until(lambda: sensor.health.status == "offline")
        assert store.get("crowd.count").stale
        await until(lambda: sensor.health.status == "ok", 30.0)
        await until(lambda: not store.get("crowd.count").stale)
        assert store.get("crowd.season.voting").value is True  # the vote the show opened is open again
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert sensor.process is None


async def test_a_port_another_program_holds_stops_the_start_in_one_sentence():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        cfg = config(host="127.0.0.1", port=other.getsockname()[1])
        sensor = AudienceSensor("crowd", cfg, DriverContext("t", declared(cfg), MonotonicClock(), Resources()))
        with pytest.raises(UserError, match=r"TCP port \d+ is already in use, so the audience page of `crowd`"):
            await sensor.open()
        await sensor.close()
