"""StandardFirmata boards on real ptys, in real time: each restarts when its port opens, its
bootloader swallows what the host sends for a second, and the firmware boots with its version
report. The driver must wait for it, check the board can do what the exhibit asks, and set the
board up again whenever it restarts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sensors import firmata
from sensors.simulated_board import FirmataSketch
from tests.sensors.test_serial_sensor import make, status, until
from tests.support.serial_board import ScriptedSketch, json_sketch

PLINTH = {
    "format": "firmata",
    "signals": {
        "knob": {"pin": "A0", "scale": {"input": [0, 1023]}},
        "pressed": {"pin": "D2", "type": "bool", "invert": True},  # a button to ground, on the pull-up
    },
    "outputs": {"led": {"pin": 13, "safe": False}, "glow": {"pin": 9, "mode": "pwm", "type": "int", "safe": 0}},
}


def uno_with(inputs: dict[str, int | bool]) -> FirmataSketch:
    """StandardFirmata whose inputs read ``inputs`` (the test changes it as a visitor would)."""
    return FirmataSketch(lambda _t: inputs)


async def test_waits_for_the_firmware_then_reads_inputs_and_drives_outputs(arduinos, running):
    inputs: dict[str, int | bool] = {"A0": 1023, "D2": True}
    uno = arduinos(uno_with(inputs))
    sensor, store = make({"port": str(uno.link), **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: uno.opens == 1)
    assert status(store) == "degraded"
    assert store.get("plinth.health.reason").value == "waiting for firmware"
    took = await until(lambda: status(store) == "ok")
    assert 0.8 < took < 2.0  # the bootloader's second, then the version report
    assert uno.board.swallowed == 0  # nothing was sent into the bootloader
    board = uno.sketch.firmware
    await until(lambda: store.get("plinth.knob").value == 1.0)  # set up by now
    assert board.pin_modes[2] == firmata.INPUT_PULLUP and board.pin_modes[13] == firmata.OUTPUT
    assert board.pin_modes[9] == firmata.PWM
    assert store.get("plinth.pressed").value is False  # the pull-up reads high: not pressed
    inputs["D2"] = False
    await until(lambda: store.get("plinth.pressed").value is True)
    sensor.set({"led": True, "glow": 200})
    await until(lambda: board.digital_writes[-1:] == [(13, 1)] and board.analog_writes[-1:] == [(9, 200)])
    assert (13, 0) in board.digital_writes  # the safe value came first
    assert sensor.health_signals.errors == {}


async def test_a_board_that_does_not_restart_is_asked_for_its_firmware_after_the_settle_time(arduinos, running):
    uno = arduinos(uno_with({"A0": 512}), auto_reset=False)
    await until(lambda: not uno.board.in_bootloader)  # powered up a while ago: its hello went to nobody
    sensor, store = make({"port": str(uno.link), "settle": 0.5, **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: uno.opens == 1)
    took = await until(lambda: status(store) == "ok")
    assert 0.4 < took < 1.5
    assert (firmata.START_SYSEX, bytes([firmata.REPORT_FIRMWARE])) in uno.sketch.firmware.commands
    await until(lambda: store.get("plinth.knob").value == pytest.approx(512 / 1023))


@pytest.mark.parametrize(
    ("sketch", "reason"),
    [
        (ScriptedSketch, "no answer from the firmware (is StandardFirmata loaded, at 57600 baud?)"),
        (
            lambda: json_sketch({"button": 1}),
            "no answer: the board sends bytes that are not Firmata (is StandardFirmata loaded, at 57600 baud?)",
        ),
    ],
    ids=["silent", "another sketch"],
)
async def test_a_board_that_never_answers_stays_degraded_with_a_reason(arduinos, running, caplog, sketch, reason):
    uno = arduinos(sketch())
    sensor, store = make({"port": str(uno.link), "baud": 57600, "settle": 0.3, **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.health.reason").value == reason)
    await asyncio.sleep(1.5)  # asked again meanwhile: still no answer
    assert status(store) == "degraded" and store.get("plinth.health.reason").value == reason
    assert sum("asking again" in r.getMessage() for r in caplog.records) == 1
    assert not sensor.ready


async def test_pins_the_board_cannot_use_are_said_once_and_the_others_work(arduinos, running, caplog):
    caplog.set_level(logging.WARNING)
    uno = arduinos(uno_with({"A0": 1023}))
    config = {
        "port": str(uno.link),
        "format": "firmata",
        "signals": {"knob": {"pin": "A0", "scale": {"input": [0, 1023]}}, "far": {"pin": "A7"}},
        "outputs": {"led": {"pin": 13, "safe": False}, "dim": {"pin": 8, "mode": "pwm", "type": "int", "safe": 0}},
    }
    sensor, store = make(config)
    running.append(asyncio.create_task(sensor.run()))
    expected = "pin A7 is not an analog input on this board; pin D8 cannot do PWM on this board"
    await until(lambda: store.get("plinth.health.reason").value == expected)
    assert status(store) == "degraded"
    await until(lambda: store.get("plinth.knob").value == 1.0)
    sensor.set({"led": True})
    await until(lambda: uno.sketch.firmware.digital_writes[-1:] == [(13, 1)])
    assert uno.sketch.firmware.pin_modes[8] == firmata.OUTPUT  # never sent a mode it cannot take
    said = [r.getMessage() for r in caplog.records if "cannot do PWM" in r.getMessage()]
    assert len(said) == 1


async def test_a_board_that_restarts_mid_run_gets_its_setup_and_outputs_again(arduinos, running, caplog):
    inputs: dict[str, int | bool] = {"A0": 100}
    uno = arduinos(uno_with(inputs))
    sensor, store = make({"port": str(uno.link), **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    sensor.set({"led": True, "glow": 120})
    board = uno.sketch.firmware
    await until(lambda: board.digital_writes[-1:] == [(13, 1)])

    uno.brown_out()  # the lanterns' inrush current, say: the board restarts with everything off
    writes = len(board.digital_writes)
    await until(lambda: sensor.restarts == 1)
    await until(lambda: board.digital_writes[writes:] == [(13, 1)] and board.analog_writes[-1:] == [(9, 120)])
    assert board.pin_modes[13] == firmata.OUTPUT and 0 in board.analog_reporting
    inputs["A0"] = 1023
    await until(lambda: store.get("plinth.knob").value == 1.0)
    assert status(store) == "ok"
    assert sum("restarted" in r.getMessage() for r in caplog.records) == 1


async def test_unplug_and_replug_restarts_the_board_and_sets_it_up_again(arduinos, running):
    inputs: dict[str, int | bool] = {"A0": 0}
    uno = arduinos(uno_with(inputs))
    sensor, store = make({"port": str(uno.link), **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    sensor.set({"led": True})
    uno.unplug()
    await until(lambda: status(store) == "offline")
    assert store.get("plinth.knob").stale
    inputs["A0"] = 1023
    uno.replug()
    await until(lambda: store.get("plinth.health.reason").value == "waiting for firmware")
    await until(lambda: status(store) == "ok")
    await until(lambda: store.get("plinth.knob").value == 1.0 and not store.get("plinth.knob").stale)
    await until(lambda: uno.sketch.firmware.digital_writes[-1:] == [(13, 1)])
    assert uno.board.swallowed == 0


async def test_a_steady_input_reads_its_rate_and_age_in_health(arduinos, running):
    uno = arduinos(uno_with({"A0": 300, "D2": True}))  # nothing changes; StandardFirmata reports anyway
    sensor, store = make({"port": str(uno.link), **PLINTH})
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: status(store) == "ok")
    await asyncio.sleep(2.2)  # the figures are published once a second
    assert 45 <= store.get("plinth.health.rate").value <= 60  # one report every 19 ms
    assert 0 <= store.get("plinth.health.age").value < 0.1


async def test_an_input_without_pull_up_and_an_active_low_relay(arduinos, running):
    uno = arduinos(uno_with({"D2": True}))
    config = {
        "port": str(uno.link),
        "format": "firmata",
        "signals": {"beam": {"pin": "D2", "type": "bool", "pullup": False}},
        "outputs": {"relay": {"pin": 7, "safe": False, "invert": True}},
    }
    sensor, store = make(config)
    running.append(asyncio.create_task(sensor.run()))
    await until(lambda: store.get("plinth.beam").value is True)
    board = uno.sketch.firmware
    assert board.pin_modes[2] == firmata.INPUT
    await until(lambda: board.digital_writes == [(7, 1)])  # safe (off) is a high pin
    sensor.set({"relay": True})
    await until(lambda: board.digital_writes == [(7, 1), (7, 0)])
