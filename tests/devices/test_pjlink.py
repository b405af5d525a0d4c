"""PJLink projectors: the real driver against the PJLink simulator over TCP on loopback.

No protocol mock: the driver connects, is greeted, authenticates and asks as it would a projector.
Waits are on events and generous deadlines, never on a time a slow machine might miss."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from devices.pjlink import PjlinkConfig, PjlinkDevice, SimulatedPjlink, parse_reply
from devices.pjlink_simulator import PjlinkSimulator
from engine.clock import MonotonicClock
from engine.drivers import DriverContext, Resources
from engine.registry import DriverSpec
from engine.runtime import Runtime, RuntimeOptions
from engine.signals import SignalStore
from engine.validate import validate_text
from tests.support.net import free_port
from tests.support.show_harness import registry as show_registry

DEADLINE = 15.0


def make(port: int, tmp_path: Path | None = None, **extra: Any) -> PjlinkDevice:
    config = PjlinkConfig.model_validate(
        {"kind": "pjlink", "host": "127.0.0.1", "port": port, "poll": 0.05, "retry": 0.05, "timeout": 2, **extra}
    )
    context = DriverContext("t", SignalStore(), MonotonicClock(), Resources(), base_dir=tmp_path or Path.cwd())
    return PjlinkDevice("beamer", config, context)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(DEADLINE / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition(), what


@pytest.fixture
async def projector() -> AsyncIterator[PjlinkSimulator]:
    simulator = PjlinkSimulator(password="s3cret", warm_up=0.3, cool_down=0.3)
    await simulator.start()
    yield simulator
    await simulator.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[PjlinkDevice], None]]:
    tasks: list[asyncio.Task[None]] = []
    yield lambda device: tasks.append(asyncio.create_task(device.run()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def figure(device: PjlinkDevice, name: str) -> Any:
    return device.context.store.get(f"beamer.health.{name}").value


async def test_the_password_from_the_environment_opens_the_projector_and_power_on_goes_through_warm_up(
    projector: PjlinkSimulator, running: Callable[[PjlinkDevice], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEAMER_PASSWORD", "s3cret")
    device = make(projector.port, password_env="BEAMER_PASSWORD")
    running(device)
    await until(lambda: device.health.status == "ok", "reached with the right password")
    assert figure(device, "power") == "off" and figure(device, "lamp_hours") == 1200
    assert projector.auth_failures == 0

    device.set({"power": True, "input": "32", "mute": True})
    await until(lambda: projector.power == "warming" or projector.power == "on", "switched on")
    await until(lambda: figure(device, "power") == "on", "warmed up")
    await until(lambda: projector.input == "32" and projector.mute == "31", "input and mute follow the warm-up")
    await until(lambda: figure(device, "input") == "32" and figure(device, "mute") is True, "state in health")
    assert "%1POWR 1" in projector.received and "%1INPT 32" in projector.received

    device.set({"mute": False})
    await until(lambda: projector.mute == "30", "un-muted")
    device.set({"power": False})
    await until(lambda: projector.power == "off", "cooled down")
    await until(lambda: figure(device, "power") == "off", "off in health")


async def test_a_wrong_password_is_offline_with_a_clear_reason(
    projector: PjlinkSimulator, running: Callable[[PjlinkDevice], None], tmp_path: Path
) -> None:
    (tmp_path / "pjlink.secret").write_text("wrong\n", encoding="utf-8")
    device = make(projector.port, tmp_path, password_file="pjlink.secret")
    running(device)
    await until(lambda: projector.auth_failures >= 1, "the projector saw a wrong digest")
    await until(lambda: device.health.status == "offline" and "ERRA" in device.health.reason, "said why")
    assert "密码错误" in device.health.reason and "password" in device.health.reason

    (tmp_path / "pjlink.secret").write_text("s3cret\n", encoding="utf-8")  # fixed: healed without a restart
    await until(lambda: device.health.status == "ok", "back with the right password")


async def test_no_password_for_a_projector_that_asks_for_one(
    projector: PjlinkSimulator, running: Callable[[PjlinkDevice], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    unset = make(projector.port, password_env="NOT_SET_ANYWHERE")
    running(unset)
    await until(lambda: "NOT_SET_ANYWHERE" in unset.health.reason, "names the missing variable")
    assert unset.health.status == "offline"
    none = make(projector.port)
    running(none)
    await until(lambda: "asks for a PJLink password" in none.health.reason, "says a password is needed")


async def test_error_status_categories_are_health_figures(running: Callable[[PjlinkDevice], None]) -> None:
    simulator = PjlinkSimulator()
    await simulator.start()
    try:
        simulator.errors = "020010"  # lamp error, filter warning
        device = make(simulator.port)
        running(device)
        await until(lambda: figure(device, "lamp") == "error", "lamp error in health")
        assert figure(device, "filter") == "warning" and figure(device, "fan") == "ok"
        await until(lambda: device.health.status == "degraded", "degraded")
        assert "lamp error" in device.health.reason and "filter warning" in device.health.reason
        simulator.errors = "000000"
        await until(lambda: device.health.status == "ok", "healthy again")
    finally:
        await simulator.close()


async def test_a_command_refused_while_cooling_down_is_retried_not_dropped(
    running: Callable[[PjlinkDevice], None],
) -> None:
    simulator = PjlinkSimulator(warm_up=0.05, cool_down=1.0)
    await simulator.start()
    try:
        simulator.switch(True)
        await until(lambda: simulator.power == "on", "the projector is on")
        device = make(simulator.port)
        running(device)
        await until(lambda: figure(device, "power") == "on", "seen on")
        simulator.switch(False)  # someone pressed the projector's button: it cools down for a second
        device.set({"power": True})
        await until(lambda: figure(device, "last_refusal") is not None, "ERR3 while cooling")
        assert "ERR3" in figure(device, "last_refusal") and figure(device, "refused") >= 1
        await until(lambda: simulator.power in ("warming", "on"), "switched on once it could be")
        refused = figure(device, "refused")
        assert refused <= 1.0 / 0.05 * 3, f"{refused} refusals: spinning, not retrying"
        await until(lambda: device.health.status == "ok", "ERR3 is no fault")
    finally:
        await simulator.close()


async def test_a_bad_input_is_refused_once_and_said_in_health(running: Callable[[PjlinkDevice], None]) -> None:
    simulator = PjlinkSimulator(warm_up=0.05)
    await simulator.start()
    try:
        simulator.switch(True)
        await until(lambda: simulator.power == "on", "on")
        device = make(simulator.port)
        running(device)
        device.set({"input": "59"})  # a valid PJLink code this projector does not have
        await until(lambda: device.health.status == "degraded", "refused")
        assert "ERR2" in device.health.reason and "INPT" in device.health.reason
        sent = simulator.received.count("%1INPT 59")
        await asyncio.sleep(0.3)  # several polls
        assert simulator.received.count("%1INPT 59") == sent == 1
        device.set({"input": "31"})
        await until(lambda: device.health.status == "ok", "a good input clears it")
    finally:
        await simulator.close()


async def test_disconnect_makes_it_offline_then_it_comes_back(running: Callable[[PjlinkDevice], None]) -> None:
    simulator = PjlinkSimulator()
    await simulator.start()
    try:
        device = make(simulator.port)
        running(device)
        await until(lambda: device.health.status == "ok", "up")
        simulator.inject("disconnect")
        await until(lambda: device.health.status == "offline", "offline while unplugged")
        assert "无法连接" in device.health.reason or "断开" in device.health.reason
        simulator.inject("clear")
        await until(lambda: device.health.status == "ok", "back")
        simulator.inject("garbage")
        await until(lambda: "unreadable" in device.health.reason, "garbage is said")
        simulator.inject("stall")
        await until(lambda: "no answer" in device.health.reason, "a stalled projector times out")
        simulator.inject("clear")
        await until(lambda: device.health.status == "ok", "back again")
    finally:
        await simulator.close()


async def test_an_absent_projector_does_not_block_the_start_and_is_offline() -> None:
    registry = show_registry()  # a sensor kind and the MQTT device kind, without their services
    registry.add_device(DriverSpec("pjlink", PjlinkConfig, PjlinkDevice, SimulatedPjlink))
    text = f"""\
