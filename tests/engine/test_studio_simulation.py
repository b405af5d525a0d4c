"""The studio's simulation controls on a real runtime on virtual time: pinned inputs (held and restored
under their sensor), events fired by hand, a pretended wall time that the opening hours follow at once,
and the refusals: a live show, a wrong role, unknown names, wrong types, out-of-range numbers, bad times."""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.catalogue import ESTOP_SIGNAL, PANIC_SIGNAL
from engine.clock import VirtualClock
from engine.control.commands import COMMANDS, Actor, Reply
from engine.runtime import Runtime, RuntimeOptions
from engine.signals import ProtectedSignal, Signal, SignalStore
from engine.studio.simulation import simulation_state
from engine.validate import validate_text
from launcher import build_registry
from tests.support.show_harness import commands, registry, start_show

EXHIBIT = """\
format_version: 1
id: studio
title: {en: Studio, zh: 工作室}
sensors:
  panel:
    kind: osc
    signals:
      level: {address: /level, range: [0, 1]}
      gain: {address: /gain}
      visitors: {address: /visitors, type: int, range: [0, 20]}
      button: {address: /button, type: bool}
      mood: {address: /mood, type: str}
      stop: {address: /stop, type: bool}
devices:
  wash:
    kind: mqtt
    properties:
      level: {type: float, range: [0, 100], safe: 0}
variables:
  visits: 0
safety:
  estop: [panel.stop]
rules:
  - when: panel.button
    do: [{event: scene.burst}]
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

SHANGHAI = ZoneInfo("Asia/Shanghai")
FRIDAY_FIVE = datetime.datetime(2026, 10, 2, 17, 0, tzinfo=SHANGHAI)  # closed until 18:00; Saturday is a holiday
ADMIN = Actor("ada", "admin", "console", "127.0.0.1")
OPERATOR = Actor("ana", "operator", "console", "127.0.0.1")
SIM_COMMANDS: dict[str, dict[str, Any]] = {
    "sim/input": {"signal": "panel.level", "value": 0.5},
    "sim/input/release": {},
    "sim/visitor/add": {"x": 0.5},
    "sim/visitor/pose": {"id": 1, "x": 0.5},
    "sim/visitor/remove": {"id": 1},
    "sim/recording": {"muted": True},
    "sim/event": {"signal": "scene.burst"},
    "sim/clock": {"at": "2026-10-02T18:55"},
}


def run(runtime: Runtime, name: str, params: dict[str, Any] | None = None, actor: Actor = ADMIN) -> Reply:
    return runtime.control.execute(name, params or {}, actor)


def refused(reply: Reply, code: str, *words: str) -> None:
    assert not reply.ok and reply.code == code, reply
    assert " / " in reply.error, f"not bilingual: {reply.error}"
    for word in words:
        assert word in reply.error, reply.error


async def simulated() -> tuple[Runtime, VirtualClock]:
    return await start_show(EXHIBIT, wall=FRIDAY_FIVE.astimezone(datetime.UTC))


# --- the store ------------------------------------------------------------------------------------------------


def test_a_pinned_signal_holds_what_its_sensor_sets_and_release_restores_the_latest():
    store = SignalStore(VirtualClock())
    store.declare("panel.level", "float")
    seen: list[float] = []
    store.subscribe("panel.level", lambda signal: seen.append(signal.value))
    store.set("panel.level", 0.2)
    store.override("panel.level", 0.9)
    assert store.get("panel.level").value == 0.9 and seen == [0.2, 0.9]
    assert dict(store.overrides) == {"panel.level": 0.9}

    store.set("panel.level", 0.3)  # the simulator goes on: held, not applied, nobody told
    store.set("panel.level", 0.4)
    assert store.get("panel.level").value == 0.9 and seen == [0.2, 0.9]

    store.override("panel.level", 0.7)  # pinned again: a new value, the held one kept
    assert store.release("panel.level") is True
    assert store.get("panel.level").value == 0.4 and seen == [0.2, 0.9, 0.7, 0.4]
    assert dict(store.overrides) == {}
    assert store.release("panel.level") is False

    store.set("panel.level", 0.5)  # unpinned: applied as ever
    assert store.get("panel.level").value == 0.5 and seen[-1] == 0.5


def test_release_without_a_new_value_restores_the_one_before_and_its_staleness():
    store = SignalStore(VirtualClock())
    store.declare("panel.level", "float")
    store.declare("panel.button", "bool")
    store.set("panel.level", 0.25)
    store.override("panel.level", 1.0)
    store.release("panel.level")
    assert store.get("panel.level").value == 0.25 and not store.get("panel.level").stale

    store.override("panel.button", True)  # never set by its sensor: stale again on release
    assert store.get("panel.button").stale is False
    store.release("panel.button")
    assert store.get("panel.button").value is None and store.get("panel.button").stale


def test_a_pinned_signal_stays_fresh_while_its_source_goes_offline_and_is_stale_on_release():
    store = SignalStore(VirtualClock())
    store.declare("panel.level", "float")
    store.declare("panel.health.status", "str")
    store.set("panel.level", 0.2)
    store.override("panel.level", 0.6)
    store.mark_stale("panel.")
    assert store.get("panel.level").stale is False
    store.release("panel.level")
    assert store.get("panel.level").stale is True and store.get("panel.level").value == 0.2


def test_overrides_are_type_checked_and_read_only():
    store = SignalStore(VirtualClock())
    store.declare("panel.level", "float")
    store.declare("body.wave", "event")
    store.declare("body.visitors", "object")
    with pytest.raises(TypeError, match="float, got int"):
        store.override("panel.level", 1)
    with pytest.raises(TypeError, match="only float, int, bool and str"):
        store.override("body.wave", 1)
    with pytest.raises(TypeError):
        store.override("body.visitors", "x")
    store.override("panel.level", 1.0)
    with pytest.raises(TypeError):
        store.set("panel.level", "loud")  # a sensor's mistake is still said while the signal is pinned
    with pytest.raises(TypeError):
        store.overrides["panel.level"] = 0.0  # type: ignore[index]


def test_a_protected_signal_is_never_pinned_and_protecting_a_pinned_one_releases_it(
    caplog: pytest.LogCaptureFixture,
):
    store = SignalStore(VirtualClock())
    store.declare("panel.level", "float")
    store.declare("panel.button", "bool")
    seen: list[Any] = []
    store.subscribe("panel.button", lambda signal: seen.append(signal.value))
    store.override("panel.button", False)
    store.override("panel.level", 0.5)
    store.set("panel.button", True)  # held while pinned
    with caplog.at_level(logging.WARNING, logger="engine.signals"):
        assert store.protect({"panel.button", "show.panic"}) == ["panel.button"]
        assert store.protect({"panel.button", "show.panic"}) == []  # released once, said once
    assert [r.getMessage() for r in caplog.records if "panel.button" in r.getMessage()] == [
        "released the pin on panel.button: part of the PANIC and e-stop chain now, never pinned"
    ]
    assert seen == [False, True] and store.get("panel.button").value is True  # its source's value reaches logic
    assert dict(store.overrides) == {"panel.level": 0.5} and store.protected == {"panel.button", "show.panic"}
    with pytest.raises(ProtectedSignal, match="never pinned / "):
        store.override("panel.button", False)
    store.set("panel.button", False)  # its source sets it as ever
    assert store.get("panel.button").value is False and dict(store.overrides) == {"panel.level": 0.5}
    store.protect(set())  # in place of the set before
    store.override("panel.button", True)
    assert store.get("panel.button").value is True


# --- a live show refuses every one ------------------------------------------------------------------------------


async def test_a_live_show_refuses_every_simulation_command_and_nothing_changes():
    reg = registry()
    clock = VirtualClock(wall=FRIDAY_FIVE.astimezone(datetime.UTC))
    exhibit = validate_text(EXHIBIT, "studio.yaml", reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=False), clock=clock)
    await runtime.start()
    try:
        fired: list[Signal] = []
        runtime.store.subscribe("scene.burst", fired.append)
        runtime.store.set("panel.level", 0.2)
        assert set(SIM_COMMANDS) == {name for name in COMMANDS if name.startswith("sim/")}
        for name, params in SIM_COMMANDS.items():
            assert COMMANDS[name].role == "admin"
            refused(run(runtime, name, params), "forbidden", "simulated run", "模拟")
        run(runtime, "sim/input", {"signal": "panel.level"})  # a release, too
        assert runtime.store.get("panel.level").value == 0.2 and dict(runtime.store.overrides) == {}
        assert fired == [] and runtime.clock.pretending is False
        state = simulation_state(runtime)
        assert state["simulated"] is False and state["controls"] == [] and state["pose"] == {}
        assert state["clock"] == {"at": None, "timezone": "Asia/Shanghai"}
    finally:
        await runtime.stop()


async def test_simulation_commands_need_the_admin_role():
    runtime, _ = await simulated()
    try:
        for name, params in SIM_COMMANDS.items():
            refused(run(runtime, name, params, OPERATOR), "forbidden", "admin")
        assert dict(runtime.store.overrides) == {}
    finally:
        await runtime.stop()


# --- inputs -------------------------------------------------------------------------------------------------


async def test_sim_input_pins_an_input_over_its_sensor_and_null_releases_it():
    runtime, clock = await simulated()
    store = runtime.store
    try:
        store.set("panel.level", 0.2)
        reply = run(runtime, "sim/input", {"signal": "panel.level", "value": 1})  # an int for a float: coerced
        assert reply.ok and reply.data == {"signal": "panel.level", "overridden": True, "value": 1.0}
        assert store.get("panel.level").value == 1.0 and type(store.get("panel.level").value) is float
        store.set("panel.level", 0.3)  # what the simulated panel sends meanwhile is held
        await clock.advance(1.0)
        assert store.get("panel.level").value == 1.0
        reply = run(runtime, "sim/input", {"signal": "panel.level", "value": None})
        assert reply.ok and reply.data == {"signal": "panel.level", "overridden": False, "value": 0.3}
        assert store.get("panel.level").value == 0.3

        assert run(runtime, "sim/input", {"signal": "panel.visitors", "value": 3.0}).data["value"] == 3
        assert run(runtime, "sim/input", {"signal": "panel.button", "value": True}).data["value"] is True
        assert run(runtime, "sim/input", {"signal": "panel.mood", "value": "calm"}).data["value"] == "calm"
        assert run(runtime, "sim/input", {"signal": "panel.gain", "value": 250}).data["value"] == 250.0  # no range
        assert dict(store.overrides) == {
            "panel.visitors": 3,
            "panel.button": True,
            "panel.mood": "calm",
            "panel.gain": 250.0,
        }
        assert type(store.get("panel.visitors").value) is int
    finally:
        await runtime.stop()


async def test_sim_input_refuses_unknown_names_wrong_types_ranges_and_what_is_not_an_input():
    runtime, _ = await simulated()
    try:
        refused(run(runtime, "sim/input", {"signal": "panel.levle", "value": 1}), "not_found", "`panel.level`")
        refused(run(runtime, "sim/input", {"signal": "panel.level", "value": 2}), "bad_request", "within [0, 1]")
        refused(run(runtime, "sim/input", {"signal": "panel.level", "value": "loud"}), "bad_request", "a number")
        refused(run(runtime, "sim/input", {"signal": "panel.visitors", "value": 1.5}), "bad_request", "whole number")
        refused(run(runtime, "sim/input", {"signal": "panel.visitors", "value": 21}), "bad_request", "[0, 20]")
        refused(run(runtime, "sim/input", {"signal": "panel.button", "value": "maybe"}), "bad_request", "true or false")
        refused(run(runtime, "sim/input", {"signal": "panel.mood", "value": 3}), "bad_request", "text")
        refused(run(runtime, "sim/input", {"signal": "panel.health.status", "value": "ok"}), "forbidden", "health")
        refused(run(runtime, "sim/input", {"signal": "show.panic", "value": True}), "forbidden", "e-stop")
        refused(run(runtime, "sim/input", {"signal": "safety.estop", "value": False}), "forbidden", "e-stop")
        refused(run(runtime, "sim/input", {"signal": "panel.stop", "value": False}), "forbidden", "e-stop")
        refused(run(runtime, "sim/input", {"signal": "schedule.open", "value": True}), "forbidden", "sensor")
        refused(run(runtime, "sim/input", {"signal": "var.visits", "value": 3}), "forbidden", "sensor")
        refused(run(runtime, "sim/input", {"signal": "scene.burst", "value": 1}), "bad_request", "sim/event")
        refused(run(runtime, "sim/input", {"value": 1}), "bad_request", "`signal`")
        assert dict(runtime.store.overrides) == {}
    finally:
        await runtime.stop()


POSE_EXHIBIT = """\
format_version: 1
id: posey
title: {en: Posey, zh: 姿态}
sensors:
  body:
    kind: pose
    source: {camera: 0}
    num_poses: 2
