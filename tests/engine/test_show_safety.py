"""The e-stop, arming and PANIC on virtual time: what the latch and the show report, what a disarm
(an action's or an operator's) holds back, the e-stop inputs that latch it, the warnings an operator
reads about blocked motion, and the conditions of rules, which PANIC stops and a reset restarts."""

from __future__ import annotations

import logging

import pytest

from engine.catalogue import ESTOP_SIGNAL
from engine.safety import Safety
from tests.support.show_harness import commands, start_show

HEAD = """\
format_version: 1
id: show
title: {en: Show}
sensors:
  panel:
    kind: osc
    signals:
      button: {address: /button, type: bool}
      level: {address: /level}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
  turntable:
    kind: mqtt
    motion: true
    properties:
      speed: {type: float, range: [0, 10], safe: 0}
"""

MOTION = (
    HEAD
    + """\
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", actions: [{arm: turntable}, {set: turntable.speed, value: 2}]}
      - {id: "2", actions: [{disarm: turntable}, {set: turntable.speed, value: 5}, {set: wash.level, value: 80}]}
"""
)

SAFE = {"speed": 0.0}


def blocked_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "engine.safety" and "blocked" in r.getMessage()]


# --- the latch and arming ------------------------------------------------------------------


async def test_the_status_reports_the_estop_and_panic_as_false_before_and_after_their_reset():
    runtime, clock = await start_show(MOTION)
    show = runtime.show
    assert show is not None
    assert show.status().estop is False and show.status().panic is False
    show.estop()
    assert show.status().estop is True and runtime.store.get(ESTOP_SIGNAL).value is True
    show.reset_estop()
    assert show.status().estop is False  # a console shows false, not "unknown"
    assert runtime.store.get(ESTOP_SIGNAL).value is False  # rules reading `safety.estop` see the release
    show.panic()
    await clock.advance(1.0)
    assert show.status().panic is True
    show.reset()
    assert show.status().panic is False
    await runtime.stop()


def test_arming_a_device_that_does_not_move_names_it():
    safety = Safety()
    safety.add_motion("turntable", SAFE)
    with pytest.raises(KeyError, match="`wash` is not a motion device"):
        safety.arm("wash")


async def test_a_disarm_action_holds_back_the_motion_commands_after_it():
    runtime, clock = await start_show(MOTION)
    show = runtime.show
    assert show is not None
    show.go()  # cue 1 arms the turntable and starts it turning
    assert commands(runtime, "turntable") == [(0.0, {"speed": 2})]
    await clock.advance(1.0)
    show.go()  # cue 2 disarms it first: the speed is blocked, the lights follow
    await clock.advance(0.1)
    assert commands(runtime, "turntable") == [(0.0, {"speed": 2})]
    assert commands(runtime, "wash")[-1] == (1.0, {"level": 80})
    assert show.status().armed == []
    await runtime.stop()


async def test_an_operators_disarm_holds_back_the_next_motion_command():
    runtime, clock = await start_show(MOTION)
    show = runtime.show
    assert show is not None
    assert show.arm("turntable") is True
    runtime.fades.set_now("turntable", "speed", 3.0)
    show.disarm("turntable")
    runtime.fades.set_now("turntable", "speed", 4.0)
    await clock.advance(0.1)
    assert [c for _, c in commands(runtime, "turntable")] == [{"speed": 3.0}]
    assert show.status().armed == []
    await runtime.stop()


# --- e-stop inputs ---------------------------------------------------------------------------


