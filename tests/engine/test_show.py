"""Show logic on virtual time: states, rules, cue lists, PANIC, timelines, opening hours.
Minutes of show time run in milliseconds; device commands and their times are exact."""

from __future__ import annotations

import asyncio
import datetime
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devices.osc_out import OscOutDevice
from engine.clock import VirtualClock
from engine.drivers import Sensor
from engine.problems import ExhibitInvalid
from engine.registry import DriverSpec
from engine.runtime import Runtime, RuntimeOptions
from engine.validate import validate_text
from tests.support.show_harness import commands, registry, start_show

HEAD = """\
format_version: 1
id: show
title: {en: Show}
sensors:
  panel:
    kind: osc
    signals:
      visitors: {address: /visitors, type: int}
      button: {address: /button, type: bool}
      level: {address: /level}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
      on: {type: bool, safe: false}
  spot:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
"""


async def test_states_with_a_held_condition_an_event_and_a_two_minute_timeout():
    text = (
        HEAD
        + """\
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{set: wash.level, value: 10}]
        transitions: [{to: engaged, when: "panel.visitors > 0 for 0.5s"}]
      engaged:
        enter: [{set: wash.level, value: 80}]
        exit: [{set: spot.level, value: 5}]
        transitions:
          - {to: finale, on: panel.button}
          - {to: attract, after: 2min}
      finale:
        enter: [{set: wash.level, value: 100}]
        transitions: [{to: attract, after: 30s}]
"""
    )
    started = time.perf_counter()
    runtime, clock = await start_show(text)
    store, show = runtime.store, runtime.show
    assert show is not None
    assert show.machines["mode"].state == "attract" and store.get("states.mode").value == "attract"

    store.set("panel.visitors", 2)
    await clock.advance(0.4)
    store.set("panel.visitors", 0)  # gone before the 0.5 s hold: no transition
    await clock.advance(1.0)
    assert show.machines["mode"].state == "attract"
    store.set("panel.visitors", 1)
    await clock.advance(0.5)
    assert show.machines["mode"].state == "engaged"
    await clock.advance(119.9)
    assert show.machines["mode"].state == "engaged"
    await clock.advance(0.1)  # the two-minute timeout
    assert show.machines["mode"].state == "attract"
    assert commands(runtime, "wash") == [(0.0, {"level": 10}), (1.9, {"level": 80}), (121.9, {"level": 10})]
    assert commands(runtime, "spot") == [(121.9, {"level": 5})]

    store.set("panel.visitors", 3)
    await clock.advance(0.5)
    store.set("panel.button", True)  # the rising edge
    assert show.machines["mode"].state == "finale"
    await clock.advance(30.0)
    assert [state for _, state in show.machines["mode"].history] == [
        "attract",
        "engaged",
        "attract",
        "engaged",
        "finale",
        "attract",
    ]
    await runtime.stop()
    assert time.perf_counter() - started < 2.0  # three minutes of show time


async def test_a_rule_fires_once_per_rising_edge_with_hysteresis():
    text = (
        HEAD
        + """\
variables: {presses: 0}
rules:
  - when: "panel.level > 0.8"
    release: "panel.level < 0.2"
    do: [{set: spot.level, value: 100}, {var: presses, expr: "var.presses + 1"}]
    otherwise: [{set: spot.level, value: 0}]
"""
    )
    runtime, clock = await start_show(text)
    store = runtime.store
    for level in (0.9, 0.5, 0.95, 0.1, 0.85):
        store.set("panel.level", level)
        await clock.advance(0.1)
    assert store.get("var.presses").value == 2  # 0.95 came before the release, so it did not count
    assert [c for _, c in commands(runtime, "spot")] == [{"level": 100}, {"level": 0}, {"level": 100}]
    await runtime.stop()