safety:
  estop: [visitors.nearest.both_hands_up]
"""


async def test_an_estop_trigger_named_by_an_alias_is_never_pinned():
    reg = build_registry()
    exhibit = validate_text(POSE_EXHIBIT, "posey.yaml", reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True, console=False, render="off"))
    await runtime.start()
    try:
        reply = run(runtime, "sim/input", {"signal": "body.nearest.both_hands_up", "value": False})
        refused(reply, "forbidden", "e-stop", "紧急停止")
        refused(run(runtime, "sim/input", {"signal": "visitors.nearest.both_hands_up", "value": False}), "forbidden")
        assert dict(runtime.store.overrides) == {}
        assert {PANIC_SIGNAL, ESTOP_SIGNAL, "body.nearest.both_hands_up"} <= runtime.store.protected
        names = {c["name"] for c in simulation_state(runtime)["controls"]}
        assert "body.nearest.both_hands_up" not in names and "body.nearest.hands_raised" in names
    finally:
        await runtime.stop()


async def test_sim_visitor_add_refuses_more_visitors_than_the_pose_sensor_tracks():
    reg = build_registry()
    exhibit = validate_text(POSE_EXHIBIT, "posey.yaml", reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True, console=False, render="off"))
    await runtime.start()
    try:
        assert run(runtime, "sim/visitor/add", {}).ok and run(runtime, "sim/visitor/add", {"x": 0.3}).ok
        refused(run(runtime, "sim/visitor/add", {"x": 0.7}), "conflict", "at most 2", "num_poses", "上限")
        assert [v["id"] for v in simulation_state(runtime)["pose"]["body"]["visitors"]] == [1, 2]
        assert run(runtime, "sim/visitor/remove", {"id": 1}).ok
        assert run(runtime, "sim/visitor/add", {}).data["id"] == 3
    finally:
        await runtime.stop()


async def test_a_reload_that_makes_a_pinned_input_an_estop_trigger_releases_the_pin_and_the_estop_latches():
    runtime, clock = await simulated()
    store = runtime.store
    try:
        assert run(runtime, "sim/input", {"signal": "panel.button", "value": False}).ok
        store.set("panel.button", True)  # the visitor presses it: masked by the pin
        assert store.get("panel.button").value is False
        newer = validate_text(
            EXHIBIT.replace("estop: [panel.stop]", "estop: [panel.stop, panel.button]"), "s.yaml", registry()
        )
        assert runtime.reload(newer)
        await clock.advance(0)
        assert dict(store.overrides) == {} and store.get("panel.button").value is True
        assert runtime.show is not None and runtime.show.status().estop is True
        assert runtime.show.status().estop_by == "panel.button"
        refused(run(runtime, "sim/input", {"signal": "panel.button", "value": False}), "forbidden", "e-stop")
    finally:
        await runtime.stop()


async def test_a_reload_releases_pins_on_what_can_no_longer_be_pinned():
    runtime, clock = await simulated()
    store = runtime.store
    try:
        assert run(runtime, "sim/input", {"signal": "panel.level", "value": 0.5}).ok
        store.override("var.visits", 5)  # not an input (pinned behind the studio's back): never kept by a reload
        assert runtime.reload(validate_text(EXHIBIT, "s.yaml", registry()))
        await clock.advance(0)
        assert dict(store.overrides) == {"panel.level": 0.5}
        assert store.get("var.visits").value == 0
    finally:
        await runtime.stop()


async def test_sim_input_release_releases_every_pin():
    runtime, _ = await simulated()
    store = runtime.store
    try:
        store.set("panel.level", 0.2)
        assert run(runtime, "sim/input", {"signal": "panel.level", "value": 0.9}).ok
        assert run(runtime, "sim/input", {"signal": "panel.mood", "value": "calm"}).ok
        reply = run(runtime, "sim/input/release")
        assert reply.ok and reply.data == {"released": ["panel.level", "panel.mood"]}
        assert dict(store.overrides) == {} and store.get("panel.level").value == 0.2
        assert run(runtime, "sim/input/release").data == {"released": []}
        assert [entry["action"] for entry in runtime.control.audit.recent][-2:] == ["sim/input/release"] * 2
    finally:
        await runtime.stop()


# --- events -------------------------------------------------------------------------------------------------


async def test_sim_event_fires_an_event_with_its_payload():
    runtime, _ = await simulated()
    try:
        fired: list[Any] = []
        runtime.store.subscribe("scene.burst", lambda signal: fired.append(signal.value))
        assert run(runtime, "sim/event", {"signal": "scene.burst", "payload": 7}).data == {
            "signal": "scene.burst",
            "payload": 7,
        }
        assert run(runtime, "sim/event", {"signal": "scene.burst"}).ok
        assert fired == [7, None]
        refused(run(runtime, "sim/event", {"signal": "scene.brust"}), "not_found", "`scene.burst`")
        refused(run(runtime, "sim/event", {"signal": "panel.level"}), "bad_request", "not an event")
    finally:
        await runtime.stop()


# --- the pretended clock ----------------------------------------------------------------------------------------


async def test_a_pretended_time_opens_and_closes_at_once_and_runs_on_from_there():
    runtime, clock = await simulated()
    store = runtime.store
    try:
        assert store.get("schedule.open").value is False  # Friday 17:00
        reply = run(runtime, "sim/clock", {"at": "2026-10-02T18:55"})  # no offset: Beijing time
        assert reply.ok and reply.data == {"at": "2026-10-02T18:55:00+08:00", "timezone": "Asia/Shanghai"}
        await clock.advance(0)
        assert store.get("schedule.open").value is True
        assert commands(runtime, "wash")[-1] == (0.0, {"level": 70})  # on_open ran at once

        assert run(runtime, "sim/clock", {"at": "2026-10-03T05:00:00Z"}).ok  # 13:00 on the holiday Saturday
        await clock.advance(0)
        assert store.get("schedule.open").value is False

        assert run(runtime, "sim/clock", {"at": "2026-10-02T17:59:50+08:00"}).ok
        await clock.advance(5)
        assert store.get("schedule.open").value is False
        assert simulation_state(runtime)["clock"]["at"] == "2026-10-02T17:59:55+08:00"
        await clock.advance(5)  # the pretended time runs on: 18:00 opens
        assert store.get("schedule.open").value is True

        reply = run(runtime, "sim/clock", {"at": None})  # the true time: Friday 17:00 and 10 s, closed
        assert reply.ok and reply.data["at"] is None and not clock.pretending
        await clock.advance(0)
        assert store.get("schedule.open").value is False
        await clock.advance(3600)  # and the true opening comes as ever
        assert store.get("schedule.open").value is True
    finally:
        await runtime.stop()


async def test_sim_clock_refuses_what_is_not_a_time():
    runtime, clock = await simulated()
    try:
        refused(run(runtime, "sim/clock", {"at": "tomorrow at seven"}), "bad_request", "ISO 8601")
        refused(run(runtime, "sim/clock", {"at": "2026-13-01T10:00"}), "bad_request", "ISO 8601")
        refused(run(runtime, "sim/clock", {"at": "9999-12-31T23:59"}), "bad_request", "out of range")
        assert not clock.pretending
    finally:
        await runtime.stop()


# --- what the studio reads ----------------------------------------------------------------------------------------


async def test_the_simulation_state_lists_controls_overrides_and_the_clock_as_json():
    runtime, _ = await simulated()
    try:
        run(runtime, "sim/input", {"signal": "panel.level", "value": 0.5})
        run(runtime, "sim/clock", {"at": "2026-10-01T09:30"})
        refused(run(runtime, "sim/visitor/add", {}), "bad_request", "pose sensor")
        refused(run(runtime, "sim/visitor/add", {"sensor": "body"}), "not_found", "no pose sensor")
        state = simulation_state(runtime)
        json.dumps(state, allow_nan=False)
        assert state["simulated"] is True
        assert state["overrides"] == {"panel.level": 0.5}
        assert state["pose"] == {}
        assert state["clock"] == {"at": "2026-10-01T09:30:00+08:00", "timezone": "Asia/Shanghai"}
        controls = {c["name"]: c for c in state["controls"]}
        assert controls["panel.level"] | {"meaning": ""} == {
            "name": "panel.level",
            "type": "float",
            "range": [0.0, 1.0],
            "control": "fader",
            "meaning": "",
            "owner": "panel",
            "value": 0.5,
        }
        assert (controls["panel.gain"]["control"], controls["panel.gain"]["range"]) == ("number", None)
        assert (controls["panel.visitors"]["control"], controls["panel.visitors"]["range"]) == ("number", [0.0, 20.0])
        assert controls["panel.button"]["control"] == "toggle"
        assert controls["panel.mood"]["control"] == "text"
        assert controls["scene.burst"]["control"] == "button"
        assert not {"panel.stop", "panel.health.status", "show.panic", "var.visits"} & set(controls)
    finally:
        await runtime.stop()


STUDIO_OUTPUTS = """\
format_version: 1
id: outputs
title: {en: Outputs}
devices:
  par:
    kind: dmx
    destination: 10.0.0.9
    universe: 7
    address: 1
    profile: dimmer
  qlab:
    kind: osc
    host: 10.0.0.10
    port: 53000
    properties: {go: {address: /go, safe: 0}}
"""


@pytest.mark.parametrize("studio", [True, False])
def test_the_studio_puts_no_light_or_cue_on_the_venues_network(studio: bool) -> None:
    from devices.dmx import SimulatedDmx
    from devices.osc_out import SimulatedOscOut

    reg = build_registry()
    exhibit = validate_text(STUDIO_OUTPUTS, "outputs/exhibit.yaml", reg)
    runtime = Runtime(exhibit, reg, options=RuntimeOptions(simulate=True, studio=studio))
    runtime._build_drivers()  # what start() builds, without opening anything
    # (MQTT devices stay real: they talk to the run's broker, the embedded one unless `--broker` names another)
    assert isinstance(runtime.devices["par"], SimulatedDmx) is studio
    assert isinstance(runtime.devices["qlab"], SimulatedOscOut) is studio
