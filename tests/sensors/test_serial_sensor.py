"""Serial boards on real ptys: the test plays the Arduino byte by byte, unplugs it,
plugs it back at a new path, and floods it with bad input."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

import sensors.serial as serial_driver
from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from sensors import firmata
from sensors.serial import SerialSensor, SerialSensorConfig, SimulatedSerialSensor
from tests.support.serial_board import PtyBoard


def make(config: dict, clock=None, cls=SerialSensor) -> tuple[SerialSensor, SignalStore]:
    parsed = SerialSensorConfig.model_validate({"kind": "serial", **config})
    clock = clock or MonotonicClock()
    store = SignalStore(clock)
    for name, type_ in parsed.signal_types().items():
        store.declare(f"plinth.{name}", type_)
    sensor = cls("plinth", parsed, DriverContext("test", store, clock, Resources()))
    return sensor, store


async def until(predicate, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not met in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[PtyBoard]:
    pty = PtyBoard(tmp_path)
    yield pty
    pty.close()


JSON_BOARD = {
    "format": "json",
    "signals": {
        "button": {"field": "button", "type": "bool"},
        "distance": {"field": "distance", "scale": {"input": [0, 1023], "output": [0, 1]}},
        "seq": {"field": "seq", "type": "int"},
    },
    "outputs": {"led": {"template": "LED {value}", "safe": False}},
}


async def test_json_lines_byte_by_byte(board: PtyBoard, running):
    sensor, store = make({"port": str(board.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    for byte in b'{"button": true, "distance": 512}\n':
        board.write(bytes([byte]))
    await until(lambda: store.get("plinth.button").value is True)
    assert store.get("plinth.distance").value == pytest.approx(512 / 1023)
    assert board.read() == b"LED 0\n"  # the LED's safe value is sent on connect


async def test_a_thousand_lines_a_second_without_loss(board: PtyBoard, running):
    sensor, store = make({"port": str(board.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    seen: list[int] = []
    store.subscribe("plinth.seq", lambda s: seen.append(s.value))
    lines = [json.dumps({"seq": n, "distance": n % 1024}).encode() + b"\n" for n in range(2000)]
    took = await asyncio.to_thread(board.send_lines, lines, 1000.0)
    await until(lambda: len(seen) == 2000)
    assert seen == list(range(2000))
    assert took < 3.0  # the test really sent at about 1 kHz
    assert sensor.health_signals.error_count == 0


async def test_unplug_goes_offline_at_once_and_replug_at_a_new_path_is_found(board: PtyBoard, running, caplog):
    caplog.set_level(logging.INFO)
    sensor, store = make({"port": str(board.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    board.write(b'{"button": false, "distance": 100}\n')
    await until(lambda: store.get("plinth.button").value is False)
    sensor.set({"led": True})
    await until(lambda: board.read() == b"LED 0\nLED 1\n")

    board.unplug()
    took = await until(lambda: store.get("plinth.health.status").value == "offline")
    assert took < 1.0
    assert store.get("plinth.button").stale and store.get("plinth.distance").stale
    await asyncio.sleep(0.4)  # retries meanwhile find nothing

    board.replug()
    assert board.paths[0] != board.paths[1]
    took = await until(lambda: store.get("plinth.health.status").value == "ok")
    assert took < 1.0  # first retries are fast
    assert sensor.device == board.paths[1]
    await until(lambda: board.read() == b"LED 1\n")  # the board gets its outputs back as they were
    board.write(b'{"button": true, "distance": 1023}\n')
    await until(lambda: store.get("plinth.button").value is True and not store.get("plinth.distance").stale)

    messages = [r.getMessage() for r in caplog.records]
    assert sum("went away" in m for m in messages) == 1
    assert sum("is back on" in m for m in messages) == 1
    assert sum("keeps looking" in m for m in messages) <= 1


async def test_a_board_found_by_usb_identity(board: PtyBoard, running, monkeypatch):
    # No USB board exists on a test machine: the enumeration is the one thing replaced.
    ports = [
        SimpleNamespace(vid=0x2341, pid=0x0043, serial_number="75735323", device=board.paths[-1]),
        SimpleNamespace(vid=0x0403, pid=0x6001, serial_number="A1", device="/dev/null"),
    ]
    monkeypatch.setattr(serial_driver, "port_lister", lambda: ports)
    sensor, store = make({"usb": "2341:0043:75735323", **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    board.unplug()
    await until(lambda: store.get("plinth.health.status").value == "offline")
    board.replug()
    ports[0].device = board.paths[-1]  # the board is back as another ttyACM
    await until(lambda: store.get("plinth.health.status").value == "ok")
    assert sensor.device == board.paths[-1]


async def test_bad_input_is_counted_and_dropped(board: PtyBoard, running):
    config = {
        "port": str(board.link),
        "format": "csv",
        "columns": ["button", "distance"],
        "max_line": 64,
        "signals": {"button": {"field": "button", "type": "bool"}, "distance": {"field": "distance"}},
    }
    sensor, store = make(config)
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    board.write(b"1,")  # a line in two parts is fine
    board.write(b"200\n")
    await until(lambda: store.get("plinth.distance").value == 200.0)
    board.write(b"\xff\xfe\xfa,1\n")  # not UTF-8
    board.write(b"9" * 300 + b"\n")  # longer than max_line
    board.write(b"1,2,3\n")  # wrong field count
    board.write(b"\x00\x13noise\n")  # noise
    board.write(b"0,300\r\n")  # and then a good line, with a Windows ending
    await until(lambda: store.get("plinth.distance").value == 300.0)
    errors = sensor.health_signals.errors
    assert errors == {"decode": 1, "overlong": 1, "parse": 2}
    assert store.get("plinth.button").value is False


async def test_other_line_formats(board: PtyBoard, running):
    sensor, store = make(
        {
            "port": str(board.link),
            "format": "regex",
            "pattern": r"^B(?P<button>[01]) D(?P<distance>\d+)$",
            "signals": {
                "button": {"field": "button", "type": "bool"},
                "distance": {"field": "distance", "type": "int"},
            },
        }
    )
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    board.write(b"B1 D742\nB0 Dxx\n")
    await until(lambda: store.get("plinth.distance").value == 742)
    assert store.get("plinth.button").value is True
    await until(lambda: sensor.health_signals.errors.get("parse") == 1)

    kv, kv_store = make(
        {
            "port": "/dev/null",
            "format": "keyvalue",
            "signals": {"state": {"field": "state", "type": "str"}, "level": {"field": "lvl"}},
        }
    )
    kv.handle_bytes(b"state=open lvl=0.25\n")
    assert kv_store.get("plinth.state").value == "open" and kv_store.get("plinth.level").value == 0.25


async def test_firmata_board(board: PtyBoard, running):
    uno = firmata.StandardFirmataSimulator()
    sensor, store = make(
        {
            "port": str(board.link),
            "format": "firmata",
            "signals": {"knob": {"pin": "A0", "scale": {"input": [0, 1023]}}, "button": {"pin": "D2", "type": "bool"}},
            "outputs": {"led": {"pin": 13, "safe": False}, "glow": {"pin": 9, "mode": "pwm", "type": "int", "safe": 0}},
        }
    )
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.status").value == "ok")
    board.write(uno.startup())

    def answer_host() -> bool:
        """The board reads what the host sent and replies, as the firmware would."""
        board.write(uno.handle(board.read()))
        return False

    await until(lambda: answer_host() or uno.pin_modes.get(9) == firmata.PWM)
    assert uno.pin_modes[13] == firmata.OUTPUT and uno.pin_modes[2] == firmata.INPUT_PULLUP
    assert 0 in uno.analog_reporting and 0 in uno.digital_reporting
    board.write(uno.set_analog(0, 1023))
    board.write(uno.set_digital(2, True))
    await until(lambda: store.get("plinth.knob").value == 1.0 and store.get("plinth.button").value is True)
    sensor.set({"led": True, "glow": 200})
    await until(lambda: answer_host() or ((13, 1) in uno.digital_writes and (9, 200) in uno.analog_writes))
    assert sensor.health_signals.errors == {}


async def test_simulated_board_plays_the_format_and_takes_faults():
    clock = VirtualClock()
    sensor, store = make({"port": "/dev/ttyACM9", **JSON_BOARD}, clock, SimulatedSerialSensor)
    assert isinstance(sensor, SimulatedSerialSensor)
    task = asyncio.create_task(sensor.run())
    await clock.advance(1.0)
    assert store.get("plinth.button").value is False and 0 <= store.get("plinth.distance").value <= 1
    await clock.advance(9.2)
    assert sensor.health_signals.received >= 90
    sensor.inject("garbage")
    await clock.advance(1.0)
    assert sensor.health_signals.error_count >= 5
    sensor.inject("disconnect")
    assert store.get("plinth.health.status").value == "offline" and store.get("plinth.distance").stale
    sensor.inject("clear")
    await clock.advance(0.5)
    assert not store.get("plinth.distance").stale
    sensor.set({"led": True})
    assert sensor.written == [b"LED 0\n", b"LED 1\n"]
    task.cancel()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"port": "/dev/x", "usb": "2341:0043"}, "exactly one of `port`"),
        ({}, "exactly one of `port`"),
        (
            {"port": "/dev/x", "format": "csv", "columns": ["a"], "signals": {"b": {"field": "b"}}},
            "reads field `b`, which the format does not have",
        ),
        ({"port": "/dev/x", "format": "firmata", "signals": {"b": {"field": "b"}}}, "needs a `pin`"),
        ({"port": "/dev/x", "outputs": {"led": {"template": "LED", "safe": 0}}}, "containing `{value}`"),
        ({"port": "/dev/x", "format": "regex", "pattern": "(", "signals": {"b": {"field": "b"}}}, "pattern"),
    ],
)
def test_configuration_mistakes(config: dict, message: str):
    base = {"kind": "serial", "signals": {"b": {"field": "b"}}}
    with pytest.raises(ValidationError, match=message.replace("`", ".").replace("{", ".").replace("}", ".")):
        SerialSensorConfig.model_validate({**base, **config})


async def test_simulated_outputs_go_safe_unless_unplugged():
    clock = VirtualClock()
    sensor, _ = make({"port": "/dev/ttyACM9", **JSON_BOARD}, clock, SimulatedSerialSensor)
    assert isinstance(sensor, SimulatedSerialSensor)
    sensor.set({"led": True})
    assert await sensor.go_safe(1.0) and sensor.outputs == {"led": False}
    sensor.inject("disconnect")
    assert not await sensor.go_safe(1.0)