CUES = (
    HEAD
    + """\
cues:
  evening:
    guard: 0.5s
    cues:
      - {id: "1", name: House to half, actions: [{set: wash.level, value: 50}], fade: 2s}
      - id: "2"
        pre_wait: 1s
        actions: [{set: spot.level, value: 100}]
        follow: auto-follow
      - {id: "3", actions: [{set: spot.level, value: 20, fade: 1s}], follow: auto-continue, post_wait: 3s}
      - {id: "4", actions: [{set: wash.on, value: true}]}
"""
)


async def test_go_with_pre_wait_auto_follow_and_auto_continue():
    runtime, clock = await start_show(CUES)
    show = runtime.show
    assert show is not None
    assert show.go() is True  # cue 1: a 2 s fade from 0 to 50 at 44 Hz
    await clock.advance(2.5)
    wash = commands(runtime, "wash")
    assert wash[-1] == (pytest.approx(2.0, abs=1 / 44), {"level": 50.0})
    assert 86 <= len(wash) <= 90  # 2 s at 44 Hz
    assert show.go() is True  # cue 2 after its 1 s pre-wait, then 3 follows, then 4 after 3 s
    await clock.advance(0.99)
    assert commands(runtime, "spot") == []
    await clock.advance(10.0)
    fired = [(round(t, 3), cue) for t, cue in show.cue_lists["evening"].fired]
    assert fired == [(0.0, "1"), (3.5, "2"), (3.5, "3"), (6.5, "4")]
    assert commands(runtime, "spot")[0] == (3.5, {"level": 100})
    assert commands(runtime, "spot")[-1] == (pytest.approx(4.5, abs=1 / 44), {"level": 20.0})
    assert commands(runtime, "wash")[-1] == (6.5, {"on": True})
    assert show.cue_lists["evening"].standby is None
    await runtime.stop()


async def test_a_double_go_inside_the_guard_time_is_ignored():
    runtime, clock = await start_show(CUES)
    show = runtime.show
    assert show is not None
    assert show.go() is True
    await clock.advance(0.3)
    assert show.go() is False  # 0.3 s after the last GO: a double press
    assert show.cue_lists["evening"].refused == 1
    await clock.advance(0.3)
    assert show.go() is True  # 0.6 s: a real second GO
    assert [cue for _, cue in show.cue_lists["evening"].fired] == ["1"]  # cue 2 is in its pre-wait
    show.back()
    show.back()
    assert show.status().cue_lists["evening"]["standby"] == "1"
    show.goto("4")
    assert show.status().cue_lists["evening"]["standby"] == "4"
    await runtime.stop()


