"""Line-format boards on real ptys, each an Arduino that restarts when its port opens and whose
bootloader swallows what the host sends for a second: the test unplugs it, plugs it back at a new
path, browns it out, and floods it with bad input."""

from __future__ import annotations

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

import sensors.serial as serial_driver
from engine.clock import MonotonicClock, VirtualClock
from engine.drivers import DriverContext, Resources
from engine.signals import SignalStore
from sensors.serial import SerialSensor, SerialSensorConfig
from sensors.serial_simulated import SimulatedSerialSensor
from sensors.simulated_board import LineSketch
from tests.support.serial_board import ScriptedSketch, json_sketch


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


JSON_BOARD = {
    "format": "json",
    "signals": {
        "button": {"field": "button", "type": "bool"},
        "distance": {"field": "distance", "scale": {"input": [0, 1023], "output": [0, 1]}},
        "seq": {"field": "seq", "type": "int"},
    },
    "outputs": {"led": {"template": "LED {value}", "safe": False}},
}


def status(store: SignalStore) -> str:
    return store.get("plinth.health.status").value


async def test_outputs_wait_for_the_board_to_start_and_get_their_safe_values(arduinos, running):
    values = {"button": True, "distance": 512}
    uno = arduinos(json_sketch(values))
    sensor, store = make({"port": str(uno.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: uno.opens == 1)
    assert status(store) == "degraded"
    assert store.get("plinth.health.reason").value == "waiting for the board to start"
    took = await until(lambda: status(store) == "ok")
    assert 0.8 < took < 2.0  # the bootloader's second, then the first line
    assert store.get("plinth.button").value is True
    assert store.get("plinth.distance").value == pytest.approx(512 / 1023)
    await until(lambda: uno.sketch.commands == [b"LED 0"])  # the safe value, sent once the sketch runs
    assert uno.board.swallowed == 0  # nothing was sent into the bootloader
    sensor.set({"led": True})
    await until(lambda: uno.sketch.commands == [b"LED 0", b"LED 1"])


async def test_a_board_that_does_not_restart_gets_its_outputs_after_the_settle_time(arduinos, running):
    uno = arduinos(ScriptedSketch(), auto_reset=False)  # a Leonardo: speaks only when spoken to
    await until(lambda: not uno.board.in_bootloader)  # powered up a while ago
    sensor, store = make({"port": str(uno.link), "settle": 0.5, **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: uno.opens == 1)
    uno.sketch.say(b'nce": 3}\r\n')  # the end of a line cut in two by the port opening
    took = await until(lambda: status(store) == "ok")
    assert 0.4 < took < 1.5
    await until(lambda: bytes(uno.sketch.received) == b"LED 0\n")
    assert sensor.health_signals.errors == {}  # the cut line was boot noise, not bad input
    assert sensor.boot_noise == 1
    uno.sketch.say(b'{"button": true}\n')
    await until(lambda: store.get("plinth.button").value is True)


async def test_a_thousand_lines_a_second_without_loss(arduinos, running):
    counter = iter(range(1, 10**9))
    uno = arduinos(LineSketch(lambda _t: b'{"seq": %d, "distance": 7}\r\n' % next(counter), 1000.0))
    sensor, store = make({"port": str(uno.link), **JSON_BOARD})
    seen: list[int] = []
    store.subscribe("plinth.seq", lambda s: seen.append(s.value))
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: len(seen) >= 2000, timeout=8.0)
    assert seen[0] == 1
    assert seen == list(range(1, len(seen) + 1))
    assert sensor.health_signals.error_count == 0


async def test_unplug_goes_offline_at_once_and_replug_at_a_new_path_is_found(arduinos, running, caplog):
    caplog.set_level(logging.INFO)
    values = {"button": False, "distance": 100}
    uno = arduinos(json_sketch(values))
    sensor, store = make({"port": str(uno.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    sensor.set({"led": True})
    await until(lambda: uno.sketch.commands == [b"LED 0", b"LED 1"])

    uno.unplug()
    took = await until(lambda: status(store) == "offline")
    assert took < 1.0
    assert store.get("plinth.button").stale and store.get("plinth.distance").stale
    await asyncio.sleep(0.4)  # retries meanwhile find nothing

    values.update(button=True, distance=1023)
    uno.replug()
    assert uno.cable.paths[0] != uno.cable.paths[1]
    took = await until(lambda: status(store) == "ok")
    assert took < 2.5  # a fast first retry, then the board restarts as the port opens
    assert sensor.device == uno.cable.paths[1]
    await until(lambda: uno.sketch.commands[-1:] == [b"LED 1"] and len(uno.sketch.commands) == 3)
    assert uno.board.swallowed == 0
    await until(lambda: store.get("plinth.button").value is True and not store.get("plinth.distance").stale)

    messages = [r.getMessage() for r in caplog.records]
    assert sum("went away" in m for m in messages) == 1
    assert sum("is back on" in m for m in messages) == 1
    assert sum("keeps looking" in m for m in messages) <= 1


async def test_a_board_found_by_usb_identity(arduinos, running, monkeypatch):
    uno = arduinos(json_sketch({"button": False}))
    # No USB board exists on a test machine: the enumeration is the one thing replaced.
    ports = [
        SimpleNamespace(vid=0x2341, pid=0x0043, serial_number="75735323", device=uno.cable.paths[-1]),
        SimpleNamespace(vid=0x0403, pid=0x6001, serial_number="A1", device="/dev/null"),
    ]
    monkeypatch.setattr(serial_driver, "port_lister", lambda: ports)
    sensor, store = make({"usb": "2341:0043:75735323", **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    uno.unplug()
    await until(lambda: status(store) == "offline")
    uno.replug()
    ports[0].device = uno.cable.paths[-1]  # the board is back as another ttyACM
    await until(lambda: status(store) == "ok")
    assert sensor.device == uno.cable.paths[-1]


async def test_bad_input_is_counted_and_dropped(arduinos, running):
    uno = arduinos(ScriptedSketch(banner=b"\x00\xf8boot\r\n"))  # what some boards print as they start
    config = {
        "port": str(uno.link),
        "format": "csv",
        "columns": ["button", "distance"],
        "max_line": 64,
        "signals": {"button": {"field": "button", "type": "bool"}, "distance": {"field": "distance"}},
    }
    sensor, store = make(config)
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: uno.opens == 1)
    uno.sketch.say(b"1,")  # a line in two parts is fine
    uno.sketch.say(b"200\n")
    await until(lambda: store.get("plinth.distance").value == 200.0)
    await until(lambda: status(store) == "ok")
    assert sensor.boot_noise == 1
    uno.sketch.say(b"\xff\xfe\xfa,1\n")  # not UTF-8
    uno.sketch.say(b"9" * 300 + b"\n")  # longer than max_line
    uno.sketch.say(b"1,2,3\n")  # wrong field count
    uno.sketch.say(b"\x00\x13noise\n")  # noise
    uno.sketch.say(b"1,inf\n1,nan\n1,-inf\n")  # Serial.print of a broken float
    uno.sketch.say(b"0,300\r\n")  # and then a good line, with a Windows ending
    await until(lambda: store.get("plinth.distance").value == 300.0)
    errors = sensor.health_signals.errors
    assert errors == {"decode": 1, "overlong": 1, "parse": 2, "nonfinite": 3}
    assert store.get("plinth.button").value is False


@pytest.mark.parametrize(
    ("config", "line"),
    [
        (JSON_BOARD, b'{"distance": NaN}\n'),
        (JSON_BOARD, b'{"distance": Infinity}\n'),
        (JSON_BOARD, b'{"distance": -Infinity}\n'),
        (JSON_BOARD, b'{"distance": 1e999}\n'),
        ({"format": "keyvalue", "signals": {"distance": {"field": "distance"}}}, b"distance=inf\n"),
        ({"format": "keyvalue", "signals": {"distance": {"field": "distance"}}}, b"distance=nan\n"),
        ({"format": "regex", "pattern": "D(?P<d>\\S+)", "signals": {"distance": {"field": "d"}}}, b"D-inf\n"),
    ],
)
def test_a_non_finite_number_is_counted_and_dropped_never_clamped(config: dict, line: bytes):
    sensor, store = make({"port": "/dev/null", **config})
    good = b'{"distance": 0}\n' if config is JSON_BOARD else line.replace(b"inf", b"0").replace(b"nan", b"0")
    sensor.handle_bytes(good)
    assert store.get("plinth.distance").value == 0.0
    sensor.handle_bytes(line)
    assert store.get("plinth.distance").value == 0.0
    assert sensor.health_signals.errors == {"nonfinite": 1}


def test_lines_in_any_chunks_and_other_formats():
    sensor, store = make({"port": "/dev/null", **JSON_BOARD})
    for byte in b'{"button": true, "distance": 512}\n':
        sensor.handle_bytes(bytes([byte]))
    assert store.get("plinth.button").value is True
    assert store.get("plinth.distance").value == pytest.approx(512 / 1023)

    regex, regex_store = make(
        {
            "port": "/dev/null",
            "format": "regex",
            "pattern": r"^B(?P<button>[01]) D(?P<distance>\d+)$",
            "signals": {
                "button": {"field": "button", "type": "bool"},
                "distance": {"field": "distance", "type": "int"},
            },
        }
    )
    regex.handle_bytes(b"B1 D742\nB0 Dxx\n")
    assert regex_store.get("plinth.distance").value == 742 and regex_store.get("plinth.button").value is True
    assert regex.health_signals.errors == {"parse": 1}

    kv, kv_store = make(
        {
            "port": "/dev/null",
            "format": "keyvalue",
            "signals": {"state": {"field": "state", "type": "str"}, "level": {"field": "lvl"}},
        }
    )
    kv.handle_bytes(b"state=open lvl=0.25\n")
    assert kv_store.get("plinth.state").value == "open" and kv_store.get("plinth.level").value == 0.25


async def test_a_steady_input_reads_its_rate_and_age_in_health(arduinos, running):
    uno = arduinos(json_sketch({"button": False, "distance": 300}, rate=50.0))  # the same values every time
    sensor, store = make({"port": str(uno.link), **JSON_BOARD})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    await asyncio.sleep(2.2)  # the figures are published once a second
    assert 40 <= store.get("plinth.health.rate").value <= 60
    assert 0 <= store.get("plinth.health.age").value < 0.1


async def test_invert_a_pull_up_button_and_an_active_low_relay(arduinos, running):
    values = {"button": 0}
    uno = arduinos(LineSketch(lambda _t: b"button=%d\n" % values["button"], 50.0))
    config = {
        "port": str(uno.link),
        "format": "keyvalue",
        "signals": {"pressed": {"field": "button", "type": "bool", "invert": True}},
        "outputs": {"relay": {"template": "R {value}", "safe": False, "invert": True}},
    }
    sensor, store = make(config)
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.pressed").value is True)  # the button pulls the line low
    values["button"] = 1
    await until(lambda: store.get("plinth.pressed").value is False)
    await until(lambda: uno.sketch.commands == [b"R 1"])  # off is high on an active-low relay
    sensor.set({"relay": True})
    await until(lambda: uno.sketch.commands == [b"R 1", b"R 0"])


async def test_simulated_board_plays_the_format_and_takes_faults():
    clock = VirtualClock()
    sensor, store = make({"port": "/dev/ttyACM9", **JSON_BOARD}, clock, SimulatedSerialSensor)
    assert isinstance(sensor, SimulatedSerialSensor)
    task = asyncio.create_task(sensor.run())
    await clock.advance(0.5)
    assert status(store) == "degraded" and sensor.written == []  # still in its bootloader
    await clock.advance(1.0)
    assert status(store) == "ok" and sensor.written == [b"LED 0\n"]
    assert store.get("plinth.button").value is False and 0 <= store.get("plinth.distance").value <= 1
    await clock.advance(9.2)
    assert sensor.health_signals.received >= 90
    sensor.inject("garbage")
    await clock.advance(1.0)
    assert sensor.health_signals.error_count >= 5
    sensor.inject("disconnect")
    await clock.advance(0.1)
    assert status(store) == "offline" and store.get("plinth.distance").stale
    sensor.inject("clear")
    await clock.advance(3.0)  # the next retry, and the board restarts as its port opens
    assert status(store) == "ok" and not store.get("plinth.distance").stale
    sensor.set({"led": True})
    assert sensor.written == [b"LED 0\n", b"LED 0\n", b"LED 1\n"]
    assert sensor.simulated_board.resets == 3  # powered on, opened, opened again
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
        ({"port": "/dev/x", "signals": {"b": {"field": "b", "invert": True}}}, "`invert` is for true/false signals"),
        ({"port": "/dev/x", "signals": {"b": {"field": "b", "pullup": True}}}, "`pullup` is for Firmata digital"),
        (
            {"port": "/dev/x", "format": "firmata", "signals": {"b": {"pin": "A0", "pullup": False}}},
            "`pullup` is for Firmata digital",
        ),
        (
            {"port": "/dev/x", "outputs": {"dim": {"template": "D {value}", "type": "int", "safe": 0, "invert": True}}},
            "`invert` is for true/false outputs",
        ),
        (
            {"port": "/dev/x", "signals": {"b": {"field": "b", "scale": {"input": [0, float("inf")]}}}},
            "finite",
        ),
        (  # a Firmata pin reads 0..16383, always finite: only a scale could make it infinite, and none can
            {
                "port": "/dev/x",
                "format": "firmata",
                "signals": {"b": {"pin": "A0", "scale": {"input": [0, 1023], "output": [-1e308, 1e308]}}},
            },
            "too wide",
        ),
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
    assert not await sensor.go_safe(1.0)  # not started: nothing reached a board
    task = asyncio.create_task(sensor.run())
    await clock.advance(1.5)
    sensor.set({"led": True})
    assert await sensor.go_safe(1.0) and sensor.outputs == {"led": False}
    assert b"LED 1\n" in sensor.written and sensor.written[-1] == b"LED 0\n"
    sensor.inject("disconnect")
    await clock.advance(0.1)
    assert not await sensor.go_safe(1.0)
    task.cancel()


async def test_after_a_stable_connection_the_first_retry_waits_the_initial_back_off_again():
    clock = VirtualClock()
    sensor, store = make({"port": "/dev/ttyACM9", **JSON_BOARD}, clock, SimulatedSerialSensor)
    assert isinstance(sensor, SimulatedSerialSensor)
    task = asyncio.create_task(sensor.run())
    await clock.advance(2.0)
    assert sensor.connections == 1
    sensor.inject("disconnect")
    await clock.advance(30.0)  # a long absence: the waits grew to the 5 s cap
    sensor.inject("clear")
    await clock.advance(5.5)
    assert sensor.connections == 2
    await clock.advance(3.0)  # up longer than stable_after (2 s): that was a success
    assert status(store) == "ok"

    sensor.inject("disconnect")
    await clock.advance(0.05)
    sensor.inject("clear")
    await clock.advance(0.3)  # the initial 0.25 s, not the 5 s the last absence grew to
    assert sensor.connections == 3
    task.cancel()