format_version: 1
id: absent
title: {{en: Absent}}
devices:
  beamer: {{kind: pjlink, host: 127.0.0.1, port: {free_port()}, timeout: 2, poll: 0.1}}
"""
    runtime = Runtime(validate_text(text, "absent.yaml", registry), registry, options=RuntimeOptions())
    async with asyncio.timeout(DEADLINE):
        await runtime.start()  # nothing listens there: the start goes on regardless
    device = runtime.devices["beamer"]
    await until(lambda: "cannot reach" in device.health.reason, "offline with the reason")
    assert device.health.status == "offline" and "投影机无法连接" in device.health.reason
    device.set({"power": True})  # never blocks, never raises
    assert await device.go_safe(1.0) is False
    async with asyncio.timeout(DEADLINE):
        await runtime.stop()


async def test_go_safe_unmutes_and_leaves_the_power_alone() -> None:
    simulator = PjlinkSimulator(warm_up=0.05)
    await simulator.start()
    try:
        simulator.switch(True)
        await until(lambda: simulator.power == "on", "on")
        simulator.mute = "31"
        device = make(simulator.port)
        assert device.config.safe_state() == {"mute": False}
        assert await device.go_safe(5.0) is True
        assert simulator.mute == "30" and simulator.power == "on"
        assert not any(line.startswith("%1POWR 0") for line in simulator.received)
    finally:
        await simulator.close()


async def test_the_studio_builder_runs_against_its_own_simulator(running: Callable[[PjlinkDevice], None]) -> None:
    config = PjlinkConfig.model_validate({"kind": "pjlink", "host": "10.99.0.1", "poll": 0.05, "retry": 0.05})
    device = SimulatedPjlink("beamer", config, DriverContext("t", SignalStore(), MonotonicClock(), Resources()))
    running(device)
    await until(lambda: device.health.status == "ok", "the in-process projector answers")
    device.inject("disconnect")
    await until(lambda: device.health.status == "offline", "a fault it can be told")
    device.inject("clear")
    await until(lambda: device.health.status == "ok", "healed")
    assert await device.go_safe(5.0) is True


def test_replies_are_parsed_strictly() -> None:
    assert parse_reply(b"%1POWR=1\r", "POWR") == "1"
    with pytest.raises(Exception, match="ERR3"):
        parse_reply(b"%1INPT=ERR3\r", "INPT")
    with pytest.raises(Exception, match="ERRA"):
        parse_reply(b"PJLINK ERRA\r", "POWR")
    with pytest.raises(Exception, match="unreadable"):
        parse_reply(b"%1AVMT=30\r", "POWR")


async def test_the_first_command_carries_the_specification_example_digest(
    running: Callable[[PjlinkDevice], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The PJLink specification's own example: random `498e4a67`, password `JBMIAProjectorLink`.
    heard: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def projector(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"PJLINK 1 498e4a67\r")
        line = await reader.readuntil(b"\r")
        if not heard.done():
            heard.set_result(line)
        writer.close()

    server = await asyncio.start_server(projector, "127.0.0.1", 0)
    try:
        monkeypatch.setenv("SPEC_PASSWORD", "JBMIAProjectorLink")
        device = make(server.sockets[0].getsockname()[1], password_env="SPEC_PASSWORD")
        running(device)
        async with asyncio.timeout(DEADLINE):
            line = await heard
        assert line == b"5d8409bc1c3fa39749434aa3a5c38682%1POWR ?\r"
        assert hashlib.md5(b"498e4a67JBMIAProjectorLink").hexdigest() == line[:32].decode()
    finally:
        server.close()


def test_password_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        PjlinkConfig.model_validate({"kind": "pjlink", "host": "h", "password_env": "A", "password_file": "b"})
    assert PjlinkConfig.model_validate({"kind": "pjlink", "host": "h"}).port == 4352