async def test_panic_in_the_middle_of_a_fade():
    text = (
        HEAD
        + """\
cues:
  show:
    cues: [{id: "1", actions: [{set: wash.level, value: 100, fade: 10s}, {set: wash.on, value: true}]}]
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(5.0)
    midway = commands(runtime, "wash")[-1][1]["level"]
    assert 45 < midway < 55
    done = show.panic()  # default panic time: 1 s
    await clock.advance(1.0)
    assert done.done()
    wash = commands(runtime, "wash")
    assert wash[-1][0] <= 6.0 and wash[-1][1] == {"level": 0.0, "on": False}
    levels = [c["level"] for _, c in wash if "level" in c and _ > 5.0]
    assert levels == sorted(levels, reverse=True)  # a fade down, not a jump
    await clock.advance(20.0)
    assert commands(runtime, "wash")[-1][0] <= 6.0  # the cue's fade does not come back
    assert show.go() is False and runtime.store.get("show.panic").value is True
    show.reset()
    assert runtime.store.get("show.panic").value is False
    await runtime.stop()


async def test_timelines_and_presets():
    text = (
        HEAD
        + """\
presets:
  warm: {wash.level: 30, spot.level: 60}
timelines:
  rise:
    tracks:
      wash.level: [[0, 0], [2, 100], [4, 0]]
rules:
  - when: "panel.button"
    do: [{timeline: rise}, {delay: 5s}, {preset: warm, fade: 1s}]
"""
    )
    runtime, clock = await start_show(text)
    runtime.store.set("panel.button", True)
    await clock.advance(2.0)
    assert commands(runtime, "wash")[-1][1]["level"] == pytest.approx(100.0, abs=3)
    await clock.advance(2.1)
    assert commands(runtime, "wash")[-1][1] == {"level": 0.0}
    await clock.advance(2.0)
    assert commands(runtime, "spot")[-1][1] == {"level": 60.0}
    assert commands(runtime, "wash")[-1][1] == {"level": 30.0}
    await runtime.stop()


async def test_a_timeline_runs_its_actions_as_it_passes_them_and_check_knows_them():
    text = (
        HEAD
        + """\
variables:
  rounds: 0
timelines:
  show:
    loop: true
    length: 4s
    actions:
      - {at: 1s, do: [{set: spot.level, value: 80}, {var: rounds, expr: "var.rounds + 1"}]}
      - {at: 3s, do: [{set: spot.level, value: 0}]}
rules:
  - when: "panel.button"
    do: [{timeline: show}]
"""
    )
    runtime, clock = await start_show(text)
    runtime.store.set("panel.button", True)
    await clock.advance(1.2)
    assert commands(runtime, "spot")[-1][1] == {"level": 80.0}
    await clock.advance(2.0)
    assert commands(runtime, "spot")[-1][1] == {"level": 0.0}
    await clock.advance(6.0)  # two more rounds have begun: at 5 s and 9 s, the first action
    assert runtime.store.get("var.rounds").value == 3
    await runtime.stop()
    with pytest.raises(ExhibitInvalid, match="no device named `spots`"):
        validate_text(text.replace("{set: spot.level, value: 0}", "{set: spots.level, value: 0}"), "x.yaml", registry())


SCHEDULE = (
    HEAD
    + """\
schedule:
  timezone: Asia/Shanghai
  weekly:
    fri: "18:00-01:00"
    sat: "10:00-17:00"
  exceptions:
    - {date: 2026-10-03, closed: true, note: National Day holiday}
  on_open: [{set: wash.level, value: 70}]
  close_fade: 2s
"""
)


async def test_opening_hours_across_midnight_and_a_holiday():
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime.datetime(2026, 10, 2, 17, 0, tzinfo=shanghai)  # Friday; Saturday 3 October is a holiday
    runtime, clock = await start_show(SCHEDULE, wall=start.astimezone(datetime.UTC))
    store = runtime.store
    assert store.get("schedule.open").value is False
    await clock.advance(3600)  # 18:00 Friday
    assert store.get("schedule.open").value is True
    assert commands(runtime, "wash")[-1] == (3600.0, {"level": 70})
    await clock.advance(7 * 3600)  # 01:00 Saturday: the Friday opening ran past midnight, then closes
    assert store.get("schedule.open").value is False
    await clock.advance(3.0)
    assert commands(runtime, "wash")[-1][1] == {"level": 0.0, "on": False} or commands(runtime, "wash")[-1][1] == {
        "level": 0.0
    }
    await clock.advance(12 * 3600)  # 13:00 Saturday, normally open: a holiday
    assert store.get("schedule.open").value is False
    await runtime.stop()


ATTRACT_LOOP = (
    HEAD
    + """\
timelines:
  breathe:
    loop: true
    tracks:
      spot.level: [[0, 10], [2, 50], [4, 10]]
states:
  mode:
    initial: attract
    states:
      attract:
        enter: [{timeline: breathe}, {set: wash.on, value: true}]
        exit: [{timeline: breathe, do: stop}]
        transitions: [{to: engaged, when: "panel.visitors > 0"}]
      engaged:
        transitions: [{to: attract, when: "panel.visitors == 0"}]
schedule:
  timezone: Asia/Shanghai
  weekly:
    sat: "10:00-17:00"
  close_fade: 1s
"""
)


async def test_an_exhibit_that_opens_in_attract_breathes_again_without_waiting_for_a_visitor():
    # Closing time stops every timeline; at opening the current state's own timelines play again.
    shanghai = ZoneInfo("Asia/Shanghai")
    start = datetime.datetime(2026, 10, 10, 9, 0, tzinfo=shanghai)  # Saturday, an hour before opening
    runtime, clock = await start_show(ATTRACT_LOOP, wall=start.astimezone(datetime.UTC))
    await clock.advance(5.0)
    closed = len(commands(runtime, "spot"))
    await clock.advance(600)
    assert len(commands(runtime, "spot")) == closed  # closed: dark and still
    await clock.advance(3000)  # 10:00: open
    assert runtime.store.get("schedule.open").value is True
    await clock.advance(2.0)
    assert runtime.show is not None and runtime.show.timelines["breathe"].playing
    since = len(commands(runtime, "spot"))
    await clock.advance(4.0)
    levels = [values["level"] for _, values in commands(runtime, "spot")[since:]]
    assert max(levels) >= 45 and min(levels) <= 15  # a whole breath
    assert runtime.store.get("states.mode").value == "attract"
    await runtime.stop()


def test_expression_mistakes_are_found_at_check_time_with_their_column():
    text = (
        HEAD
        + """\
rules:
  - when: "panel.visitor > 0"
    do: [{set: wash.levle, value: 1}]
  - when: "panel.level > (0.5"
    do: [{cue: evenin}]
"""
    )
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, "show.yaml", registry())
    errors = [str(p) for p in caught.value.problems]
    line = len(HEAD.splitlines()) + 2
    assert f"show.yaml:{line}:12: unknown name `panel.visitor` (did you mean `panel.visitors`?)" in errors
    assert any(e.startswith(f"show.yaml:{line + 1}:") and "has no property `levle`" in e for e in errors)
    assert any(e.startswith(f"show.yaml:{line + 2}:") and "`)`" in e for e in errors)
    assert any(e.startswith(f"show.yaml:{line + 3}:") and "no cue list named `evenin`" in e for e in errors)


async def test_fan_out_gives_each_visitor_a_spot(tmp_path: Path):
    from types import SimpleNamespace

    text = (
        HEAD.replace("  spot:\n", "  spot1:\n")
        + """\
  spot2:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
"""
    )
    text = text.replace(
        "      level: {address: /level}\n",
        "      level: {address: /level}\n  body:\n    kind: pose\n    source: {replay: none.jsonl}\n",
    )
    reg = registry()
    from sensors.pose.driver import PoseSensorConfig

    class QuietPose(Sensor):  # a pose sensor whose visitors the test sets
        async def run(self) -> None:
            await asyncio.Event().wait()

    reg.add_sensor(DriverSpec("pose", PoseSensorConfig, QuietPose, QuietPose))
    text += 'mappings:\n  - {from: body.visitors, field: hand_height, to: "spot{slot}.level", input: [0, 1]}\n'
    clock = VirtualClock()
    (tmp_path / "none.jsonl").write_text("")  # never read: the test sets the visitors itself
    exhibit = validate_text(text, str(tmp_path / "show.yaml"), reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True), clock=clock)
    await runtime.start()

    def visitor(vid: int, height: float) -> SimpleNamespace:
        return SimpleNamespace(id=vid, features=SimpleNamespace(hand_height=height))

    runtime.store.set("body.visitors", (visitor(7, 0.5),))
    runtime.store.set("body.visitors", (visitor(7, 0.6), visitor(9, 1.0)))
    runtime.store.set("body.visitors", (visitor(9, 0.2),))  # visitor 7 leaves: spot1 goes back to 0
    await clock.advance(0.1)
    assert [c for _, c in commands(runtime, "spot1")][-3:] == [{"level": 50.0}, {"level": 60.0}, {"level": 0.0}]
    assert [c for _, c in commands(runtime, "spot2")] == [{"level": 100.0}, {"level": 20.0}]
    await runtime.stop()


async def test_a_mapping_with_when_only_drives_while_its_condition_holds():
    text = (
        HEAD
        + """\
variables: {live: false}
mappings:
  - {from: panel.level, to: wash.level, when: "var.live"}
"""
    )
    runtime, clock = await start_show(text)
    runtime.store.set("panel.level", 0.5)
    runtime.store.set("var.live", True)
    runtime.store.set("panel.level", 0.7)
    await clock.advance(0.1)
    assert [c for _, c in commands(runtime, "wash")] == [{"level": 70.0}]
    await runtime.stop()


MOTION = (
    HEAD
    + """\
  turntable:
    kind: mqtt
    motion: true
    properties:
      speed: {type: float, range: [0, 10], safe: 0}
safety:
  estop: [panel.button]
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", actions: [{arm: turntable}, {set: turntable.speed, value: 2}]}
      - {id: "2", actions: [{set: turntable.speed, value: 5}, {set: wash.level, value: 80}]}
"""
)


async def test_motion_needs_arming_and_the_estop_latches_until_a_reset_that_resumes_nothing():
    runtime, clock = await start_show(MOTION)
    show = runtime.show
    assert show is not None
    runtime.fades.set_now("turntable", "speed", 3.0)  # not armed yet: blocked
    assert commands(runtime, "turntable") == []
    show.go()  # cue 1 arms it and starts it turning
    assert commands(runtime, "turntable") == [(0.0, {"speed": 2})]
    await clock.advance(1.0)
    runtime.store.set("panel.button", True)  # the e-stop input
    assert commands(runtime, "turntable")[-1] == (1.0, {"speed": 0})
    assert show.status().estop and show.status().armed == []
    show.go()  # cue 2: the lights follow, the motion command is blocked
    await clock.advance(0.1)
    assert commands(runtime, "turntable")[-1] == (1.0, {"speed": 0})
    assert commands(runtime, "wash")[-1][1] == {"level": 80}
    assert show.arm("turntable") is False  # cannot arm while latched
    show.reset_estop()
    await clock.advance(5.0)
    assert commands(runtime, "turntable")[-1] == (1.0, {"speed": 0})  # the reset resumed nothing
    assert show.status().armed == [] and not show.status().estop
    assert show.arm("turntable") is True
    await runtime.stop()


def test_arming_something_that_does_not_move_is_a_check_error():
    text = MOTION.replace("{arm: turntable}", "{arm: wash}")
    with pytest.raises(ExhibitInvalid) as caught:
        validate_text(text, "show.yaml", registry())
    assert any("`wash` is not a motion device (expected one of: `turntable`)" in str(p) for p in caught.value.problems)


async def test_pause_holds_waits_and_fades_and_resume_goes_on():
    text = (
        HEAD
        + """\
cues:
  show:
    cues:
      - {id: "1", actions: [{set: wash.level, value: 100, fade: 4s}], follow: auto-continue, post_wait: 2s}
      - {id: "2", actions: [{set: spot.level, value: 50}]}
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(1.0)
    show.pause()
    held = commands(runtime, "wash")[-1][1]["level"]
    await clock.advance(10.0)
    assert commands(runtime, "wash")[-1][1]["level"] == held and commands(runtime, "spot") == []
    show.resume()
    await clock.advance(0.99)
    assert commands(runtime, "spot") == []  # 1 s of the 2 s post-wait had passed before the pause
    await clock.advance(0.02)
    assert commands(runtime, "spot")[0][1] == {"level": 50}
    await clock.advance(3.0)
    assert commands(runtime, "wash")[-1][1] == {"level": 100.0}
    await runtime.stop()


async def test_rules_send_osc_and_events():
    import socket as sockets

    from pythonosc.osc_message import OscMessage

    receiver = sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    port = receiver.getsockname()[1]
    text = (
        HEAD
        + f"""\
rules:
  - when: "panel.button"
    do: [{{osc: /cue/12/start, port: {port}, args: [1, "灯"]}}, {{event: scene.burst, payload: 3}}]
"""
    )
    runtime, _clock = await start_show(text)
    bursts: list[object] = []
    runtime.store.subscribe("scene.burst", lambda s: bursts.append(s.value))
    runtime.store.set("panel.button", True)
    message = OscMessage(receiver.recv(1024))
    assert message.address == "/cue/12/start" and message.params == [1, "灯"]
    assert bursts == [3]
    receiver.close()
    await runtime.stop()


async def test_the_panic_time_comes_from_the_exhibit():
    text = (
        HEAD + "safety: {panic_time: 3s}\ncues:\n  s:\n    cues: [{id: '1', actions: [{set: wash.level, value: 90}]}]\n"
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    show.go()
    done = show.panic()
    await clock.advance(2.0)
    assert not done.done() and commands(runtime, "wash")[-1][1]["level"] > 0
    await clock.advance(1.0)
    assert done.done() and commands(runtime, "wash")[-1][1]["level"] == 0.0
    await runtime.stop()


TWO_MOTORS = (
    HEAD
    + """\
  turntable:
    kind: mqtt
    motion: true
    properties:
      speed: {type: float, range: [0, 10], safe: 0}
  winch:
    kind: mqtt
    motion: true
    properties:
      height: {type: float, range: [0, 5], safe: 0}
cues:
  show:
    guard: 0s
    cues:
      - id: "1"
        actions: [{arm: turntable}, {arm: winch}, {set: turntable.speed, value: 2}, {set: winch.height, value: 3}]
      - id: "2"
        actions: [{set: turntable.speed, value: 5}, {set: winch.height, value: 4}, {set: wash.level, value: 80}]
"""
)


async def test_panic_disarms_every_motion_device_and_a_reset_re_arms_none():
    runtime, clock = await start_show(TWO_MOTORS)
    show = runtime.show
    assert show is not None
    show.go()  # cue 1 arms both and moves them
    assert show.status().armed == ["turntable", "winch"]
    assert commands(runtime, "turntable") == [(0.0, {"speed": 2})]
    await clock.advance(1.0)
    done = show.panic()
    assert show.status().armed == []  # at once, not when the fades end
    assert commands(runtime, "turntable")[-1] == (1.0, {"speed": 0})  # stopped at once, not coasting
    assert commands(runtime, "winch")[-1] == (1.0, {"height": 0})
    await clock.advance(1.0)
    assert done.done() and show.status().armed == []
    assert [c for t, c in commands(runtime, "turntable") if t >= 1.0] == [{"speed": 0}]
    assert [c for t, c in commands(runtime, "winch") if t >= 1.0] == [{"height": 0}]
    show.reset()
    assert show.status().armed == [] and not show.status().panic
    assert show.go() is True  # cue 2: the lights follow, the motors stay still
    await clock.advance(1.0)
    assert commands(runtime, "wash")[-1] == (2.0, {"level": 80})
    assert commands(runtime, "turntable")[-1] == (1.0, {"speed": 0})
    assert commands(runtime, "winch")[-1] == (1.0, {"height": 0})
    assert show.status().armed == []
    assert show.arm("turntable") is True  # only a deliberate re-arm lets it move again
    assert show.status().armed == ["turntable"]
    await runtime.stop()


MIXED = (
    HEAD
    + """\
  turntable:
    kind: mqtt
    profile: {profile: motor, soft_limits: [0, 360], max_speed: 10, max_accel: 100}
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: turntable.enabled, value: true}]}
      - id: "2"
        actions: [{set: turntable.speed, value: 5, fade: 1s}, {delay: 0.5s}, {set: turntable.enabled, value: false}]
      - {id: "3", actions: [{set: turntable.speed, value: 0}]}
"""
)


async def test_a_command_mixing_safe_and_moving_values_does_not_reach_a_disarmed_motor():
    runtime, clock = await start_show(MIXED)
    show = runtime.show
    assert show is not None
    show.go()  # cue 1: not armed, blocked
    await clock.advance(1.0)
    show.go()  # cue 2: at 20 set()s a second, `enabled: false` goes out with a step of the fade up
    await clock.advance(2.0)
    assert commands(runtime, "turntable") == []
    assert runtime.safety.blocked > 10  # cue 1 and the steps of the fade
    show.go()  # cue 3: the safe state only, which always passes
    await clock.advance(1.0)
    assert commands(runtime, "turntable") == [(3.0, {"speed": 0})]
    await runtime.stop()


async def test_panic_stops_playing_timelines_and_nothing_of_them_is_sent_afterwards():
    import socket as sockets

    receiver = sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    text = (
        HEAD
        + f"""\
  td:
    kind: osc
    port: {port}
    properties:
      intensity: {{address: /intensity}}
timelines:
  rise:
    tracks:
      wash.level: [[0, 0], [10, 100]]
  shimmer:
    loop: true
    tracks:
      td.intensity: [[0, 0], [2, 1], [4, 0]]
cues:
  show:
    cues: [{{id: "1", actions: [{{timeline: rise}}, {{timeline: shimmer}}]}}]
"""
    )
    runtime, clock = await start_show(text)
    show = runtime.show
    assert show is not None
    td = runtime.devices["td"]
    assert isinstance(td, OscOutDevice)  # no safe value: PANIC's fade to safe leaves it alone
    show.go()
    await clock.advance(3.0)
    assert show.status().timelines == {
        "rise": {"playing": True, "position": 3.0},
        "shimmer": {"playing": True, "position": 3.0},
    }
    assert td.sent > 100 and 25 < commands(runtime, "wash")[-1][1]["level"] < 35
    show.panic()
    await clock.advance(1.0)
    wash, sent = len(commands(runtime, "wash")), td.sent
    assert commands(runtime, "wash")[-1] == (4.0, {"level": 0})
    await clock.advance(30.0)  # well past the end of `rise`, and many rounds of `shimmer`
    assert len(commands(runtime, "wash")) == wash and td.sent == sent
    assert show.status().timelines == {  # stopped and rewound
        "rise": {"playing": False, "position": 0.0},
        "shimmer": {"playing": False, "position": 0.0},
    }
    assert all(timeline.done.is_set() for timeline in show.timelines.values())
    show.reset()
    await clock.advance(30.0)  # a reset plays nothing again
    assert len(commands(runtime, "wash")) == wash and td.sent == sent
    assert not any(status["playing"] for status in show.status().timelines.values())
    receiver.close()
    await runtime.stop()


BACK_CUES = (
    HEAD
    + """\
cues:
  show:
    guard: 0s
    cues:
      - {id: "1", actions: [{set: spot.level, value: 10}]}
      - {id: "2", actions: [{set: spot.level, value: 20}]}
      - {id: "3", actions: [{set: spot.level, value: 30}]}
      - {id: "4", actions: [{set: spot.level, value: 40}]}
"""
)


async def test_back_steps_the_standby_back_one_cue_and_stops_at_the_first():
    runtime, _clock = await start_show(BACK_CUES)
    show = runtime.show
    assert show is not None

    def standby() -> str | None:
        return show.status().cue_lists["show"]["standby"]

    show.goto("3")
    show.back()
    assert standby() == "2"
    show.back()
    assert standby() == "1"
    show.back()  # at the first cue: it stays there
    assert standby() == "1"
    show.go()
    show.go()  # cues 1 and 2 fired: 3 on standby
    assert standby() == "3"
    show.back()
    assert standby() == "2"
    show.go()  # BACK then GO fires cue 2 again
    assert [cue for _, cue in show.cue_lists["show"].fired] == ["1", "2", "2"]
    assert standby() == "3"
    await runtime.stop()


async def test_a_flickering_held_condition_fires_half_a_second_after_it_last_became_true():
    text = (
        HEAD
        + """\
rules:
  - when: "panel.level > 0.5 for 0.5s"
    do: [{set: spot.level, value: 100}]
    otherwise: [{set: spot.level, value: 0}]
"""
    )
    runtime, clock = await start_show(text)
    store = runtime.store
    for at, level in ((0.0, 0.9), (0.2, 0.1), (0.3, 0.9), (0.45, 0.95), (0.6, 0.1), (0.7, 0.8)):
        await clock.advance(at - clock.now())
        store.set("panel.level", level)
    await clock.advance(1.19 - clock.now())
    assert commands(runtime, "spot") == []
    await clock.advance(2.0)
    assert commands(runtime, "spot") == [(1.2, {"level": 100})]
    await runtime.stop()


ARMED_AT_START = TWO_MOTORS.replace("cues:\n  show:", "safety:\n  armed_at_start: [turntable]\ncues:\n  show:", 1)


async def test_a_panic_reset_re_arms_not_even_the_devices_armed_at_start():
    runtime, clock = await start_show(ARMED_AT_START)
    show = runtime.show
    assert show is not None
    assert show.status().armed == ["turntable"]
    show.panic()
    await clock.advance(1.5)
    show.reset()
    assert show.status().armed == []  # motion waits for a deliberate arm, as after an e-stop
    await runtime.stop()


TIMELINES = (
    HEAD
    + """timelines:
  rise: {tracks: {wash.level: [[0, 0], [4, 100]]}}
  glow: {tracks: {spot.level: [[0, 10], [4, 50]]}}
"""
)


async def test_resume_continues_what_pause_froze_and_starts_nothing_that_was_stopped():
    runtime, clock = await start_show(TIMELINES)
    show = runtime.show
    assert show is not None
    show.timelines["rise"].play()
    await clock.advance(1.0)
    show.pause()
    await clock.advance(1.0)
    show.resume()
    assert show.timelines["rise"].playing and not show.timelines["glow"].playing
    await clock.advance(0.5)
    assert show.timelines["rise"].position == pytest.approx(1.5)
    show.panic()
    await clock.advance(1.5)
    show.reset()
    show.resume()  # nothing is paused: nothing plays
    await clock.advance(1.0)
    assert not show.timelines["rise"].playing and not show.timelines["glow"].playing
    assert commands(runtime, "wash")[-1] == (pytest.approx(3.5), {"level": 0})  # the PANIC's fade, then nothing
    await runtime.stop()


WINCH = (
    HEAD
    + """\
  winch:
    kind: mqtt
    profile: {profile: motor, soft_limits: [0, 360], max_speed: 10, max_accel: 100}
safety:
  armed_at_start: [winch]
cues:
  show:
    guard: 0s
    cues:
      - id: "1"
        actions:
          - {set: winch.enabled, value: true}
          - {set: winch.position, value: 10}
          - {delay: 0.2s}
          - {set: winch.position, value: 300, fade: 20s}
"""
)


@pytest.mark.parametrize("stop", ["estop", "panic"])
async def test_a_winch_lowered_by_a_position_fade_gets_its_safe_state_at_once(stop: str):
    runtime, clock = await start_show(WINCH)
    show = runtime.show
    assert show is not None
    show.go()
    await clock.advance(2.0)
    moving = commands(runtime, "winch")
    assert moving[-1][1].get("position", 0) > 10  # lowering
    getattr(show, stop)()
    await clock.advance(3.0)
    after = [command for t, command in commands(runtime, "winch") if t >= 2.0]
    assert after[:1] == [runtime.safety.motion["winch"]]  # the safe state, whole, at once
    assert all("position" not in command for command in after)  # and no step of the fade after it
    await runtime.stop()