async def test_an_event_latches_the_estop_whatever_its_payload():
    text = (
        HEAD
        + """\
safety:
  estop: [scene.halt]
  armed_at_start: [turntable]
rules:
  - when: "panel.button"
    do: [{event: scene.halt}]
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    runtime.fades.set_now("turntable", "speed", 3.0)
    await clock.advance(1.0)
    runtime.store.set("panel.button", True)  # the rule fires the event, with no payload
    assert show.status().estop is True and show.status().armed == []
    assert commands(runtime, "turntable") == [(0.0, {"speed": 3.0}), (1.0, {"speed": 0})]
    await runtime.stop()


# --- what the operator reads -----------------------------------------------------------------


def test_a_blocked_motion_device_is_warned_about_once_until_it_is_armed_again(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="engine.safety")
    safety = Safety()
    safety.add_motion("turntable", SAFE)
    gate = safety.gate("turntable", lambda values: None)
    for speed in (1.0, 2.0, 3.0):  # a fade's steps: one warning, not one per step
        gate({"speed": speed})
    assert blocked_warnings(caplog) == ["motion command to turntable blocked: it is not armed ({'speed': 1.0})"]
    safety.arm("turntable")
    safety.disarm("turntable")
    gate({"speed": 4.0})  # blocked again after having been armed: said again
    gate({"speed": 5.0})
    assert len(blocked_warnings(caplog)) == 2 and safety.blocked == 5


def test_the_estop_is_logged_when_it_latches_and_not_again_while_latched(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, logger="engine.safety")
    safety = Safety()

    def said() -> int:
        return sum("E-STOP" in r.getMessage() for r in caplog.records)

    safety.estop()
    assert said() == 1
    safety.estop()
    assert said() == 1


# --- conditions of rules ---------------------------------------------------------------------


async def test_panic_after_a_held_condition_fell_stops_everything_and_so_does_a_stop_after_the_reset():
    text = (
        HEAD
        + """\
safety:
  armed_at_start: [turntable]
rules:
  - when: "panel.level > 0.5 for 0.5s"
    do: [{set: wash.level, value: 100}]
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    runtime.fades.set_now("turntable", "speed", 3.0)
    runtime.store.set("panel.level", 0.9)
    await clock.advance(0.2)
    runtime.store.set("panel.level", 0.1)  # gone before the hold: its timer is cancelled
    await clock.advance(0.2)
    show.panic()
    assert commands(runtime, "turntable")[-1] == (0.4, {"speed": 0})  # stopped at once
    await clock.advance(1.0)
    show.reset()
    await clock.advance(1.0)
    await runtime.stop()  # the rules stop a second time
    assert {"level": 100} not in [c for _, c in commands(runtime, "wash")]  # the flicker fired nothing


async def test_a_condition_on_time_alone_is_polled():
    text = (
        HEAD
        + """\
rules:
  - when: "panel.button"
    do: [{event: scene.wave}]
  - when: "since(scene.wave) < 2s"
    do: [{set: wash.level, value: 100}]
    otherwise: [{set: wash.level, value: 0}]
"""
    )
    runtime, clock = await start_show(text)
    runtime.store.set("panel.button", True)  # a wave at 0; nothing changes afterwards
    assert commands(runtime, "wash") == [(0.0, {"level": 100})]
    await clock.advance(1.9)
    assert len(commands(runtime, "wash")) == 1
    await clock.advance(0.3)  # polled every 0.1 s: seen within one poll of 2 s
    assert [c for _, c in commands(runtime, "wash")] == [{"level": 100}, {"level": 0}]
    assert 2.0 <= commands(runtime, "wash")[1][0] <= 2.1
    await runtime.stop()


async def test_closing_time_runs_the_on_close_actions():
    text = (
        HEAD
        + """\
variables: {closed: false}
schedule:
  timezone: UTC
  weekly: {mon: "10:00-17:00"}
  on_close: [{var: closed, value: true}]
  close_fade: 1s
"""
    )
    runtime, clock = await start_show(text)  # a Thursday: closed from the start
    await clock.advance(0.1)
    assert runtime.store.get("schedule.open").value is False
    assert runtime.store.get("var.closed").value is True
    assert runtime.show is not None and runtime.show.ctx.errors == 0
    await runtime.stop()
